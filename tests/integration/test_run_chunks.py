"""Runs in chunks: each chunk executed once, a dead worker's chunk taken over, cancel, dispatch."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine
from sqlalchemy import func, select, update

from portal import clock
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.runs import dispatch
from portal.runs.engine import begin_run, run_chunk
from portal.runs.lease import STALE_AFTER
from portal.runs.models import ChunkState, PaymentRun, RunChunk
from portal.runs.service import cancel_run, finish_run, start_run
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


def _queued_run() -> int:
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    return run.id


def _run(run_id: int) -> PaymentRun:
    db.session.expire_all()
    return db.session.get(PaymentRun, run_id)


def _finished_events(run_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "payment_run.finished", AuditEvent.entity_id == run_id)
    )


def test_a_run_in_chunks_charges_every_invoice_once_and_finishes_once(app, make_invoice, sandbox):
    for _ in range(10):
        make_invoice()
    run_id = _queued_run()
    chunk_ids = begin_run(run_id, chunk_size=3)
    assert len(chunk_ids) == 4 and begin_run(run_id, chunk_size=3) == []  # begun once
    for chunk_id in chunk_ids + chunk_ids:  # every chunk delivered twice
        run_chunk(chunk_id)
    run = _run(run_id)
    assert (run.state, run.selected_count, run.chunk_count, run.success_count) == (
        "Completed", 10, 4, 10,
    )  # fmt: skip
    assert len(sandbox.ledger.all()) == 10
    assert set(db.session.scalars(select(RunChunk.attempts))) == {1}
    finish_run(run_id)  # a late second finisher changes nothing
    assert _finished_events(run_id) == 1


def test_a_chunk_whose_worker_died_is_taken_over_and_a_live_one_is_not(app, make_invoice, sandbox):
    for _ in range(4):
        make_invoice()
    run_id = _queued_run()
    (chunk_id,) = begin_run(run_id, chunk_size=10)
    started = clock.now()
    db.session.execute(
        update(RunChunk)
        .where(RunChunk.id == chunk_id)
        .values(state=ChunkState.RUNNING.value, heartbeat_at=started, attempts=1, worker="gone:1")
    )
    db.session.commit()
    run_chunk(chunk_id)  # its worker may still be alive: left alone
    assert db.session.get(RunChunk, chunk_id, populate_existing=True).attempts == 1
    # This machine's clock running ahead does not make it stale: the database's clock judges.
    with time_machine.travel(started + STALE_AFTER + timedelta(minutes=1), tick=False):
        run_chunk(chunk_id)
    assert db.session.get(RunChunk, chunk_id, populate_existing=True).attempts == 1
    assert sandbox.ledger.all() == []
    db.session.execute(
        update(RunChunk)
        .where(RunChunk.id == chunk_id)
        .values(heartbeat_at=started - STALE_AFTER - timedelta(seconds=1))
    )
    db.session.commit()  # its worker has now been silent longer than STALE_AFTER
    run_chunk(chunk_id)
    chunk = db.session.get(RunChunk, chunk_id, populate_existing=True)
    assert (chunk.state, chunk.attempts) == ("Done", 2) and chunk.worker != "gone:1"
    assert _run(run_id).success_count == 4


def test_cancel_closes_the_chunks_no_worker_took_and_the_run_ends(app, make_invoice, sandbox):
    for _ in range(6):
        make_invoice()
    run_id = _queued_run()
    first, *rest = begin_run(run_id, chunk_size=2)
    run_chunk(first)
    assert cancel_run(run_id, None)
    for chunk_id in rest:  # their messages arrive after the cancel: nothing is charged
        run_chunk(chunk_id)
    run = _run(run_id)
    assert run.state == "Cancelled" and run.finished_at is not None
    assert run.success_count == 2 and len(sandbox.ledger.all()) == 2
    assert run.skipped_count == 4 and run.processed_count + run.skipped_count == run.selected_count
    assert set(db.session.scalars(select(RunChunk.state))) == {"Done"}
    assert _finished_events(run_id) == 1


class _Recorder:
    """Stands in for the Celery app: records what would be sent to the broker."""

    def __init__(self, fail: bool = False):
        self.sent, self.fail = [], fail

    def send_task(self, name, args, retry=True):
        if self.fail:
            raise ConnectionRefusedError("Connection refused")
        self.sent.append((name, *args))


@pytest.fixture
def recorder(app, monkeypatch):
    monkeypatch.setitem(app.config, "SETTLE_BROKER_URL", "redis://user:secret@127.0.0.1:6379/0")
    rec = _Recorder()
    monkeypatch.setitem(app.extensions, "celery", rec)
    return rec


def test_the_dispatcher_sends_again_only_what_no_worker_holds(app, make_invoice, recorder):
    for _ in range(6):
        make_invoice()
    never_sent = _queued_run()
    begun = start_run(due_on=date.today(), currency="USD", actor=None)
    db.session.commit()
    fresh, stale, lost, done = begin_run(begun.id, chunk_size=2) + [None]  # 3 chunks
    assert done is None
    now = clock.now()
    db.session.execute(
        update(RunChunk).where(RunChunk.id == fresh).values(state="Running", heartbeat_at=now)
    )
    db.session.execute(
        update(RunChunk)
        .where(RunChunk.id == stale)
        .values(state="Running", heartbeat_at=now - STALE_AFTER - timedelta(seconds=5))
    )
    db.session.commit()
    dispatch.sweep_runs(now)
    assert ("settle.begin_run", never_sent) in recorder.sent
    assert {c for name, c in recorder.sent if name == "settle.run_chunk"} == {stale, lost}
    assert _run(never_sent).dispatched_at is not None
    recorder.sent.clear()
    dispatch.sweep_runs(now + timedelta(minutes=1))  # sent a minute ago: not again yet
    assert {c for name, c in recorder.sent if name == "settle.run_chunk"} == {stale}
    assert ("settle.begin_run", never_sent) not in recorder.sent


def test_a_broker_that_refuses_leaves_the_run_queued_with_the_reason_and_no_password(app, recorder):
    recorder.fail = True
    run_id = _queued_run()
    assert dispatch.send_run(run_id) is False
    run = _run(run_id)
    assert run.state == "Queued" and run.dispatched_at is None
    assert "ConnectionRefusedError" in run.dispatch_error and "secret" not in run.dispatch_error
    recorder.fail = False
    dispatch.sweep_runs()
    run = _run(run_id)
    assert run.dispatch_error is None and recorder.sent == [("settle.begin_run", run_id)]


def test_the_dispatcher_finishes_a_run_whose_last_chunk_ended_before_finishing_it(
    app, make_invoice, recorder, sandbox
):
    make_invoice()
    run_id = _queued_run()
    (chunk_id,) = begin_run(run_id, chunk_size=5)
    db.session.execute(update(RunChunk).where(RunChunk.id == chunk_id).values(state="Done"))
    db.session.commit()  # as if the worker died between closing its chunk and finishing the run
    assert _run(run_id).finished_at is None
    assert "payment run" in " ".join(dispatch.sweep_runs().lines)
    assert _run(run_id).finished_at is not None


def test_a_worker_whose_chunk_was_taken_over_knows_it_and_closes_nothing(app, make_invoice):
    from portal.runs.engine import _Owner

    make_invoice()
    run_id = _queued_run()
    (chunk_id,) = begin_run(run_id, chunk_size=10)
    db.session.execute(update(RunChunk).where(RunChunk.id == chunk_id).values(attempts=1))
    db.session.commit()  # this worker's claim
    owner = _Owner(chunk_id, attempt=1)
    try:
        owner.beat()
        assert not owner.lost
        db.session.execute(update(RunChunk).where(RunChunk.id == chunk_id).values(attempts=2))
        db.session.commit()  # another worker claimed it
        owner.beat()
        assert owner.lost
    finally:
        owner.stop()


def test_a_chunk_whose_workers_keep_dying_is_given_up_and_its_run_ends(app, make_invoice, recorder):
    from portal.runs.lease import MAX_ATTEMPTS

    make_invoice()
    run_id = _queued_run()
    (chunk_id,) = begin_run(run_id, chunk_size=10)
    old = clock.now() - STALE_AFTER - timedelta(seconds=1)
    db.session.execute(
        update(RunChunk)
        .where(RunChunk.id == chunk_id)
        .values(state="Running", heartbeat_at=old, attempts=MAX_ATTEMPTS)
    )
    db.session.commit()
    run_chunk(chunk_id)  # no further attempt
    assert db.session.get(RunChunk, chunk_id, populate_existing=True).attempts == MAX_ATTEMPTS
    dispatch.sweep_runs()
    run = _run(run_id)
    assert run.state == "Completed with errors" and "given up" in run.error
    assert recorder.sent == []


def test_a_call_waiting_for_its_gateway_turn_does_not_leave_after_a_cancel(app, make_invoice):
    from portal.runs.charging import CANCELLED_BEFORE_ITS_TURN, claim
    from portal.runs.service import run_filter

    invoice = make_invoice()
    run_id = _queued_run()
    begin_run(run_id, chunk_size=10)
    assert cancel_run(run_id, None)
    run = _run(run_id)
    assert claim(invoice.id, run, run_filter(run)) == CANCELLED_BEFORE_ITS_TURN
    assert db.session.scalar(select(func.count()).select_from(PaymentTransaction)) == 0


def test_recovery_leaves_a_slow_call_whose_worker_still_beats(app, make_invoice, sandbox):
    from portal.runs.charging import claim
    from portal.runs.service import run_filter
    from portal.sweeps.recovery import recover

    invoice = make_invoice()
    run_id = _queued_run()
    (chunk_id,) = begin_run(run_id, chunk_size=10)
    run = _run(run_id)
    pending = claim(invoice.id, run, run_filter(run))  # sent long ago, still no answer
    later = clock.now() + timedelta(minutes=4)
    db.session.execute(
        update(RunChunk)
        .where(RunChunk.id == chunk_id)
        .values(state="Running", heartbeat_at=later - timedelta(seconds=20))
    )
    db.session.commit()
    assert recover(now=later).transactions == []
    assert (
        db.session.get(PaymentTransaction, pending.txn_id, populate_existing=True).status
        == "Pending"
    )


def test_settle_run_with_a_broker_sends_the_run_and_says_when_the_broker_refuses(
    app, make_invoice, recorder
):
    make_invoice()
    runner = app.test_cli_runner()
    sent = runner.invoke(args=["settle", "run", "--due", date.today().isoformat()])
    assert sent.exit_code == 0, sent.output
    assert "sent to the Celery workers" in sent.output
    assert recorder.sent == [("settle.begin_run", 1)]
    recorder.fail = True
    refused = runner.invoke(
        args=["settle", "run", "--due", date.today().isoformat(), "--currency", "USD"]
    )
    assert refused.exit_code != 0
    assert "is Queued and waits for the broker" in refused.output
    assert _run(2).state == "Queued"
