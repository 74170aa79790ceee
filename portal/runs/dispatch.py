"""Handing payment runs and their chunks to the executor jobs.py chose, and the sweep that hands
again what no executor holds, with a broker or without one."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from portal import jobs
from portal.audit import service as audit
from portal.extensions import db
from portal.runs import lease
from portal.runs.engine import execute_run, resume_run
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunState
from portal.runs.service import (
    abandon,
    append_error,
    cancel_run,
    give_up_chunk,
    maybe_finish,
    trouble,
)
from portal.statuses import GatewayStatus
from portal.transactions.models import PaymentTransaction

log = logging.getLogger(__name__)


def submit_run(run_id: int, *, here: bool = False) -> bool:
    """Hand a committed, Queued run to the executor; False when the broker did not take it (the
    run stays Queued with the reason, and the run sweep sends it later)."""
    app = current_app._get_current_object()
    where = jobs.executor(app, here=here)
    if where == "broker":
        return send_run(run_id)
    jobs.in_background(app, where, f"payment-run-{run_id}", _execute, run_id, False)
    return True


def submit_resume(run_id: int) -> None:
    """Go on here with a run whose executor died, without a broker (with one, its chunks are sent
    to the workers again)."""
    app = current_app._get_current_object()
    where = jobs.executor(app)
    if where != "broker":
        jobs.in_background(app, where, f"payment-run-{run_id}", _execute, run_id, True)


def _execute(run_id: int, resume: bool = False) -> None:
    try:
        (resume_run if resume else execute_run)(run_id)
    except Exception as exc:
        log.exception("payment run #%s stopped", run_id)
        db.session.rollback()
        abandon(run_id, [trouble("the run stopped", exc)])


def wait_until_finished(
    run_id: int, timeout: float | None = None, every: float = 0.5
) -> PaymentRun:
    """Poll the database until the run has finished, wherever it executes (CLI --wait, tests)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = db.session.get(PaymentRun, run_id, populate_existing=True)
        db.session.rollback()  # a fresh snapshot next time
        if run.finished_at is not None or (deadline and time.monotonic() > deadline):
            return run
        time.sleep(every)


def send_run(run_id: int) -> bool:
    """Send a Queued run to the workers; if the broker does not take it, say so on the run."""
    try:
        jobs.send("settle.begin_run", run_id)
    except Exception as exc:
        db.session.rollback()
        note = (
            f"The broker {jobs.broker_display()} did not take this run ({exc.__class__.__name__}: "
            f"{exc}). The run stays Queued and is sent when the broker answers again."
        )
        log.warning("payment run #%s: %s", run_id, note)
        db.session.execute(
            update(PaymentRun).where(PaymentRun.id == run_id).values(dispatch_error=note)
        )
        db.session.commit()
        return False
    db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == run_id)
        .values(dispatched_at=lease.database_now(), dispatch_error=None)
    )
    db.session.commit()
    return True


def send_chunks(chunk_ids: list[int]) -> int:
    """Send chunks to the workers; a chunk not sent keeps no dispatch time and is sent later."""
    sent = []
    try:
        for chunk_id in chunk_ids:
            jobs.send("settle.run_chunk", chunk_id)
            sent.append(chunk_id)
    except Exception as exc:
        log.warning("the broker %s did not take chunk(s): %s", jobs.broker_display(), exc)
    if sent:
        db.session.execute(
            update(RunChunk).where(RunChunk.id.in_(sent)).values(dispatched_at=lease.database_now())
        )
        db.session.commit()
    return len(sent)


@dataclass
class Sweep:
    lines: list[str] = field(default_factory=list)
    # The runs handed to an executor again, or ended because none would take them.
    runs: list[int] = field(default_factory=list)


def sweep_runs(now: datetime | None = None, *, begun_before: datetime | None = None) -> Sweep:
    """Hand again to an executor what none holds, and end what is over, in the same steps with a
    broker and without one (only the hand-over differs: a message to the workers, or a thread):

    1. a Queued run no executor took: sent to the broker again (never taken, or lost); without a
       broker the thread it was handed to died with its process, so it is cancelled, to start again;
    2. a chunk whose executors died MAX_ATTEMPTS times: given up, its invoices not attempted;
    3. a chunk no live executor holds: sent to the workers again; without a broker, its orphaned
       run is resumed in a thread once its Pending calls are sorted (crash recovery does that
       first), so that the run it finishes has every count;
    4. a begun run whose last chunk ended before finishing it: finished.

    `now` may lie ahead of the clock (crash recovery when no other process runs); `begun_before`
    then keeps out the runs a clerk started since, which are not orphaned whatever `now` says.
    """
    now = now or lease.database_now()
    earlier = PaymentRun.created_at < (begun_before or now)
    sweep = Sweep()
    broker = jobs.uses_broker()
    if broker:
        waiting = (PaymentRun.state == RunState.QUEUED.value) & lease.undelivered(
            PaymentRun.dispatched_at, now
        )
    else:
        waiting = lease.run_never_started(now)
    for run_id in db.session.scalars(select(PaymentRun.id).where(waiting, earlier)).all():
        if broker and send_run(run_id):
            sweep.lines.append(f"payment run #{run_id}: sent to the workers")
            sweep.runs.append(run_id)
        elif not broker:
            note = "The run never started: the process stopped first. Start it again."
            if cancel_run(run_id, None, note=note):
                sweep.lines.append(f"payment run #{run_id}: never started, cancelled")
                sweep.runs.append(run_id)
    for chunk in db.session.scalars(select(RunChunk).where(lease.chunk_exhausted(now))).all():
        left = give_up_chunk(chunk)
        append_error(
            chunk.run_id,
            [
                f"chunk #{chunk.id} given up: its executor stopped {chunk.attempts} times; "
                f"{left} invoice(s) not attempted"
            ],
        )
        db.session.commit()
        sweep.lines.append(f"chunk #{chunk.id}: given up after {chunk.attempts} attempts")
    if broker:
        chunks = db.session.scalars(select(RunChunk.id).where(lease.chunk_unheld(now))).all()
        if chunks:
            sweep.lines.append(f"{send_chunks(chunks)} of {len(chunks)} waiting chunk(s) sent")
    else:
        orphaned = (PaymentRun.state == RunState.RUNNING.value) & lease.run_orphaned(now)
        for run_id in db.session.scalars(select(PaymentRun.id).where(orphaned, earlier)).all():
            if not _has_pending(run_id) and _reopen(run_id, now):
                submit_resume(run_id)
                sweep.lines.append(f"payment run #{run_id}: resumed")
                sweep.runs.append(run_id)
    begun = db.session.scalars(
        select(PaymentRun.id).where(
            PaymentRun.finished_at.is_(None), PaymentRun.state != RunState.QUEUED.value
        )
    ).all()
    for run_id in begun:
        if maybe_finish(run_id) is not None:
            sweep.lines.append(f"payment run #{run_id}: finished")
    return sweep


def _reopen(run_id: int, now: datetime) -> bool:
    """Take an orphaned run for a new executor: its dead chunks go back to Queued, each to go on
    after the invoices it already charged or skipped. False when another sweep took it first."""
    taken = db.session.execute(
        update(PaymentRun)
        .where(
            PaymentRun.id == run_id,
            PaymentRun.state == RunState.RUNNING.value,
            lease.run_orphaned(now),
        )
        .values(heartbeat_at=lease.database_now())
    ).rowcount
    if taken != 1:
        db.session.rollback()
        return False
    db.session.execute(
        update(RunChunk)
        .where(RunChunk.run_id == run_id, lease.chunk_stale(now))
        .values(state=ChunkState.QUEUED.value)
    )
    audit.record(
        "payment_run.resumed", db.session.get(PaymentRun, run_id),
        note="The process executing it stopped",
    )  # fmt: skip
    db.session.commit()
    return True


def _has_pending(run_id: int) -> bool:
    pending = select(PaymentTransaction.id).where(
        PaymentTransaction.run_id == run_id,
        PaymentTransaction.status == GatewayStatus.PENDING.value,
    )
    return db.session.scalar(pending) is not None
