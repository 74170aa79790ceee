"""A month-end run: 100,000 invoices on the embedded default (SQLite) through a sandbox that
answers in 200 ms, 64 calls in flight. Goals: <= 15 minutes, and a peak memory <= 1.2 x the
same run of 10,000 invoices.

.venv/bin/python benchmarks/run_month_end.py [--invoices 100000] [--small 10000]
    [--latency 0.2] [--concurrency 64]

Each run is `flask settle run --wait` in a fresh process (its peak resident set size from the
kernel when it exits); the sandbox gateway server is a process of its own.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._processes import peak_of_a_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    env = {"SETTLE_GATEWAY_CONCURRENCY": str(args.concurrency)}
    peaks, limit = {}, args.concurrency / args.latency
    for n in (args.small, args.invoices):
        peak, seconds, seeded, summary = peak_of_a_run(n, args.latency, **env)
        peaks[n] = peak
        print(f"{n:>7} invoices: run {seconds / 60:6.2f} min ({n / seconds:6.1f} invoices/s, "
              f"limit C/L {limit:.0f}/s), peak {peak:7.1f} MiB, seed {seeded:5.1f} s")  # fmt: skip
        print(f"         {summary}")
        minutes = seconds / 60
    print(f"memory ratio: {peaks[args.invoices] / peaks[args.small]:.3f} (goal <= 1.2)")
    print(f"minutes:      {minutes:.2f} for {args.invoices} invoices (goal <= 15)")


if __name__ == "__main__":
    main()
