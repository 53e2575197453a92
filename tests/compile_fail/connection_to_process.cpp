// expect: Connection
#include "mproc/pipe.hpp"
#include "mproc/process.hpp"

void child(mproc::Connection<int> c) { c.send(1); }

int main() {
  auto [r, w] = mproc::Pipe<int>();
  mproc::Process p(child, w);
  p.start();
  p.join();
  return 0;
}
