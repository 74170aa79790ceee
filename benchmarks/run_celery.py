"""A run spread over Celery workers: PostgreSQL, Redis, the sandbox answering after 200 ms.
The same run with 1, then 2 workers; prints both rates and the speed-up. Goal: >= 1.8x.

.venv/bin/python benchmarks/run_celery.py [--invoices 2000] [--concurrency 4] [--chunk 100]
    [--database postgresql+psycopg://postgres@127.0.0.1:5432/settle_bench]
    [--broker redis://127.0.0.1:6379/9]

Each worker is `celery -A wsgi.celery worker --pool solo` (one process) keeping up to
--concurrency calls in flight; the run is started by `flask settle run --wait`, which returns
when the last chunk is done. The database is emptied, migrated and seeded before each pass.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._processes import ROOT, Stack, fresh_database  # noqa: E402


def run_seconds(url: str) -> float:
    """From the moment a worker began the run to the moment the last chunk finished it."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        started, finished = conn.execute(
            text("SELECT started_at, finished_at FROM payment_runs ORDER BY id DESC LIMIT 1")
        ).one()
    engine.dispose()
    return (finished - started).total_seconds()


def one_pass(args, workers: int) -> float:
    import redis

    redis.Redis.from_url(args.broker).flushdb()
    fresh_database(args.database)
    stack = Stack(
        database_url=args.database,
        latency=args.latency,
        SETTLE_BROKER_URL=args.broker,
        SETTLE_GATEWAY_CONCURRENCY=str(args.concurrency),
        SETTLE_RUN_CHUNK_SIZE=str(args.chunk),
    )
    procs = []
    try:
        stack.prepare(args.invoices)
        for n in range(workers):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "wsgi.celery",
                        "worker",
                        "--pool",
                        "solo",
                        "-n",
                        f"bench{n}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel",
                        "WARNING",
                    ],
                    cwd=ROOT,
                    env=stack.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            )
        time.sleep(4)  # the workers connect to the broker
        done = stack.command(*stack.run_args())
        summary = done.stdout.strip().splitlines()[-1]
        if f"success {args.invoices}" not in summary:
            raise SystemExit(f"the run did not charge every invoice: {summary}\n{done.stderr}")
        return args.invoices / run_seconds(args.database)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/settle_bench"
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    one = one_pass(args, 1)
    two = one_pass(args, 2)
    print(
        f"invoices: {args.invoices}, sandbox latency: {args.latency * 1000:.0f} ms, "
        f"calls in flight per worker: {args.concurrency}, chunk: {args.chunk}"
    )
    for workers, rate in ((1, one), (2, two)):
        limit = (
            f" (limit {workers * args.concurrency / args.latency:.0f}/s)" if args.latency else ""
        )
        print(f"{workers} worker(s): {rate:7.1f} invoices/s{limit}")
    print(f"speed-up:  {two / one:7.2f} (goal >= 1.8)")


if __name__ == "__main__":
    main()
