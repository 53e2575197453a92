// mproc_stress: the stress tier, one scenario per run —
//   mproc_stress <soak|pools|memory|threads|replace|signals> [--seed N] [--repeat N] [--count N]
//                [--warmup N] [--limit-mb X] [--deadline S] [--max-hangs N] [--no-gdb]
// Each prints one line of figures (PASS or FAIL first), a failure the seed and the command that
// reruns it alone; the exit status is 0 on a pass. tests/stress/run runs them all under load.
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "stress.hpp"

namespace {

const std::map<std::string, stress::Scenario> kScenarios = {
    {"soak", stress::soak},       {"pools", stress::pools},     {"memory", stress::memory},
    {"threads", stress::threads}, {"replace", stress::replace}, {"signals", stress::signals},
};

int usage(const std::string& why) {
  std::cerr << "mproc_stress: " << why
            << "\nusage: mproc_stress <soak|pools|memory|threads|replace|signals> [--seed N] [--repeat N]"
               " [--count N] [--warmup N] [--limit-mb X] [--deadline S] [--max-hangs N] [--no-gdb]\n";
  return 2;
}

// Parses argv into args; returns an error message, empty when all is well.
std::string parse(int argc, char** argv, stress::Args& args) {
  args.exe = argv[0];
  if (argc < 2) return "no scenario given";
  args.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--no-gdb") {
      args.gdb = false;
      continue;
    }
    if (i + 1 >= argc) return flag + " needs a value";
    std::string value = argv[++i];
    try {
      if (flag == "--seed")
        args.seed = std::stoull(value);
      else if (flag == "--repeat")
        args.repeat = std::stoi(value);
      else if (flag == "--count")
        args.count = std::stol(value);
      else if (flag == "--warmup")
        args.warmup = std::stol(value);
      else if (flag == "--limit-mb")
        args.limit_mb = std::stod(value);
      else if (flag == "--deadline")
        args.deadline_s = std::stoi(value);
      else if (flag == "--max-hangs")
        args.max_hangs = std::stoi(value);
      else
        return "unknown option " + flag;
    } catch (const std::exception&) {
      return "bad value for " + flag + ": " + value;
    }
  }
  if (args.repeat < 1 || args.count < 0 || args.warmup < 0 || args.deadline_s < 0 || args.max_hangs < 1)
    return "counts must be positive";
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  stress::Args args;
  if (auto error = parse(argc, argv, args); !error.empty()) return usage(error);
  if (args.mode == "signal-parent") return stress::signal_parent(args);
  auto it = kScenarios.find(args.mode);
  if (it == kScenarios.end()) return usage("unknown scenario " + args.mode);
  stress::stop_on_signals();
  try {
    return it->second(args) ? 0 : 1;
  } catch (const std::exception& e) {
    stress::report(args, false, std::string("error: ") + e.what());
    return 1;
  }
}
