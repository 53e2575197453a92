/// @file
/// mpi.hpp: mproc::mpi::serve(), rank(), size(), finalize() — where this rank of an MPI job stands,
/// and where a worker rank begins serving MpiPools. In the mproc::mpi library (link mproc::mpi);
/// mpi_pool.hpp includes it. No <mpi.h> here.
#pragma once

namespace mproc::mpi {

/// Starts MPI if the program has not (MPI_THREAD_SERIALIZED) and checks that every rank runs
/// the same binary. On a worker rank, then serves pools until rank 0 finishes, and ends the
/// process there (MPI_Finalize, std::exit(0)): it returns only on rank 0. Call it first thing in
/// main() to keep the workers out of everything rank 0 does.
void serve();

/// This process's rank and the job's size (1 when not launched by mpirun); starts MPI if needed.
///@{
[[nodiscard]] int rank();
[[nodiscard]] int size();
///@}

/// On rank 0: releases the worker ranks and calls MPI_Finalize. Runs by itself at exit; call it
/// earlier only to finish MPI before the program ends. No MpiPool may be built after it.
void finalize();

}  // namespace mproc::mpi
