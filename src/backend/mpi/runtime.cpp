#include "backend/mpi/runtime.hpp"

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "backend/mpi/modules.hpp"
#include "backoff.hpp"
#include "mproc/errors.hpp"
#include "mproc/mpi.hpp"

namespace mproc::detail::mpi {
namespace {

struct Runtime {
  std::once_flag started;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  bool owns_mpi = false;  // we called MPI_Init_thread, so we call MPI_Finalize
  bool finalized = false;
  std::atomic<bool> pool_alive{false};
  std::vector<std::uint32_t> announced;  // rank 0: modules each rank knows; used under one thread at a time
};
Runtime& rt() {
  static Runtime r;
  return r;
}

void finalize_at_exit() {
  try {
    mproc::mpi::finalize();
  } catch (...) {
  }
}

// Every rank must run the same binary: a function's offset means nothing in another. Rank 0
// says so plainly, and every rank leaves with status 1 rather than running the wrong code.
void check_same_program() {
  auto& r = rt();
  Fingerprint mine = fingerprint_of_this_program();
  std::vector<Fingerprint> all(static_cast<std::size_t>(r.size));
  check(MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, r.comm), "MPI_Allgather", -1);
  std::string report;
  for (int i = 1; i < r.size; ++i) {
    std::string diff = compare(all[0], all[static_cast<std::size_t>(i)]);
    if (!diff.empty()) report += "  rank " + std::to_string(i) + " runs " + diff + "\n";
  }
  if (report.empty()) return;
  if (r.rank == 0)
    std::fprintf(stderr,
                 "mproc: MpiPool: every rank must run the same binary (functions travel as offsets in it), "
                 "but not all of this job's ranks do:\n%s"
                 "mproc: rebuild once and start every rank from that one file (mpirun -n N ./program).\n",
                 report.c_str());
  std::fflush(stderr);
  MPI_Comm_free(&r.comm);
  if (r.owns_mpi) MPI_Finalize();
  std::exit(1);
}

void start() {
  auto& r = rt();
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) throw std::logic_error("mproc: MpiPool: MPI was already finalized in this program");
  int provided = 0;
  if (!initialized) {
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
      throw std::runtime_error("mproc: MpiPool: MPI_Init_thread failed");
    r.owns_mpi = true;
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED)
    throw std::logic_error(
        "mproc: MpiPool needs MPI_THREAD_SERIALIZED or better (its communication thread calls MPI), but MPI "
        "was initialized with less; use MPI_Init_thread, or let mproc initialize MPI");
  // A communicator of our own: the program's messages on MPI_COMM_WORLD never meet ours.
  MPI_Comm_dup(MPI_COMM_WORLD, &r.comm);
  MPI_Comm_set_errhandler(r.comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(r.comm, &r.rank);
  MPI_Comm_size(r.comm, &r.size);
  r.announced.assign(static_cast<std::size_t>(r.size), 1);  // module 0, the program, is known to all
  check_same_program();
  if (r.rank == 0) std::atexit(finalize_at_exit);
}

}  // namespace

void ensure_started() { std::call_once(rt().started, start); }
MPI_Comm comm() noexcept { return rt().comm; }
int world_rank() noexcept { return rt().rank; }
int world_size() noexcept { return rt().size; }

void check(int rc, const char* call, int peer) noexcept {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  std::fprintf(stderr,
               "mproc: rank %d: %s%s%s failed (%s). A rank of this MPI job has died or lost its connection; "
               "MPI cannot go on without it, so the whole job ends.\n",
               rt().rank, call, peer >= 0 ? " with rank " : "", peer >= 0 ? std::to_string(peer).c_str() : "", text);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

MPI_Status wait_message(int source, int tag) {
  MPI_Status st{};
  int flag = 0;
  for (Backoff idle(waits::kMpiRank);; idle.pause()) {
    check(MPI_Iprobe(source, tag, rt().comm, &flag, &st), "MPI_Iprobe", source);
    if (flag) return st;
  }
}

void receive(const MPI_Status& st, Writer& buf) {
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  buf.clear();
  buf.grow(static_cast<std::size_t>(n));
  check(MPI_Recv(buf.data(), n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, rt().comm, MPI_STATUS_IGNORE), "MPI_Recv",
        st.MPI_SOURCE);
}

void send(std::span<const std::byte> bytes, int dest, int tag) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX))
    throw SerializationError("mproc: MpiPool: a message over 2 GiB cannot be sent; use a smaller chunksize");
  check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, rt().comm), "MPI_Send", dest);
}

std::vector<std::uint32_t>& announced_modules() { return rt().announced; }

void announce_modules(int dest, std::uint32_t upto) {
  auto& known = rt().announced[static_cast<std::size_t>(dest)];
  for (; known <= upto; ++known) {
    Writer w;
    w.write(&known, sizeof known);
    std::string name = module_name(known);
    w.write(name.data(), name.size());
    send(w.bytes(), dest, kModule);
  }
}

void claim_pool() {
  if (rt().pool_alive.exchange(true))
    throw std::logic_error(
        "mproc: only one MpiPool may exist at a time (the worker ranks serve one pool); join the other first");
}
void release_pool() noexcept { rt().pool_alive.store(false); }

}  // namespace mproc::detail::mpi

namespace mproc::mpi {

using namespace mproc::detail::mpi;

void serve() {
  ensure_started();
  if (world_rank() != 0) serve_forever();
}

int rank() {
  ensure_started();
  return world_rank();
}

int size() {
  ensure_started();
  return world_size();
}

void finalize() {
  auto& r = rt();
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized || r.comm == MPI_COMM_NULL || r.finalized || r.rank != 0) return;
  if (r.pool_alive.load())
    throw std::logic_error("mproc::mpi::finalize: an MpiPool still exists; join or terminate it first");
  r.finalized = true;
  for (int dest = 1; dest < r.size; ++dest) send({}, dest, kExit);
  MPI_Comm_free(&r.comm);
  if (r.owns_mpi) MPI_Finalize();
}

}  // namespace mproc::mpi
