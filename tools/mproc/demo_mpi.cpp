// demo_mpi.cpp: `mproc demo --pool mpi` — the article's modes on an MpiPool. Built where MPI was
// found (demo_no_mpi.cpp otherwise). Run as `mpirun -n 3 mproc demo --pool mpi`: every rank
// parses the same command line, rank 0 runs the demo and ranks 1 .. N-1 serve its pool.
#include <mproc/mpi_pool.hpp>

#include "demo.hpp"

namespace mproc::tool {

bool mpi_built() noexcept { return true; }

int mpi_start() {
  mproc::mpi::serve();  // a worker rank never returns from here
  return mproc::mpi::size();
}

std::vector<ModeRun> run_mpi_modes(int processes, unsigned& workers, const Matrix& m,
                                   const std::vector<std::string>& modes, int mn, int mx,
                                   const std::function<void(const std::string&)>& step, const std::string& trace) {
  mproc::MpiPool pool(mproc::PoolOptions{.processes = processes == 0 ? std::nullopt : std::optional<int>(processes),
                                         .insights = !trace.empty()});
  workers = pool.processes();
  auto runs = run_modes(pool, m.data, modes, mn, mx, step);
  write_trace(pool, trace, "mpi");
  return runs;
}

}  // namespace mproc::tool
