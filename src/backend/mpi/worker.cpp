// A worker rank's side of MpiPool: wait for rank 0; for each pool, run its initializer, then its
// chunks in the order they come, sending each chunk's results back; leave when rank 0 exits.
#include <signal.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "backend/mpi/modules.hpp"
#include "backend/mpi/runtime.hpp"
#include "mproc/detail/mpi_backend.hpp"
#include "mproc/detail/wait.hpp"
#include "mproc/detail/wire.hpp"
#include "os/os_ipc.hpp"
#include "worker_identity.hpp"

namespace mproc::detail::mpi {
namespace {

// --- a rank that dies says so --------------------------------------------------------------------
// MPI cannot go on without a rank: mpirun ends the whole job when one dies, and reports only a
// rank number and a signal or exit code. These say, in mproc's terms, what the rank was doing.
// The handlers and the atexit hook use only the os layer's async-signal-safe calls (write(2),
// sigaction), none of which throws or locks.

volatile sig_atomic_t g_in_task = 0;  // 1 while a chunk runs, 2 while the pool's initializer does
volatile sig_atomic_t g_leaving = 0;  // set when the rank leaves as it should (leave())
int g_rank = -1;
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
struct sigaction g_previous[sizeof kFatalSignals / sizeof kFatalSignals[0]];

// Appends text, or a number, to a fixed buffer; for signal handlers.
struct Line {
  char text[320];
  std::size_t size = 0;
  Line& operator<<(const char* s) {
    while (*s && size < sizeof text) text[size++] = *s++;
    return *this;
  }
  Line& operator<<(long n) {
    char digits[24];
    int k = 0;
    bool negative = n < 0;
    unsigned long u = negative ? 0UL - static_cast<unsigned long>(n) : static_cast<unsigned long>(n);
    do digits[k++] = static_cast<char>('0' + u % 10);
    while ((u /= 10) != 0 && k < 23);
    if (negative) digits[k++] = '-';
    while (k > 0 && size < sizeof text) text[size++] = digits[--k];
    return *this;
  }
  void write_to_stderr() const noexcept { os::write_stderr(text, size); }
};

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    default:
      return "a signal";
  }
}

void on_fatal_signal(int sig, siginfo_t* info, void* context) {
  Line line;
  line << "mproc: worker rank " << static_cast<long>(g_rank) << " of an MpiPool died of " << signal_name(sig) << " ("
       << static_cast<long>(sig) << ")"
       << (g_in_task == 1   ? " while running a task"
           : g_in_task == 2 ? " while running the pool's initializer"
                            : " between tasks")
       << ". An MPI job cannot go on without one of its ranks, so mpirun ends the whole job, rank 0 "
          "included; no WorkerLost is possible under MPI (see docs/mpi.md).\n";
  line.write_to_stderr();
  // Then whatever handler was there (Open MPI's prints a backtrace), and the default action.
  for (std::size_t i = 0; i < std::size(kFatalSignals); ++i) {
    if (kFatalSignals[i] != sig) continue;
    os::restore_signal_action(sig, g_previous[i]);
    os::call_handler(g_previous[i], sig, info, context);
  }
  os::raise_default(sig);
}

void on_exit_while_serving() {
  if (g_leaving) return;
  Line line;
  line << "mproc: worker rank " << static_cast<long>(g_rank) << " of an MpiPool is exiting "
       << (g_in_task == 1   ? "from inside a task (it called exit())"
           : g_in_task == 2 ? "from inside the pool's initializer (it called exit())"
                            : "unexpectedly")
       << ". An MPI job cannot go on without one of its ranks, so mpirun ends the whole job, rank 0 "
          "included (see docs/mpi.md).\n";
  line.write_to_stderr();
}

void report_deaths(int rank) {
  g_rank = rank;
  for (std::size_t i = 0; i < std::size(kFatalSignals); ++i)
    os::install_signal_handler(kFatalSignals[i], on_fatal_signal, SA_NODEFER, &g_previous[i]);
  std::atexit(on_exit_while_serving);
}

[[noreturn]] void leave() {
  g_leaving = 1;
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Comm c = comm();
  MPI_Comm_free(&c);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
  std::exit(0);
}

void learn_module(ModuleMap& modules, const Writer& msg) {
  Reader in(msg.bytes());
  std::uint32_t id = 0;
  in.read(&id, sizeof id);
  std::string name(in.remaining(), '\0');
  in.read(name.data(), name.size());
  modules.add(id, name);
}

// Runs the chunk of one task frame into a result frame. Never throws: a chunk this rank cannot
// run at all (its function lies in a module it has not loaded; its results would not fit in one
// message) fails every item with why.
// For a pool that records insights: when the rank was ready, and when its last chunk ended.
struct Timed {
  bool on = false;
  std::int64_t ready_ns = 0;
  std::int64_t idle_from_ns = 0;
  int pid = 0;  // read once: getpid() is a system call
};

void run_task(const ModuleMap& modules, Writer& msg, Writer& out, Timed& timed) {
  const std::int64_t start = now_ns();
  TaskHeader task;
  begin_result_frame(out, timed.on);
  ItemClock clock(start);
  if (timed.on) t_item_clock = &clock;
  try {
    task = read_task_header(msg.bytes());
    restore_task_code({msg.data(), msg.size()}, [&modules](std::uint32_t module, std::uint64_t offset) {
      return modules.address(module, offset);
    });
    Reader in(task_chunk(msg.bytes()));
    run_chunk(in, out);
    if (out.size() > static_cast<std::size_t>(INT_MAX))
      throw SerializationError("mproc: MpiPool: a chunk's results exceed 2 GiB; use a smaller chunksize");
  } catch (...) {
    if (out.capacity() > static_cast<std::size_t>(INT_MAX)) out = Writer{};
    begin_result_frame(out, timed.on);
    fail_chunk(out, std::current_exception());
  }
  t_item_clock = nullptr;
  const std::int64_t end = now_ns();
  end_result_frame(out, {task.seq, end - start});
  if (!timed.on) return;
  ChunkTiming timing{.start_ns = start,
                     .end_ns = end,
                     .idle_ns = start - timed.idle_from_ns,
                     .ready_ns = timed.ready_ns,
                     .pid = timed.pid};
  take_item_times(timing, clock);
  write_chunk_timing(out, timing);
  timed.idle_from_ns = end;
}

// Whether the pool's start message asks for insights (a byte after the initializer's place).
bool start_wants_insights(const Writer& msg) {
  Reader in(msg.bytes());
  std::uint32_t module = 0;
  std::uint64_t offset = 0;
  std::uint8_t timed = 0;
  in.read(&module, sizeof module);
  in.read(&offset, sizeof offset);
  if (in.remaining() >= 1) in.read(&timed, sizeof timed);
  return timed != 0;
}

// Runs the pool's initializer, if it has one, and tells rank 0 how it went.
void say_hello(const ModuleMap& modules, const Writer& msg) {
  Writer out;
  std::exception_ptr error;
  try {
    Reader in(msg.bytes());
    std::uint32_t module = 0;
    std::uint64_t offset = 0;
    in.read(&module, sizeof module);
    in.read(&offset, sizeof offset);
    if (module != kNoFunction) {
      auto init = reinterpret_cast<void (*)()>(modules.address(module, offset));
      g_in_task = 2;
      init();
      g_in_task = 0;
    }
  } catch (...) {
    g_in_task = 0;
    error = std::current_exception();
  }
  write_hello(out, error);
  send(out.bytes(), 0, kHello);
}

// Results on their way to rank 0: sent without waiting, so that the next chunk runs while
// rank 0 takes this one (a result over MPI's eager limit waits for rank 0 to receive it).
class Outbox {
 public:
  Outbox() : slots_(8) {}
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  ~Outbox() { flush(); }

  // A buffer whose earlier send has completed.
  Writer& next() {
    Slot& s = slots_[next_];
    check(MPI_Wait(&s.request, MPI_STATUS_IGNORE), "MPI_Wait", 0);
    return s.buffer;
  }
  void send_next(int tag) {
    Slot& s = slots_[next_];
    next_ = (next_ + 1) % slots_.size();
    check(MPI_Isend(s.buffer.data(), static_cast<int>(s.buffer.size()), MPI_BYTE, 0, tag, comm(), &s.request),
          "MPI_Isend", 0);
  }
  void flush() noexcept {
    for (auto& s : slots_) check(MPI_Wait(&s.request, MPI_STATUS_IGNORE), "MPI_Wait", 0);
  }

 private:
  struct Slot {
    Writer buffer;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::vector<Slot> slots_;
  std::size_t next_ = 0;
};

// One pool, from its start message to its stop.
void serve_pool(ModuleMap& modules, Writer& msg) {
  Timed timed{.on = start_wants_insights(msg), .pid = static_cast<int>(os::getpid())};
  say_hello(modules, msg);
  timed.ready_ns = timed.idle_from_ns = now_ns();
  if (timed.on) (void)tick_origin();  // the span that converts its chunks' ticks starts here
  Outbox outbox;
  bool terminating = false;
  for (;;) {
    MPI_Status st = wait_message(0, MPI_ANY_TAG);
    receive(st, msg);
    switch (st.MPI_TAG) {
      case kTask: {
        if (!terminating) {
          // terminate() overtakes the queue: look for it before each chunk.
          int flag = 0;
          MPI_Status ts{};
          check(MPI_Iprobe(0, kTerminate, comm(), &flag, &ts), "MPI_Iprobe", 0);
          if (flag) {
            Writer ignored;
            receive(ts, ignored);
            terminating = true;
          }
        }
        if (terminating) break;
        Writer& out = outbox.next();
        g_in_task = 1;
        run_task(modules, msg, out, timed);
        g_in_task = 0;
        outbox.send_next(kResult);
        break;
      }
      case kModule:
        learn_module(modules, msg);
        break;
      case kTerminate:
        terminating = true;
        break;
      case kStop:
        outbox.flush();
        send({}, 0, kStopped);
        return;
      case kExit:
        outbox.flush();
        leave();
      default:
        break;
    }
  }
}

}  // namespace

void serve_forever() {
  report_deaths(world_rank());
  set_process_worker_id(static_cast<unsigned>(world_rank()));
  try {
    ModuleMap modules;
    Writer msg;
    for (;;) {
      MPI_Status st = wait_message(0, MPI_ANY_TAG);
      receive(st, msg);
      if (st.MPI_TAG == kStart)
        serve_pool(modules, msg);
      else if (st.MPI_TAG == kModule)
        learn_module(modules, msg);
      else if (st.MPI_TAG == kExit)
        leave();
      // Anything else belongs to a pool that has ended.
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mproc: worker rank %d: %s; MPI ends the job\n", world_rank(), e.what());
  }
  g_leaving = 1;  // said why already
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

}  // namespace mproc::detail::mpi
