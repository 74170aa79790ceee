"""Peak memory of the process executing a 10,000 and a 100,000 invoice run on the embedded
default (SQLite, sandbox at 0 ms). Goal: peak(100,000) / peak(10,000) <= 1.2.

.venv/bin/python benchmarks/run_memory.py [--small 10000] [--large 100000]

Each run is `flask settle run --wait` in a fresh process; its peak resident set size comes from
the kernel (wait4's ru_maxrss) when it exits. The sandbox server is a process of its own.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._processes import peak_of_a_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    results = {}
    for n in (args.small, args.large):
        peak, seconds, seeded, summary = peak_of_a_run(n)
        results[n] = peak
        print(f"{n:>7} invoices: peak {peak:7.1f} MiB, run {seconds:7.1f} s, seed {seeded:5.1f} s")
        print(f"         {summary}")
    ratio = results[args.large] / results[args.small]
    print(f"ratio:   {ratio:.3f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
