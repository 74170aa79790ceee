"""Run speed with a slow gateway. Goal: >= 0.85 x the limit C / latency (136 invoices/s at 32
calls in flight and 200 ms).

.venv/bin/python benchmarks/run_latency.py [--invoices 5000] [--concurrency 32] [--latency 0.2]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import settle_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    seconds, _ = settle_run(args.invoices, args.concurrency, latency=args.latency)
    rate, limit = args.invoices / seconds, args.concurrency / args.latency
    print(f"invoices: {args.invoices}, calls in flight: {args.concurrency}, "
          f"latency: {args.latency * 1000:.0f} ms")  # fmt: skip
    print(f"Settle: {rate:8.1f} invoices/s ({seconds:.1f} s)")
    print(f"limit:  {limit:8.1f} invoices/s (C / latency)")
    print(f"ratio:  {rate / limit:8.2f} (goal >= 0.85)")


if __name__ == "__main__":
    main()
