// mpi_rank_death: a worker rank dies in the middle of a task, as MPI's failure model allows no
// recovery from. ctest runs it under `mpirun -n 3` and checks that the job ends (no hang) and that
// the user is told which rank died, how, and why the job ended with it. See docs/mpi.md.
//   mpirun -n 3 mpi_rank_death abort|segv|exit|throw
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "mproc/mpi_pool.hpp"

namespace {

int die(int how) {
  if (mproc::mpi::rank() != 1) return how;  // only rank 1 dies; rank 2 goes on
  switch (how) {
    case 0:
      std::abort();
    case 1:
      std::raise(SIGSEGV);
      break;
    case 2:
      std::exit(3);
    default:
      break;
  }
  return how;
}

}  // namespace

int main(int argc, char** argv) {
  mproc::mpi::serve();
  const std::string mode = argc > 1 ? argv[1] : "abort";
  const int how = mode == "abort" ? 0 : mode == "segv" ? 1 : mode == "exit" ? 2 : -1;
  if (how < 0) {
    std::fprintf(stderr, "mpi_rank_death: abort, segv or exit, not %s\n", mode.c_str());
    return 2;
  }
  mproc::MpiPool pool;
  auto got = pool.map(die, std::vector<int>(16, how), 1);  // both ranks get some
  std::printf("mpi_rank_death: map returned %zu results: the job should have ended\n", got.size());
  return 0;
}
