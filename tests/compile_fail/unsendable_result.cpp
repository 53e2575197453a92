// expect: the function's result type cannot be sent back
// A result that is neither trivially copyable nor serializable cannot come back.
#include <string>
#include <vector>

#include "mproc/pool.hpp"

struct Name {
  std::string text;
};

Name make_name(int) { return Name{"x"}; }

int main() {
  mproc::Pool pool(1);
  std::vector<int> xs{1, 2};
  auto r = pool.map(make_name, xs);
  return static_cast<int>(r.size());
}
