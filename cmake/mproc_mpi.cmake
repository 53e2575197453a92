# MpiPool (issue 8): the MPI backend, built as its own library, mproc::mpi (mproc_mpi), when MPI is
# found, so that the core library builds and tests without MPI. Included by the top CMakeLists
# once the mproc target exists. Switch: MPROC_MPI (on when MPI is found).
find_package(MPI COMPONENTS CXX QUIET)
option(MPROC_MPI "Build MpiPool (mproc::mpi) over MPI" ${MPI_CXX_FOUND})

if(NOT MPROC_MPI OR NOT MPI_CXX_FOUND)
  if(NOT MPI_CXX_FOUND)
    set(_mproc_no_mpi "MPI was not found (apt install openmpi-bin libopenmpi-dev)")
  else()
    set(_mproc_no_mpi "MPROC_MPI=OFF")
  endif()
  message(STATUS "mproc: ${_mproc_no_mpi}: MpiPool (mproc::mpi) and its tests are not built")
  if(MPROC_TESTS)
    # ctest lists the MPI tests as skipped, saying why, rather than leaving them out unseen.
    foreach(name mpi_pool mpi_rank_death demo_mpi)
      add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} -E echo "skipped: ${_mproc_no_mpi}; MpiPool is not built")
      set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION "skipped: ")
    endforeach()
  endif()
  return()
endif()

file(GLOB MPROC_MPI_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../src/backend/mpi/*.cpp)
add_library(mproc_mpi ${MPROC_MPI_SOURCES})
add_library(mproc::mpi ALIAS mproc_mpi)
target_include_directories(mproc_mpi PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(mproc_mpi PUBLIC mproc MPI::MPI_CXX ${CMAKE_DL_LIBS} PRIVATE $<BUILD_INTERFACE:mproc_warnings>)

# What every test run under mpirun needs: root allowed (CI runs as root), more ranks than cores,
# and Open MPI's shared-memory segments in the build tree instead of /dev/shm, where the other
# tests, running alongside, check that nothing new appears (and where a killed rank leaves its own).
set(MPROC_MPI_TEST_ENV "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1"
                       "OMPI_MCA_btl_vader_backing_directory=${PROJECT_BINARY_DIR}")

if(MPROC_TESTS)
  find_package(GTest REQUIRED)
  add_executable(test_mpi_pool ${PROJECT_SOURCE_DIR}/tests/mpi/test_mpi_pool.cpp)
  target_link_libraries(test_mpi_pool PRIVATE mproc::mpi GTest::gtest mproc_warnings)
  # A library that only rank 0 loads, late: chunks of its functions fail as a whole on every rank.
  add_library(mpi_test_plugin MODULE ${PROJECT_SOURCE_DIR}/tests/mpi/mpi_test_plugin.cpp)
  add_dependencies(test_mpi_pool mpi_test_plugin)
  target_compile_definitions(test_mpi_pool PRIVATE MPROC_TEST_PLUGIN="$<TARGET_FILE:mpi_test_plugin>")
  # gtest runs on rank 0; the other ranks serve its pools.
  add_test(NAME mpi_pool
           COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe --allow-run-as-root ${MPIEXEC_NUMPROC_FLAG} 3
                   $<TARGET_FILE:test_mpi_pool>)
  set_tests_properties(mpi_pool PROPERTIES TIMEOUT 120
                       ENVIRONMENT "${MPROC_MPI_TEST_ENV}")

  # MPI's failure model: a worker rank that dies mid-task ends the whole job (no hang), and the
  # user reads which rank died, of what, and why the job ended with it.
  add_executable(mpi_rank_death ${PROJECT_SOURCE_DIR}/tests/mpi/mpi_rank_death.cpp)
  target_link_libraries(mpi_rank_death PRIVATE mproc::mpi mproc_warnings)
  foreach(how abort segv exit)
    add_test(NAME mpi_rank_death_${how}
             COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe --allow-run-as-root ${MPIEXEC_NUMPROC_FLAG} 3
                     $<TARGET_FILE:mpi_rank_death> ${how})
  endforeach()
  set_tests_properties(mpi_rank_death_abort PROPERTIES
                       PASS_REGULAR_EXPRESSION "worker rank 1 of an MpiPool died of SIGABRT \\(6\\) while running a task")
  set_tests_properties(mpi_rank_death_segv PROPERTIES
                       PASS_REGULAR_EXPRESSION "worker rank 1 of an MpiPool died of SIGSEGV \\(11\\) while running a task")
  set_tests_properties(mpi_rank_death_exit PROPERTIES
                       PASS_REGULAR_EXPRESSION "worker rank 1 of an MpiPool is exiting from inside a task")
  # Two different programs in one job (MPMD): refused at start-up, on every rank, with a message.
  add_test(NAME mpi_binary_mismatch
           COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe --allow-run-as-root ${MPIEXEC_NUMPROC_FLAG} 1
                   $<TARGET_FILE:test_mpi_pool> : ${MPIEXEC_NUMPROC_FLAG} 2 $<TARGET_FILE:mpi_rank_death> abort)
  set_tests_properties(mpi_binary_mismatch PROPERTIES
                       PASS_REGULAR_EXPRESSION "every rank must run the same binary.*rank 2 runs build id")
  set_tests_properties(mpi_rank_death_abort mpi_rank_death_segv mpi_rank_death_exit mpi_binary_mismatch PROPERTIES TIMEOUT 60
                       FAIL_REGULAR_EXPRESSION "map returned"
                       ENVIRONMENT "${MPROC_MPI_TEST_ENV}")
endif()

if(MPROC_BENCH)
  # Not bench_*.cpp: bench/CMakeLists links those with the core library only.
  add_executable(mpi_overhead ${PROJECT_SOURCE_DIR}/bench/mpi_overhead.cpp)
  set_target_properties(mpi_overhead PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
  target_link_libraries(mpi_overhead PRIVATE mproc::mpi mproc_warnings)
endif()
