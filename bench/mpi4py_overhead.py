"""mpi4py.futures' MPIPoolExecutor on the workload of bench/mpi_overhead.cpp: rows of 6 ints in
[0, 11), each task counting the values within [4, 8], at chunksize 1000 and chunksize 1.
Run as: mpirun -n 3 /usr/bin/python3 -m mpi4py.futures bench/mpi4py_overhead.py [rows] [rows at chunksize 1]
Prints JSON in mpi_overhead's schema."""
import json
import random
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def count_row(row):
    return sum(1 for v in row if 4 <= v <= 8)


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 300000
    rows_c1 = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    rng = random.Random(42)
    data = [tuple(rng.randrange(11) for _ in range(6)) for _ in range(rows)]
    t0 = time.perf_counter()
    serial = [count_row(r) for r in data]
    serial_s = time.perf_counter() - t0
    results = []
    ok = True
    with MPIPoolExecutor() as pool:
        from mpi4py import MPI
        workers = MPI.COMM_WORLD.Get_size() - 1
        list(pool.map(count_row, data[:2000], chunksize=100))  # warm up
        for chunksize in (1000, 1):
            n = min(rows, rows_c1) if chunksize == 1 else rows
            part = data[:n]
            best = 1e9
            for _ in range(5 if chunksize != 1 else 1):
                t0 = time.perf_counter()
                got = list(pool.map(count_row, part, chunksize=chunksize))
                best = min(best, time.perf_counter() - t0)
                ok = ok and got == serial[:n]
            results.append({"chunksize": chunksize, "tasks": n, "seconds": best, "us_per_task": best / n * 1e6})
    print(json.dumps({"impl": "mpi4py.futures", "workers": workers, "rows": rows, "serial_seconds": serial_s,
                      "ok": ok, "results": results}))


if __name__ == "__main__":
    main()
