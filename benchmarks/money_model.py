"""Run the money model long (tests/integration/money_model.py): Hypothesis plays the actors of a
charge's life against the sandbox gateway over HTTP and checks the invariants against the
sandbox's own ledger after every step. CI runs a few examples; this runs as many as asked, on
SQLite or PostgreSQL, and prints what the examples did.

    .venv/bin/python benchmarks/money_model.py --examples 2000 [--steps 20] [--seed 1]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/settle_model]
        [--leave-out clerk_books_a_partial_manual_payment ...]

A broken invariant stops it with Hypothesis's shrunk example: the steps that break it, in order
(and the shortest failing steps it saw, for a failure that a race makes replay otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="a fixed seed (default: random)")
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--leave-out", action="append", default=[], metavar="RULE",
                        help="play without this rule (repeatable): an actor whose finding is"
                        " open, so that the run looks for the next one")  # fmt: skip
    args = parser.parse_args()

    from flask_migrate import upgrade
    from hypothesis import HealthCheck, Phase, seed, settings
    from hypothesis.stateful import run_state_machine_as_test

    from benchmarks._processes import fresh_database
    from portal import create_app
    from portal.sandbox.server import SandboxServer
    from tests.conftest import empty_database
    from tests.integration.money_model import MoneyModel, without

    tmp = tempfile.mkdtemp(prefix="settle-money-model-")
    os.environ["SETTLE_INSTANCE_PATH"] = os.path.join(tmp, "instance")
    url = args.database or f"sqlite:///{tmp}/model.db"
    if args.database:
        fresh_database(url)
    app = create_app({"TESTING": True, "SECRET_KEY": "model", "SQLALCHEMY_DATABASE_URI": url,
                      "SETTLE_JOBS": "inline"})  # fmt: skip
    with app.app_context():
        upgrade()
    sandbox = SandboxServer(hang_seconds=2.0, settle_after=3600).start()
    MoneyModel.app, MoneyModel.sandbox = app, sandbox
    MoneyModel.empty_database = staticmethod(empty_database)
    chosen = settings(
        max_examples=args.examples, stateful_step_count=args.steps, deadline=None,
        suppress_health_check=list(HealthCheck), database=None,
        phases=[Phase.generate, Phase.shrink],
    )  # fmt: skip
    machine = without(*args.leave_out) if args.leave_out else MoneyModel
    machine = machine if args.seed is None else seed(args.seed)(machine)
    started = time.monotonic()
    try:
        run_state_machine_as_test(machine, settings=chosen)
        verdict = "every invariant held"
    finally:
        sandbox.stop()
        took = time.monotonic() - started
        played = MoneyModel.stats.pop("examples", 0)
        print(f"money model: {played} examples played ({args.examples} asked, replays while"
              f" shrinking included) of up to {args.steps} steps on "
              f"{'PostgreSQL' if args.database else 'SQLite'} in {took:.0f} s"
              + (f", without {', '.join(args.leave_out)}" if args.leave_out else ""))  # fmt: skip
        for what, n in sorted(MoneyModel.stats.items()):
            print(f"  {what}: {n}")
        print("money model: seconds spent in each rule and invariant")
        for what, seconds in MoneyModel.seconds.most_common():
            print(f"  {what}: {seconds:.1f}")
        if MoneyModel.failures:
            # Hypothesis prints its shrunk example when the failure replays; one that a race
            # decides may not (it stops on its flaky check), so the shortest seen is printed too.
            steps, what = min(MoneyModel.failures, key=lambda failure: len(failure[0]))
            print(f"money model: {len(MoneyModel.failures)} failing example(s) seen; the shortest,"
                  f" as it ran ({len(steps)} steps):")  # fmt: skip
            for step in steps:
                print(f"  {step}")
            print(f"  failed: {what}")
    print(f"money model: {verdict}")


if __name__ == "__main__":
    main()
