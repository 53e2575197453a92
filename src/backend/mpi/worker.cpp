// A worker rank's side of MpiPool: wait for rank 0; for each pool, run its initializer, then its
// chunks in the order they come, sending each chunk's results back; leave when rank 0 exits.
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "backend/mpi/modules.hpp"
#include "backend/mpi/runtime.hpp"
#include "mproc/codec.hpp"
#include "mproc/detail/invoke.hpp"
#include "mproc/detail/mpi_backend.hpp"

namespace mproc::detail::mpi {
namespace {

constexpr std::size_t kHeader = sizeof(MpiTaskHeader);

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void leave() {
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

// Runs one chunk; out gets [seq][run time][items]. Never throws.
void run_chunk(const ModuleMap& modules, Writer& msg, Writer& out) {
  MpiTaskHeader h;
  std::memcpy(&h, msg.data(), sizeof h);
  out.clear();
  out.write(&h.seq, sizeof h.seq);
  std::int64_t took = 0;
  const std::size_t took_at = out.size();
  out.write(&took, sizeof took);
  const std::int64_t start = now_ns();
  std::byte* chunk = msg.data() + kHeader;
  const std::size_t fn_bytes = h.function_module == kMpiNoFunction ? 0 : sizeof(void*);
  std::uint64_t count = 0;
  try {
    if (msg.size() < kHeader + sizeof(Invoker) + fn_bytes + sizeof count)
      throw SerializationError("mproc: MpiPool: a task message is too short");
    std::memcpy(&count, chunk + sizeof(Invoker) + fn_bytes, sizeof count);
    std::uint64_t offset = 0;
    std::memcpy(&offset, chunk, sizeof offset);
    Invoker entry = reinterpret_cast<Invoker>(modules.address(h.invoker_module, offset));
    if (fn_bytes) {
      std::memcpy(&offset, chunk + sizeof(Invoker), sizeof offset);
      std::uintptr_t fn = modules.address(h.function_module, offset);
      std::memcpy(chunk + sizeof(Invoker), &fn, sizeof fn);
    }
    Reader in({chunk + sizeof(Invoker), msg.size() - kHeader - sizeof(Invoker)});
    entry(in, out);
  } catch (...) {
    // The chunk names a function this rank cannot find: each of its items fails with why.
    auto error = std::current_exception();
    out.truncate(took_at + sizeof took);
    for (std::uint64_t i = 0; i < count; ++i) write_item_error(out, error);
  }
  took = now_ns() - start;
  std::memcpy(out.data() + took_at, &took, sizeof took);
}

// Runs the pool's initializer, if it has one, and tells rank 0 how it went.
void say_hello(const ModuleMap& modules, const Writer& msg) {
  Writer out;
  std::uint8_t ok = 0;
  try {
    Reader in(msg.bytes());
    std::uint32_t module = 0;
    std::uint64_t offset = 0;
    in.read(&module, sizeof module);
    in.read(&offset, sizeof offset);
    if (module != kMpiNoFunction) {
      auto init = reinterpret_cast<void (*)()>(modules.address(module, offset));
      init();
    }
    out.write(&ok, 1);
  } catch (...) {
    write_item_error(out, std::current_exception());
  }
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
    if (s.buffer.size() > static_cast<std::size_t>(INT_MAX)) {
      // Too large for one message: each item fails instead.
      Reader in(s.buffer.bytes());
      Writer small;
      small.write(in.take(2 * sizeof(std::uint64_t)), 2 * sizeof(std::uint64_t));
      write_item_error(small, std::make_exception_ptr(SerializationError(
                                  "mproc: MpiPool: a chunk's results exceed 2 GiB; use a smaller chunksize")));
      s.buffer = std::move(small);
    }
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
  say_hello(modules, msg);
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
        run_chunk(modules, msg, outbox.next());
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
  try {
    ModuleMap modules;
    Writer msg;
    for (;;) {
      MPI_Status st = wait_message(0, MPI_ANY_TAG);
      receive(st, msg);
      if (st.MPI_TAG == kStart) serve_pool(modules, msg);
      else if (st.MPI_TAG == kModule) learn_module(modules, msg);
      else if (st.MPI_TAG == kExit) leave();
      // Anything else belongs to a pool that has ended.
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mproc: worker rank %d: %s; MPI ends the job\n", world_rank(), e.what());
  }
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

}  // namespace mproc::detail::mpi
