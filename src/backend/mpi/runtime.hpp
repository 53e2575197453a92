// runtime.hpp: the MPI side of MpiPool shared by rank 0 and the workers — start-up (MPI_Init_thread,
// the same-binary check), the communicator, the message tags, waiting for a message without
// burning a core, MPI errors turned into a message that says what happened, and the worker's
// service loop.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <span>
#include <vector>

#include "mproc/detail/buffer.hpp"

namespace mproc::detail::mpi {

// Message tags on mproc's own communicator. Rank 0 sends to a worker in this order only; a
// worker receives from rank 0 with MPI_ANY_TAG, so MPI's ordering keeps them in sequence.
enum Tag : int {
  kTask = 1,       // 0 -> w: a task frame, its code named by module offset (see wire.hpp)
  kResult = 2,     // w -> 0: a result frame (see wire.hpp)
  kStart = 3,      // 0 -> w: a pool begins: [initializer module u32][offset u64]
  kHello = 4,      // w -> 0: a hello: whether the initializer ran (see wire.hpp)
  kStop = 5,       // 0 -> w: the pool ends once the tasks before this are done
  kStopped = 6,    // w -> 0: the pool has ended on this rank
  kTerminate = 7,  // 0 -> w: skip the tasks not yet started (a worker looks for this one first)
  kModule = 8,     // 0 -> w: [module u32][name]: the module numbered so, for later tasks
  kExit = 9,       // 0 -> w: rank 0 is finishing: MPI_Finalize and exit
};

// MPI started, the binaries checked (collective: every rank calls it, the first time together).
void ensure_started();
[[nodiscard]] MPI_Comm comm() noexcept;
[[nodiscard]] int world_rank() noexcept;
[[nodiscard]] int world_size() noexcept;

// An MPI call's result: anything but success prints what happened and ends the job (MPI cannot
// carry on without a rank). peer: the rank on the other end, or -1.
void check(int rc, const char* call, int peer) noexcept;

// Waits for a message from source (or MPI_ANY_SOURCE) with tag (or MPI_ANY_TAG): spins briefly,
// then yields, then naps, so that an idle rank leaves its core to others.
MPI_Status wait_message(int source, int tag);
// Receives the message st announced into buf (resized to fit).
void receive(const MPI_Status& st, Writer& buf);
void send(std::span<const std::byte> bytes, int dest, int tag);

// Rank 0: modules announced to each rank so far (index: rank); for the communication thread.
std::vector<std::uint32_t>& announced_modules();
// Rank 0: sends the names of modules [announced, upto] to rank dest, if it lacks any.
void announce_modules(int dest, std::uint32_t upto);

// Rank 0: one MpiPool at a time. claim() throws std::logic_error when one exists.
void claim_pool();
void release_pool() noexcept;

// A worker rank's life after start-up: serve pools until rank 0 says exit.
[[noreturn]] void serve_forever();

}  // namespace mproc::detail::mpi
