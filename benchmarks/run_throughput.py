"""Run throughput on the embedded default against a bare baseline. Goal: Settle >= 1.0 x baseline.

.venv/bin/python benchmarks/run_throughput.py [--invoices 10000] [--concurrency 8]
    [--window 64]

Settle runs twice: with its default claim window (2 x the calls in flight), and with the window
--window (SETTLE_CLAIM_WINDOW), as a team whose gateway answers fast would set it.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import baseline, settle_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args()
    default, _ = settle_run(args.invoices, args.concurrency, latency=0.0)
    wide, _ = settle_run(args.invoices, args.concurrency, latency=0.0,
                         SETTLE_CLAIM_WINDOW=args.window)  # fmt: skip
    base_seconds = baseline(args.invoices, args.concurrency, latency=0.0)
    base_rate = args.invoices / base_seconds
    print(f"invoices: {args.invoices}, calls in flight: {args.concurrency}, sandbox latency: 0 ms")
    print(f"baseline: {base_rate:8.1f} invoices/s ({base_seconds:.1f} s)")
    for name, seconds in ((f"window {2 * args.concurrency}", default),
                          (f"window {args.window}", wide)):  # fmt: skip
        rate = args.invoices / seconds
        print(f"Settle, {name:<10} {rate:8.1f} invoices/s ({seconds:.1f} s): "
              f"ratio {rate / base_rate:.2f} (goal >= 1.0)")  # fmt: skip


if __name__ == "__main__":
    main()
