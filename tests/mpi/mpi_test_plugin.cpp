// A shared library that rank 0 of test_mpi_pool loads after its worker ranks began serving:
// its functions are ones no worker rank can run.
extern "C" int mproc_test_plugin_twice(int x) { return 2 * x; }
extern "C" double mproc_test_plugin_half(double x) { return x / 2; }
