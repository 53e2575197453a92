// expect: cannot be sent to a worker process
// A type neither trivially copyable nor serializable cannot be an argument.
#include <string>
#include <vector>

#include "mproc/pool.hpp"

struct Name {
  std::string text;
};

int length(const Name& n) { return static_cast<int>(n.text.size()); }

int main() {
  mproc::Pool pool(1);
  std::vector<Name> names{{"a"}, {"bc"}};
  std::vector<int> r = pool.map(length, names);
  return r[0];
}
