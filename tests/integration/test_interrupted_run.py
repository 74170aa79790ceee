"""A run killed in its middle (as kill -9 would) finishes its work after the restart, with counts
that add up; where it cannot go on, every invoice it did not attempt is named, and one click
charges them in a new run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.runs.engine import execute_run
from portal.runs.lease import MAX_ATTEMPTS
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunSkip
from portal.runs.service import NOT_ATTEMPTED, start_run, start_run_for_not_attempted
from portal.sweeps.recovery import recover
from portal.transactions.models import Operation, PaymentTransaction

pytestmark = pytest.mark.integration

INVOICES = 57
# The process dies once this many answers are committed, with calls still in flight.
DIES_AFTER = 17

DYING_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from portal import create_app

    url, run_id, dies_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SETTLE_JOBS": "inline",
                      "SETTLE_GATEWAY_CONCURRENCY": 4, "SETTLE_ANSWER_BATCH": 4})
    from portal.runs import engine
    from portal.transactions import effects

    real, answers = effects.finish_charges, []

    def dying(batch):
        real(batch)
        answers.extend(batch)
        if len(answers) >= dies_after:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no clean-up of any kind

    effects.finish_charges = dying
    with app.app_context():
        engine.execute_run(run_id)
    """
)
TOKENS = ["tok_approve", "tok_decline", "tok_review", "tok_cvc", "tok_approve", "tok_closed"]


def _kill_mid_run(app, run_id: int) -> None:
    died = subprocess.run(
        [sys.executable, "-c", DYING_RUN, app.config["SQLALCHEMY_DATABASE_URI"], str(run_id),
         str(DIES_AFTER)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert died.returncode == -9, died.stderr


def _charges(run_id: int) -> list[PaymentTransaction]:
    return db.session.scalars(
        select(PaymentTransaction).where(
            PaymentTransaction.run_id == run_id, PaymentTransaction.operation == Operation.CHARGE
        )
    ).all()


def test_a_run_killed_in_its_middle_finishes_its_work_after_the_restart(app, make_invoice, sandbox):
    invoices = [make_invoice(token=TOKENS[n % len(TOKENS)]) for n in range(INVOICES)]
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    run_id = run.id
    _kill_mid_run(app, run_id)
    db.session.expire_all()
    half = db.session.get(PaymentRun, run_id)
    assert half.state == "Running" and half.processed_count < INVOICES

    recover(alone=True)  # what `flask settle serve` does at start

    db.session.expire_all()
    run = db.session.get(PaymentRun, run_id)
    assert run.finished_at is not None
    assert run.selected_count == INVOICES
    assert run.processed_count + run.skipped_count == INVOICES
    assert run.progress_percent == 100
    counted = (run.success_count + run.decline_count + run.failure_count
               + run.indeterminate_count + run.review_count)  # fmt: skip
    assert counted == run.processed_count
    # Every invoice was charged exactly once by this run, and once at the gateway.
    charges = _charges(run_id)
    assert sorted(c.invoice_id for c in charges) == sorted(i.id for i in invoices)
    orders = Counter(c["order_id"] for c in sandbox.ledger.all())
    assert set(orders.values()) == {1}
    assert "Pending" not in {c.status for c in charges}
    assert db.session.scalar(select(RunSkip).where(RunSkip.run_id == run_id)) is None


def test_a_chunk_that_lost_every_executor_names_what_it_did_not_attempt(
    app, make_invoice, sandbox, make_user
):
    [make_invoice(token="tok_approve") for _ in range(INVOICES)]
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    run_id = run.id
    _kill_mid_run(app, run_id)
    # Its executor has died as often as a chunk allows: recovery gives it up.
    db.session.execute(
        RunChunk.__table__.update().where(RunChunk.run_id == run_id).values(attempts=MAX_ATTEMPTS)
    )
    db.session.commit()
    recover(now=clock.now() + timedelta(minutes=30))

    db.session.expire_all()
    run = db.session.get(PaymentRun, run_id)
    assert run.state == "Completed with errors" and "not attempted" in run.error
    skips = db.session.scalars(select(RunSkip).where(RunSkip.run_id == run_id)).all()
    assert {s.reason for s in skips} == {NOT_ATTEMPTED}
    assert run.processed_count + run.skipped_count == run.selected_count == INVOICES
    assert len(skips) == INVOICES - len(_charges(run_id))
    assert db.session.scalars(select(RunChunk.state)).all() == [ChunkState.DONE.value]

    # One click charges exactly those, and a second click is refused.
    supervisor = make_user("supervisor")
    follow_up = start_run_for_not_attempted(run_id, supervisor)
    db.session.commit()
    execute_run(follow_up.id)
    db.session.expire_all()
    follow_up = db.session.get(PaymentRun, follow_up.id)
    assert follow_up.selected_count == len(skips) == follow_up.success_count
    orders = Counter(c["order_id"] for c in sandbox.ledger.all())
    # A call the kill caught before it left was closed by recovery as never sent: its invoice is
    # eligible for the next run, not part of the not-attempted list. Every other one is charged.
    never_sent = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.finalization == "Recovered: never sent")
    ).all()
    assert set(orders.values()) == {1}
    assert len(orders) + len(never_sent) == INVOICES
    with pytest.raises(Exception, match="was started for them already"):
        start_run_for_not_attempted(run_id, supervisor)


def test_an_internal_error_on_one_invoice_is_listed_without_python_text(
    app, make_invoice, sandbox, monkeypatch
):
    from portal.runs import charging

    invoices = [make_invoice() for _ in range(3)]
    real = charging.claim_many

    def broken(invoice_ids, run, rf):
        if invoices[1].id in invoice_ids:
            raise KeyError("internal detail")
        return real(invoice_ids, run, rf)

    monkeypatch.setattr(charging, "claim_many", broken)
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    run = execute_run(run.id)
    assert run.state == "Completed with errors"
    assert "internal detail" not in run.error and "KeyError" not in run.error
    assert f"invoice id {invoices[1].id}: an internal error at" in run.error
    assert run.processed_count + run.skipped_count == run.selected_count == 3
    skip = db.session.scalar(select(RunSkip).where(RunSkip.run_id == run.id))
    assert (skip.invoice_id, skip.reason) == (invoices[1].id, "not attempted: an internal error")


def test_the_recover_command_finishes_a_killed_run_before_it_exits(
    app, make_invoice, sandbox, monkeypatch
):
    """Without a broker an orphaned run goes on in a thread of the recovering process: the command
    must wait for it, else the run dies with the command and stays Running (found by
    benchmarks/crash_soak.py: the next run of its filter was refused)."""
    for n in range(INVOICES):
        make_invoice(token=TOKENS[n % len(TOKENS)])
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    run_id = run.id
    _kill_mid_run(app, run_id)
    monkeypatch.setitem(app.config, "SETTLE_JOBS", "thread")  # the embedded default's executor
    result = app.test_cli_runner().invoke(args=["settle", "recover", "--alone"])
    assert result.exit_code == 0, result.output
    assert f"payment run #{run_id}: finished after the interruption" in result.output
    db.session.expire_all()
    run = db.session.get(PaymentRun, run_id)
    assert run.finished_at is not None and run.processed_count + run.skipped_count == INVOICES
