"""The transactions CSV export at a million rows: streamed with flat memory. Goal: the process
that serves the export of 1,000,000 transactions peaks at <= 150 MiB.

.venv/bin/python benchmarks/export.py [--database URL] [--invoices 200000]
    [--transactions 1000000] [--reseed]

Uses the database benchmarks/pages.py seeds (made here if it is missing). Each export is served
by a fresh process through the portal's own WSGI app and read as it streams; its peak resident
set size comes from the kernel (its peak started afresh once the process is up and logged in,
so that it is the export's). A small export (the first week's calls) is measured the same way,
so that the two peaks show whether memory grows with the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.pages import database_arguments, logged_in, seeded_database  # noqa: E402

GOAL_MIB = 150.0


def child(query: str) -> None:
    """Serve one export and read it to the end; print rows, bytes, seconds and the peak."""
    from portal import create_app

    client = logged_in(create_app({"WTF_CSRF_ENABLED": False}))
    before = _status("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    response = client.get(f"/transactions/export.csv?{query}", buffered=False)
    assert response.status_code == 200, response.status_code
    rows = size = 0
    for chunk in response.response:
        size += len(chunk)
        rows += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
    response.close()
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    print(json.dumps({"rows": rows - 1, "bytes": size, "seconds": seconds, "peak_mib": peak,
                      "before_mib": before, "life_mib": _life_peak}))  # fmt: skip


_life_peak = 0.0


def _status(field: str) -> float:
    """A line of /proc/self/status in MiB: VmRSS (resident now) or VmHWM (its peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Start the kernel's peak (VmHWM) afresh, so that it measures the export alone and not the
    start-up or the login's password hash (scrypt takes 32 MiB for a moment)."""
    global _life_peak
    _life_peak = _status("VmHWM")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def export(query: str, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", query],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    database_arguments(parser)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    env = seeded_database(args)
    first_week = export("kind=all&sort=requested&dir=asc&until=" + _first_week(env), env)
    everything = export("kind=all", env)
    for name, r in (("first week", first_week), ("every call", everything)):
        print(f"{name:<11} {r['rows']:>9} rows, {r['bytes'] / 2**20:7.1f} MiB of CSV in "
              f"{r['seconds']:6.1f} s ({r['rows'] / r['seconds']:8.0f} rows/s), "
              f"peak {r['peak_mib']:6.1f} MiB (resident before it {r['before_mib']:.1f} MiB; "
              f"start-up and login peaked at {r['life_mib']:.1f} MiB)")  # fmt: skip
    print(f"memory ratio: {everything['peak_mib'] / first_week['peak_mib']:.2f} "
          f"({everything['rows']} rows against {first_week['rows']})")  # fmt: skip
    print(f"peak: {everything['peak_mib']:.1f} MiB for {everything['rows']} rows "
          f"(goal <= {GOAL_MIB:.0f} MiB): ratio {everything['peak_mib'] / GOAL_MIB:.2f} of the goal")  # fmt: skip


def _first_week(env: dict) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(env["SETTLE_DATABASE_URL"])
    with engine.connect() as conn:
        first = conn.execute(text("SELECT min(requested_at) FROM payment_transactions")).scalar()
    engine.dispose()
    return (first.date().fromordinal(first.date().toordinal() + 6)).isoformat()


if __name__ == "__main__":
    main()
