// The multiprocessing article's program, in C++: count the values within [4, 8] in each row of a
// random matrix, serially and then with a Pool in each of the article's ways.
// (Numbers from std::mt19937, not numpy: `mproc demo` reproduces numpy's matrix exactly.)
#include <mproc/mproc.hpp>

#include <algorithm>
#include <iostream>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

using Row = std::vector<int>;

// Returns how many numbers lie within `maximum` and `minimum` in a given `row`.
int howmany_within_range(const Row& row, int minimum, int maximum) {
  int count = 0;
  for (int n : row)
    if (minimum <= n && n <= maximum) count = count + 1;
  return count;
}

// With the row's index, for results that arrive out of order.
std::pair<int, int> howmany_within_range2(int i, const Row& row, int minimum, int maximum) {
  return {i, howmany_within_range(row, minimum, maximum)};
}

void print(const char* name, const std::vector<int>& results) {
  std::cout << name;
  for (std::size_t i = 0; i < 10 && i < results.size(); ++i) std::cout << " " << results[i];
  std::cout << "\n";
}

int main() {
  // np.random.RandomState(100); arr = np.random.randint(0, 10, size=[200000, 5]); data = arr.tolist()
  std::mt19937 rng(100);
  std::vector<Row> data(200000, Row(5));
  for (auto& row : data)
    for (int& x : row) x = static_cast<int>(rng() % 10);

  // Serial: results = [howmany_within_range(row, 4, 8) for row in data]
  std::vector<int> results;
  for (const auto& row : data) results.push_back(howmany_within_range(row, 4, 8));
  print("serial:       ", results);

  mproc::Pool pool(static_cast<int>(mproc::cpu_count()));  // pool = mp.Pool(mp.cpu_count())

  // results = [pool.apply(howmany_within_range, args=(row, 4, 8)) for row in data]
  results.clear();
  for (const auto& row : data) results.push_back(pool.apply(howmany_within_range, std::tuple{row, 4, 8}));
  print("apply:        ", results);

  // results = pool.map(howmany_within_range_rowonly, [row for row in data]), whose bounds are
  // defaults (minimum=4, maximum=8): bound here, as functools.partial binds them; they travel
  // with the tasks (a capturing lambda's would not reach the workers).
  results = pool.map(mproc::bind_back(howmany_within_range, 4, 8), data);
  print("map:          ", results);

  // results = pool.starmap(howmany_within_range, [(row, 4, 8) for row in data])
  std::vector<std::tuple<Row, int, int>> args;
  for (const auto& row : data) args.emplace_back(row, 4, 8);
  results = pool.starmap(howmany_within_range, args);
  print("starmap:      ", results);

  // def collect_result(result): results.append(result)
  // for i, row in enumerate(data): pool.apply_async(howmany_within_range2, args=(i, row, 4, 8),
  //                                                 callback=collect_result)
  std::vector<std::pair<int, int>> pairs;  // the callbacks run one at a time, on a pool thread
  std::vector<mproc::AsyncResult<std::pair<int, int>>> pending;
  for (int i = 0; i < static_cast<int>(data.size()); ++i)
    pending.push_back(pool.apply_async(howmany_within_range2, std::tuple{i, data[static_cast<std::size_t>(i)], 4, 8},
                                       [&pairs](const std::pair<int, int>& result) { pairs.push_back(result); }));
  for (auto& r : pending) r.wait();       // pool.close(); pool.join()
  std::sort(pairs.begin(), pairs.end());  // results_final = [r for i, r in sorted(results)]
  results.clear();
  for (const auto& [i, r] : pairs) results.push_back(r);
  print("apply_async:  ", results);

  // result_objects = pool.starmap_async(howmany_within_range2,
  //                                     [(i, row, 4, 8) for i, row in enumerate(data)])
  std::vector<std::tuple<int, Row, int, int>> args2;
  for (int i = 0; i < static_cast<int>(data.size()); ++i)
    args2.emplace_back(i, data[static_cast<std::size_t>(i)], 4, 8);
  auto result_objects = pool.starmap_async(howmany_within_range2, args2).get();
  results.clear();
  for (const auto& [i, r] : result_objects) results.push_back(r);
  print("starmap_async:", results);
}
