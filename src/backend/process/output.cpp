#include "backend/process/output.hpp"

#include <signal.h>

#include <algorithm>
#include <utility>

namespace mproc::detail {
namespace {

constexpr std::size_t kReadBytes = 64 << 10;  // one read from a worker's pipe
constexpr std::size_t kLineMax = 4000;        // a longer line goes out in pieces of this size

void write_to(int fd, std::string& out) noexcept {
  try {
    os::write_all(fd, out.data(), out.size());
  } catch (...) {
    // The program's stdout is closed or broken: its workers' output is dropped, as its own would be.
  }
  out.clear();
}

}  // namespace

OutputRelay::OutputRelay() {
  auto [r, w] = os::pipe();
  os::set_nonblocking(r.get(), true);
  wake_read_ = std::move(r);
  wake_write_ = std::move(w);
  // The pool's threads never take the program's SIGINT or SIGTERM (they would not report them).
  os::BlockSignals block({SIGINT, SIGTERM});
  thread_ = std::thread([this] { run(); });
}

OutputRelay::~OutputRelay() {
  stop_.store(true);
  char byte = 1;
  try {
    os::write_some(wake_write_.get(), &byte, 1);
  } catch (...) {
    // The pipe is full: the thread is due to wake anyway.
  }
  thread_.join();
}

OutputRelay::WorkerEnds OutputRelay::open(unsigned id) {
  auto [out_r, out_w] = os::pipe();
  auto [err_r, err_w] = os::pipe();
  const std::string prefix = "[worker " + std::to_string(id) + "] ";
  {
    std::lock_guard lock(mu_);
    added_.push_back(Stream{prefix, 1, std::move(out_r), {}});
    added_.push_back(Stream{prefix, 2, std::move(err_r), {}});
  }
  char byte = 1;
  try {
    os::write_some(wake_write_.get(), &byte, 1);
  } catch (...) {
  }
  return WorkerEnds{std::move(out_w), std::move(err_w)};
}

void OutputRelay::attach(WorkerEnds& ends) noexcept {
  os::flush_stdio();
  os::redirect(ends.out.get(), 1);
  os::redirect(ends.err.get(), 2);
  ends.out.reset();
  ends.err.reset();
  os::line_buffer_stdout();
}

void OutputRelay::emit(Stream& s, const char* bytes, std::size_t n, bool flush, std::string& out) {
  s.partial.append(bytes, n);
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = s.partial.find('\n', start);
    const std::size_t limit = std::min(s.partial.size(), start + kLineMax);
    if (end != std::string::npos && end < limit) {
      out += s.prefix;
      out.append(s.partial, start, end + 1 - start);
      start = end + 1;
    } else if (s.partial.size() - start >= kLineMax || (flush && start < s.partial.size())) {
      // A piece of a long line, or what a dead worker left unended.
      out += s.prefix;
      out.append(s.partial, start, limit - start);
      out += '\n';
      start = limit;
    } else {
      break;
    }
  }
  s.partial.erase(0, start);
}

void OutputRelay::run() {
  std::vector<Stream> streams;
  std::vector<char> buf(kReadBytes);
  std::string out;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      for (auto& s : added_) streams.push_back(std::move(s));
      added_.clear();
    }
    const bool stopping = stop_.load();
    std::vector<os::PollFd> fds{{wake_read_.get()}};
    for (auto& s : streams) fds.push_back({s.read.get()});
    try {
      // Stopping: only what is there now; a child of a task that kept a pipe open is not waited for.
      os::poll_readable(fds, stopping ? std::optional<os::Nanos>(os::Nanos(0)) : std::nullopt);
    } catch (...) {
      continue;
    }
    if (fds[0].ready) os::drain_nonblocking(wake_read_.get());
    bool read_any = false;
    for (std::size_t i = 1; i < fds.size(); ++i) {
      Stream& s = streams[i - 1];
      if (!fds[i].ready) continue;
      std::size_t n = 0;
      try {
        n = os::read_some(s.read.get(), buf.data(), buf.size());
      } catch (...) {
        n = 0;
      }
      read_any = true;
      emit(s, buf.data(), n, n == 0, out);
      write_to(s.target, out);
      if (n == 0) s.read.reset();  // end of file: every writer is gone
    }
    std::erase_if(streams, [](const Stream& s) { return !s.read; });
    if (stopping && !read_any) break;
  }
  for (auto& s : streams) {
    emit(s, nullptr, 0, true, out);
    write_to(s.target, out);
  }
}

}  // namespace mproc::detail
