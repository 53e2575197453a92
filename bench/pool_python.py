#!/usr/bin/python3
"""Python's side of bench/bench_pool.cpp: the same four measurements with multiprocessing.Pool
on the same machine. Prints one JSON object: apply_median_us, apply_async_us_per_task,
article_map_s, article_serial_s, pool_start_stop_ms. Run with /usr/bin/python3."""
import json
import multiprocessing as mp
import statistics
import sys
import time

import numpy as np


def tiny(x):
    return x + 1


def howmany_within_range(row, minimum=4, maximum=8):
    count = 0
    for n in row:
        if minimum <= n <= maximum:
            count += 1
    return count


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 300000
    rows = np.random.RandomState(110).randint(0, 11, size=[300000, 6]).tolist()
    out = {}
    with mp.Pool(2) as pool:
        pool.apply(tiny, (0,))
        samples = []
        for i in range(3000):
            t0 = time.perf_counter()
            pool.apply(tiny, (i,))
            samples.append(time.perf_counter() - t0)
        out["apply_median_us"] = statistics.median(samples) * 1e6

        t0 = time.perf_counter()
        results = [pool.apply_async(tiny, (i,)) for i in range(tasks)]
        total = sum(r.get() for r in results)
        out["apply_async_us_per_task"] = (time.perf_counter() - t0) / tasks * 1e6
        assert total == sum(range(1, tasks + 1))

        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            pool.map(howmany_within_range, rows)
            times.append(time.perf_counter() - t0)
        out["article_map_s"] = min(times)

    t0 = time.perf_counter()
    serial = [howmany_within_range(r) for r in rows]
    out["article_serial_s"] = time.perf_counter() - t0
    assert sum(serial) == 818749

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        pool = mp.Pool(2)
        pool.close()
        pool.join()
        times.append(time.perf_counter() - t0)
    out["pool_start_stop_ms"] = min(times) * 1e3
    print(json.dumps(out))


if __name__ == "__main__":
    main()
