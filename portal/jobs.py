"""Where payment runs execute.

- With SETTLE_BROKER_URL: Celery workers (portal/tasks.py) take the run and its chunks from the
  broker. A broker that does not answer leaves the run Queued with the reason on its page, and the
  dispatcher (Celery beat, and every worker at start) sends it once the broker is back.
- Without: a background thread of the portal ("thread", the embedded default) or the caller
  ("inline": tests, `flask settle run --wait`) runs the same chunk functions.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app
from sqlalchemy import and_, or_, select, update

from portal import clock
from portal.extensions import db
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunState

log = logging.getLogger(__name__)


def uses_broker(app: Flask | None = None) -> bool:
    return bool((app or current_app).config["SETTLE_BROKER_URL"])


def executor(app: Flask, *, here: bool = False) -> str:
    """Where background work runs, chosen here and nowhere else: "broker" (Celery workers),
    "inline" (the caller's thread: tests, and `flask settle run`, which asks `here`) or "thread"
    (a thread of this process: the embedded default)."""
    if uses_broker(app):
        return "broker"
    if here or app.config["SETTLE_JOBS"] == "inline":
        return "inline"
    return "thread"


def _without_broker(app: Flask, where: str, name: str, work, *args) -> None:
    if where == "inline":
        work(app, *args)
        return
    thread = threading.Thread(target=work, args=(app, *args), name=name, daemon=True)
    thread.start()
    app.extensions.setdefault("settle_threads", []).append(thread)


def submit_run(run_id: int, *, here: bool = False) -> bool:
    """Hand a committed, Queued run to the executor; False when the broker did not take it (the
    run stays Queued with the reason, and the dispatcher sends it later)."""
    app = current_app._get_current_object()
    where = executor(app, here=here)
    if where == "broker":
        return send_run(run_id)
    _without_broker(app, where, f"payment-run-{run_id}", _execute, run_id, False)
    return True


def submit_resume(run_id: int) -> None:
    """Go on with a run whose executor died, without a broker (with one, the dispatcher does)."""
    app = current_app._get_current_object()
    where = executor(app)
    if where != "broker":
        _without_broker(app, where, f"payment-run-{run_id}", _execute, run_id, True)


def _execute(app: Flask, run_id: int, resume: bool = False) -> None:
    from portal.runs.engine import execute_run, resume_run
    from portal.runs.service import abandon, trouble

    with app.app_context():
        try:
            (resume_run if resume else execute_run)(run_id)
        except Exception as exc:
            log.exception("payment run #%s stopped", run_id)
            db.session.rollback()
            abandon(run_id, [trouble("the run stopped", exc)])
        finally:
            db.session.remove()


def submit_import(batch_id: int) -> None:
    """Write a large, claimed import in the background: a Celery worker, or a thread here."""
    app = current_app._get_current_object()
    where = executor(app)
    if where == "broker":
        app.extensions["celery"].send_task("settle.apply_import", (batch_id,), retry=False)
        return
    _without_broker(app, where, f"import-{batch_id}", _apply_import, batch_id)


def _apply_import(app: Flask, batch_id: int) -> None:
    from portal.imports.service import apply_in_background

    with app.app_context():
        try:
            apply_in_background(batch_id)
        finally:
            db.session.remove()


def wait_for_runs(app: Flask, timeout: float = 60.0) -> None:
    """Join the run threads started so far (tests)."""
    for thread in list(app.extensions.get("settle_threads", [])):
        thread.join(timeout)


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


# With a broker -----------------------------------------------------------------------------------


def send_run(run_id: int) -> bool:
    """Send a Queued run to the workers; if the broker does not take it, say so on the run."""
    try:
        current_app.extensions["celery"].send_task("settle.begin_run", (run_id,), retry=False)
    except Exception as exc:
        db.session.rollback()
        note = (
            f"The broker {broker_display()} did not take this run ({exc.__class__.__name__}: "
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
    celery = current_app.extensions["celery"]
    sent = []
    try:
        for chunk_id in chunk_ids:
            celery.send_task("settle.run_chunk", (chunk_id,), retry=False)
            sent.append(chunk_id)
    except Exception as exc:
        log.warning("the broker %s did not take chunk(s): %s", broker_display(), exc)
    if sent:
        db.session.execute(
            update(RunChunk).where(RunChunk.id.in_(sent)).values(dispatched_at=clock.now())
        )
        db.session.commit()
    return len(sent)


def dispatch_waiting(now=None) -> list[str]:
    """Send again what no worker holds: Queued runs the broker never took (or lost), chunks never
    sent or lost, chunks whose worker died; and finish a run whose last chunk ended unfinished."""
    from portal.runs import lease
    from portal.runs.service import append_error, give_up_chunk, maybe_finish

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


def broker_display(app: Flask | None = None) -> str:
    """The broker's address without its password."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url((app or current_app).config["SETTLE_BROKER_URL"] or "")


_health: dict = {}


def broker_problem(app: Flask | None = None, *, fresh: bool = False) -> str | None:
    """Why the configured broker cannot take runs now, or None (checked at most every 15 s)."""
    app = app or current_app._get_current_object()
    if not uses_broker(app):
        return None
    url = app.config["SETTLE_BROKER_URL"]
    cached = _health.get(url)
    if cached and not fresh and time.monotonic() - cached[0] < 15:
        return cached[1]
    problem = None
    try:
        with app.extensions["celery"].connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        problem = (
            f"The broker {broker_display(app)} does not answer ({exc.__class__.__name__}). "
            "New payment runs stay Queued until it is back."
        )
    _health[url] = (time.monotonic(), problem)
    return problem
