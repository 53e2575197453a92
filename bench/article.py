#!/usr/bin/python3
"""article.py: the multiprocessing article's program, in Python, as the yardstick for mproc.

One workload: a rows x cols matrix of random integers in [low, high) from
np.random.RandomState(seed).randint(low, high, size=[rows, cols]).tolist(), and per row the count
of values within [minimum, maximum]. It is computed serially and then with a multiprocessing.Pool
in each of the article's ways, every result is checked against the serial one, and each way is
timed. `mproc demo` (tools/mproc) is the C++ port of this program and takes the same options;
bench/compare_python runs both on the same data.

    /usr/bin/python3 bench/article.py                      # the article: 300000 x 6, seed 110
    /usr/bin/python3 bench/article.py --rows 20000 --modes apply,map --json

The modes, as in the article, with f = howmany_within_range and mn, mx = --min, --max:
    serial          [f(row, mn, mx) for row in data]      (always run first: the reference)
    apply           [pool.apply(f, (row, mn, mx)) for row in data]    one round trip per row
    map             pool.map(g, data)                                 g(row) = f(row, mn, mx)
    starmap         pool.starmap(f, [(row, mn, mx) for row in data])
    apply_async     pool.apply_async(f2, (i, row, mn, mx), callback=collect) per row, where
                    f2 returns (i, count) and collect appends it; then wait for all and sort by i
    starmap_async   pool.starmap_async(f2, [(i, row, mn, mx) ...]).get(), counts taken in order
    map_async       pool.map_async(g, data).get()
    imap            list(pool.imap(g, data))
    imap_unordered  pool.imap_unordered(g2, enumerate(data)), g2((i, row)) = (i, f(row, mn, mx));
                    then sorted by i (completion order says nothing about rows)
Chunk sizes are the library defaults: Python's for map, starmap and the *_async calls; 1 for imap
and imap_unordered.

TIMING: each mode's seconds are the wall time of its whole call: building its argument list,
submitting, waiting, collecting and (apply_async, imap_unordered) sorting the results. The pool
is started once, before the first mode, and its start-up is not included in any mode's time.

JSON (--json): one object on stdout, nothing else there (progress goes to stderr). `mproc demo
--json` prints the same schema with "impl": "mproc", each mode once per pool kind it ran.
    {
      "impl": "python",          # or "mproc"
      "rows": 300000, "cols": 6, "low": 0, "high": 11, "seed": 110,
      "minimum": 4, "maximum": 8,
      "processes": 2,            # workers in each pool
      "modes": [                 # in the order run, serial first
        {
          "mode": "map",         # one of the mode names above
          "pool": "process",     # "process" (Pool), "thread" (ThreadPool), "none" (serial)
          "seconds": 0.41,       # wall time as defined under TIMING
          "per_task_us": 1.37,   # seconds / rows * 1e6: one task per row
          "speedup": 2.9,        # serial seconds / seconds (1.0 for serial)
          "first10": [0, 3, 2, 1, 1, 3, 2, 5, 2, 2],   # counts of the first min(10, rows) rows
          "total": 818749,       # sum of all counts
          "ok": true             # every count equals the serial count of the same row
        }
      ]
    }
Exit status: 0 when every mode is ok, 1 when one is not, 2 for bad options.
"""

import argparse
import functools
import json
import multiprocessing as mp
import os
import sys
import time

import numpy as np

MODES = ["serial", "apply", "map", "starmap", "apply_async", "starmap_async", "map_async",
         "imap", "imap_unordered"]


# --- the article's functions (module level, so that workers can unpickle them) ------------------

def howmany_within_range(row, minimum, maximum):
    """Returns how many numbers lie within `maximum` and `minimum` in a given `row`."""
    count = 0
    for n in row:
        if minimum <= n <= maximum:
            count = count + 1
    return count


def howmany_within_range_rowonly(row, minimum=4, maximum=8):
    return howmany_within_range(row, minimum, maximum)


def howmany_within_range2(i, row, minimum, maximum):
    """The same count, with the row's index, for callers that receive results out of order."""
    return (i, howmany_within_range(row, minimum, maximum))


def howmany_within_range_indexed(item, minimum, maximum):
    i, row = item
    return howmany_within_range2(i, row, minimum, maximum)


# --- the modes: each returns the list of counts in row order ------------------------------------

def run_serial(pool, data, mn, mx):
    return [howmany_within_range(row, mn, mx) for row in data]


def run_apply(pool, data, mn, mx):
    return [pool.apply(howmany_within_range, args=(row, mn, mx)) for row in data]


def run_map(pool, data, mn, mx):
    return pool.map(functools.partial(howmany_within_range_rowonly, minimum=mn, maximum=mx), data)


def run_starmap(pool, data, mn, mx):
    return pool.starmap(howmany_within_range, [(row, mn, mx) for row in data])


def run_apply_async(pool, data, mn, mx):
    results = []

    def collect_result(result):  # runs in the pool's result thread, in completion order
        results.append(result)

    pending = [pool.apply_async(howmany_within_range2, args=(i, row, mn, mx),
                                callback=collect_result)
               for i, row in enumerate(data)]
    for r in pending:  # the callback has run when wait() returns
        r.wait()
    results.sort(key=lambda x: x[0])
    return [count for _, count in results]


def run_starmap_async(pool, data, mn, mx):
    results = pool.starmap_async(howmany_within_range2,
                                 [(i, row, mn, mx) for i, row in enumerate(data)]).get()
    return [count for _, count in results]


def run_map_async(pool, data, mn, mx):
    return pool.map_async(functools.partial(howmany_within_range_rowonly, minimum=mn, maximum=mx),
                          data).get()


def run_imap(pool, data, mn, mx):
    return list(pool.imap(functools.partial(howmany_within_range_rowonly, minimum=mn, maximum=mx),
                          data))


def run_imap_unordered(pool, data, mn, mx):
    results = list(pool.imap_unordered(
        functools.partial(howmany_within_range_indexed, minimum=mn, maximum=mx), enumerate(data)))
    results.sort(key=lambda x: x[0])
    return [count for _, count in results]


RUNNERS = {name: globals()["run_" + name] for name in MODES}


# --- the program --------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        description="The multiprocessing article's program: count values within a range per "
                    "row of a random matrix, serially and with a process Pool in each way.")
    p.add_argument("--rows", type=int, default=300000, help="matrix rows (default 300000)")
    p.add_argument("--cols", type=int, default=6, help="matrix columns (default 6)")
    p.add_argument("--low", type=int, default=0, help="smallest value (default 0)")
    p.add_argument("--high", type=int, default=11, help="one past the largest value (default 11)")
    p.add_argument("--seed", type=int, default=110, help="RandomState seed (default 110)")
    p.add_argument("--min", dest="minimum", type=int, default=4, help="range minimum (default 4)")
    p.add_argument("--max", dest="maximum", type=int, default=8, help="range maximum (default 8)")
    p.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)),
                   help="pool workers (default: the CPUs this process may use)")
    p.add_argument("--modes", default=",".join(MODES),
                   help="comma-separated modes to run (default: all; serial always runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--input", default=None,
                   help="read the matrix from a CSV or .npy file instead (as `mproc demo --input`)")
    args = p.parse_args(argv)
    if args.rows < 1 or args.cols < 1:
        p.error("--rows and --cols must be at least 1")
    if args.high <= args.low:
        p.error("--high must be greater than --low")
    if not 0 <= args.seed <= 2**32 - 1:
        p.error("--seed must be within [0, 4294967295]")
    if args.processes < 1:
        p.error("--processes must be at least 1")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error("unknown mode(s) %s; choose from %s" % (", ".join(unknown), ", ".join(MODES)))
    args.modes = ["serial"] + [m for m in MODES if m in modes and m != "serial"]
    return args


def load_matrix(path):
    """A 2-D integer matrix from a .npy file (by its magic) or else from CSV, as mproc demo reads it."""
    with open(path, "rb") as f:
        npy = f.read(6) == b"\x93NUMPY"
    matrix = np.load(path) if npy else np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    if matrix.ndim != 2 or matrix.size == 0 or matrix.dtype.kind not in "iu":
        sys.exit("article.py: %s: not a 2-D integer matrix" % path)
    return matrix


def main(argv):
    args = parse_args(argv)
    if args.input:
        matrix = load_matrix(args.input)
        args.rows, args.cols = matrix.shape
        data = matrix.tolist()
    else:
        data = np.random.RandomState(args.seed).randint(args.low, args.high,
                                                        size=[args.rows, args.cols]).tolist()
    mn, mx = args.minimum, args.maximum

    entries = []
    reference = None
    with mp.Pool(args.processes) as pool:  # started here, outside every mode's timing
        for mode in args.modes:
            start = time.perf_counter()
            counts = RUNNERS[mode](None if mode == "serial" else pool, data, mn, mx)
            seconds = time.perf_counter() - start
            if reference is None:
                reference = counts
            entries.append({
                "mode": mode,
                "pool": "none" if mode == "serial" else "process",
                "seconds": seconds,
                "per_task_us": seconds / args.rows * 1e6,
                "speedup": entries[0]["seconds"] / seconds if entries else 1.0,
                "first10": counts[:10],
                "total": sum(counts),
                "ok": counts == reference,
            })
            print("article.py: %s %.3f s" % (mode, seconds), file=sys.stderr, flush=True)

    if args.json:
        json.dump({"impl": "python", "rows": args.rows, "cols": args.cols, "low": args.low,
                   "high": args.high, "seed": args.seed, "minimum": mn, "maximum": mx,
                   "processes": args.processes, "modes": entries}, sys.stdout)
        print()
    else:
        print_report(args, data, entries)
    return 0 if all(e["ok"] for e in entries) else 1


def print_report(args, data, entries):
    print("data: %d x %d from RandomState(%d).randint(%d, %d); first row %s"
          % (args.rows, args.cols, args.seed, args.low, args.high, data[0]))
    print("counting values within [%d, %d]; pool of %d processes\n"
          % (args.minimum, args.maximum, args.processes))
    for e in entries:
        print("%-15s %s" % (e["mode"], e["first10"]))
    print()
    print("%-15s %-8s %10s %12s %8s %8s  %s" % ("mode", "pool", "seconds", "per task us",
                                               "speedup", "total", "ok"))
    for e in entries:
        print("%-15s %-8s %10.4f %12.3f %7.2fx %8d  %s"
              % (e["mode"], e["pool"], e["seconds"], e["per_task_us"], e["speedup"], e["total"],
                 "ok" if e["ok"] else "MISMATCH"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
