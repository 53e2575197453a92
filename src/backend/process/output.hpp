// output.hpp: OutputRelay — PoolOptions::output = Output::lines. Each worker's stdout and stderr
// are pipes read by one pool thread, which writes whole lines, each prefixed "[worker N] ", to
// the program's own stdout and stderr: a line is never cut by another worker's, what a worker
// wrote before it died is read to the end, and a very long line goes out in pieces, each with
// the prefix.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "os/os.hpp"

namespace mproc::detail {

class OutputRelay {
 public:
  // The write ends a worker takes over as its stdout and stderr.
  struct WorkerEnds {
    os::Fd out, err;
  };

  OutputRelay();
  OutputRelay(const OutputRelay&) = delete;
  OutputRelay& operator=(const OutputRelay&) = delete;
  // Writes what is left in the pipes, then stops the thread. Call once the workers are gone.
  ~OutputRelay();

  // Before forking worker id: a pipe for each of its streams, whose read ends the relay takes.
  // The parent closes the returned ends once the child has them.
  WorkerEnds open(unsigned id);
  // In the worker, after the fork: its stdout and stderr become the pipes, stdout line-buffered
  // (so that a line is sent whole, and nothing is held back when the worker dies).
  static void attach(WorkerEnds& ends) noexcept;

 private:
  struct Stream {
    std::string prefix;  // "[worker N] "
    int target;          // 1 or 2
    os::Fd read;
    std::string partial;  // the start of a line not yet ended
  };

  void run();
  // Appends bytes to the stream's line and writes every line it completes; flush: the rest too.
  static void emit(Stream& s, const char* bytes, std::size_t n, bool flush, std::string& out);

  os::Fd wake_read_, wake_write_;
  std::mutex mu_;
  std::vector<Stream> added_;  // guarded by mu_: streams the thread has not taken yet
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace mproc::detail
