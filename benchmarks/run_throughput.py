"""Run throughput on the embedded default against a bare baseline. Goal: Settle >= 1.0 x baseline.

.venv/bin/python benchmarks/run_throughput.py [--invoices 10000] [--concurrency 8]
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
    args = parser.parse_args()
    settle_seconds, _ = settle_run(args.invoices, args.concurrency, latency=0.0)
    base_seconds = baseline(args.invoices, args.concurrency, latency=0.0)
    settle_rate, base_rate = args.invoices / settle_seconds, args.invoices / base_seconds
    print(f"invoices: {args.invoices}, calls in flight: {args.concurrency}, sandbox latency: 0 ms")
    print(f"Settle:   {settle_rate:8.1f} invoices/s ({settle_seconds:.1f} s)")
    print(f"baseline: {base_rate:8.1f} invoices/s ({base_seconds:.1f} s)")
    print(f"ratio:    {settle_rate / base_rate:8.2f} (goal >= 1.0)")


if __name__ == "__main__":
    main()
