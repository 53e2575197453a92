// python_compare.hpp: `mproc demo --compare-python` — bench/article.py (the article's program in
// Python, with multiprocessing.Pool) run on the same data as the demo, for its seconds per mode.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace mproc::tool {

// What article.py reported of one mode.
struct PythonMode {
  double seconds = 0;
  long long total = 0;  // sum of its counts
  bool ok = false;      // its counts equal its own serial counts
};

// Throws std::runtime_error saying what is missing when `python` cannot run or lacks numpy, or
// when `script` (article.py) is not a readable file.
void check_python(const std::string& python, const std::string& script);

// Runs `python script --json args...` (its stderr passes through: it reports each mode there) and
// returns its modes by name. Throws std::runtime_error naming the problem when it cannot be
// started, exits with a status other than 0 or 1 (1: a mode was not ok, which the caller sees),
// or prints anything but article.py's JSON.
[[nodiscard]] std::map<std::string, PythonMode> run_article_py(const std::string& python, const std::string& script,
                                                               const std::vector<std::string>& args);

}  // namespace mproc::tool
