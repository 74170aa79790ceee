"""Peak memory of the process executing a 10,000 and a 100,000 invoice run on the embedded
default (SQLite, sandbox at 0 ms). Goal: peak(100,000) / peak(10,000) <= 1.2.

.venv/bin/python benchmarks/run_memory.py [--small 10000] [--large 100000]

Each run is `flask settle run --wait` in a fresh process; its peak resident set size comes from
the kernel (wait4's ru_maxrss) when it exits. The sandbox server is a process of its own.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._processes import FLASK, ROOT, Stack  # noqa: E402


def peak_of_a_run(invoices: int) -> tuple[float, float, float, str]:
    """(peak MiB, run seconds, seed seconds, the run's summary line)."""
    stack = Stack()
    try:
        seeded = stack.prepare(invoices)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*FLASK, *stack.run_args()], cwd=ROOT, env=stack.env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the run failed: {out}")
        return usage.ru_maxrss / 1024, seconds, seeded, out.strip().splitlines()[-1]
    finally:
        stack.stop()


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
