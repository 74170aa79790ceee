"""Handing payment runs and their chunks to the executor jobs.py chose, and the dispatcher, which
sends again what no worker holds when a broker is configured."""

from __future__ import annotations

import logging
import time

from flask import current_app
from sqlalchemy import and_, or_, select, update

from portal import clock, jobs
from portal.extensions import db
from portal.runs import lease
from portal.runs.engine import execute_run, resume_run
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunState
from portal.runs.service import abandon, append_error, give_up_chunk, maybe_finish, trouble

log = logging.getLogger(__name__)


def submit_run(run_id: int, *, here: bool = False) -> bool:
    """Hand a committed, Queued run to the executor; False when the broker did not take it (the
    run stays Queued with the reason, and the dispatcher sends it later)."""
    app = current_app._get_current_object()
    where = jobs.executor(app, here=here)
    if where == "broker":
        return send_run(run_id)
    jobs.in_background(app, where, f"payment-run-{run_id}", _execute, run_id, False)
    return True


def submit_resume(run_id: int) -> None:
    """Go on with a run whose executor died, without a broker (with one, the dispatcher does)."""
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
        .values(dispatched_at=clock.now(), dispatch_error=None)
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
            update(RunChunk).where(RunChunk.id.in_(sent)).values(dispatched_at=clock.now())
        )
        db.session.commit()
    return len(sent)


def dispatch_waiting(now=None) -> list[str]:
    """Send again what no worker holds: Queued runs the broker never took (or lost), chunks never
    sent or lost, chunks whose worker died; and finish a run whose last chunk ended unfinished."""
    now = now or clock.now()
    lines = []
    runs = db.session.scalars(
        select(PaymentRun.id).where(
            PaymentRun.state == RunState.QUEUED.value,
            lease.undelivered(PaymentRun.dispatched_at, now),
        )
    ).all()
    for run_id in runs:
        if send_run(run_id):
            lines.append(f"payment run #{run_id}: sent to the workers")
    # A chunk whose workers died MAX_ATTEMPTS times is given up, with the reason on its run;
    # its invoices not charged stay eligible for the next run.
    for chunk in db.session.scalars(select(RunChunk).where(lease.chunk_exhausted(now))).all():
        left = give_up_chunk(chunk)
        append_error(
            chunk.run_id,
            [
                f"chunk #{chunk.id} given up: its worker stopped {chunk.attempts} times; "
                f"{left} invoice(s) not attempted"
            ],
        )
        db.session.commit()
        lines.append(f"chunk #{chunk.id}: given up after {chunk.attempts} attempts")
    chunks = db.session.scalars(
        select(RunChunk.id).where(
            or_(
                and_(
                    RunChunk.state == ChunkState.QUEUED.value,
                    lease.undelivered(RunChunk.dispatched_at, now),
                ),
                lease.chunk_stale(now),
            )
        )
    ).all()
    if chunks:
        lines.append(f"{send_chunks(chunks)} of {len(chunks)} waiting chunk(s) sent")
    begun = db.session.scalars(
        select(PaymentRun.id).where(
            PaymentRun.finished_at.is_(None), PaymentRun.state != RunState.QUEUED.value
        )
    ).all()
    for run_id in begun:
        if maybe_finish(run_id) is not None:
            lines.append(f"payment run #{run_id}: finished")
    return lines
