// demo_no_mpi.cpp: the MPI entry points of `mproc demo` in a build without MPI (see
// demo_mpi.cpp): --pool mpi is refused with a message that says why.
#include <stdexcept>

#include "demo.hpp"

namespace mproc::tool {

bool mpi_built() noexcept { return false; }

int mpi_start() { return 1; }

std::vector<ModeRun> run_mpi_modes(int, unsigned&, const Matrix&, const std::vector<std::string>&, int, int,
                                   const std::function<void(const std::string&)>&, const std::string&) {
  throw std::invalid_argument(
      "--pool mpi: this mproc was built without MPI (configure found no MPI, or MPROC_MPI=OFF)");
}

}  // namespace mproc::tool
