// Python's concurrent.futures "ThreadPoolExecutor Example", ported: each "URL" is loaded on a
// worker thread, and the results are printed as they complete. Files stand for the pages, so the
// example runs without a network; the missing one shows a task's exception reaching the caller.
//
//   with ThreadPoolExecutor(max_workers=5) as executor:
//       future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
//       for future in concurrent.futures.as_completed(future_to_url):
//           url = future_to_url[future]
//           try:
//               data = future.result()
//           except Exception as exc:
//               print('%r generated an exception: %s' % (url, exc))
//           else:
//               print('%r page is %d bytes' % (url, len(data)))
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mproc/mproc.hpp"

namespace {

const std::vector<std::string> kUrls = {"/etc/hostname", "/etc/os-release", "/proc/self/status", "/proc/cpuinfo",
                                        "/no/such/page"};

// Retrieve a single page and report the contents.
std::string load_url(const std::string& url, int /*timeout*/) {
  std::ifstream in(url, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + url);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

int main() {
  mproc::ThreadPoolExecutor executor(5);
  std::vector<std::pair<mproc::Future<std::string>, std::string>> future_to_url;
  std::vector<mproc::Future<std::string>> futures;
  for (const auto& url : kUrls) {
    futures.push_back(executor.submit(load_url, url, 60));
    future_to_url.emplace_back(futures.back(), url);
  }
  int failed = 0;
  for (auto& future : mproc::as_completed(futures)) {
    std::string url;
    for (auto& [f, u] : future_to_url)
      if (f == future) url = u;
    try {
      std::string data = future.result();
      std::printf("'%s' page is %zu bytes\n", url.c_str(), data.size());
    } catch (const std::exception& exc) {
      std::printf("'%s' generated an exception: %s\n", url.c_str(), exc.what());
      ++failed;
    }
  }
  executor.shutdown();
  return failed == 1 ? 0 : 1;  // only the missing page fails
}
