"""Executing a payment run: split it into chunks, charge each chunk (pipeline.py: windows of
invoices claimed together, calls in flight per gateway, answers written back in batches), finish
the run when its last chunk is done.

The portal's background thread and a Celery worker call the very same two functions: `begin_run`
then `run_chunk` for each chunk. Every step moves state by a conditional UPDATE, so a run begun
twice, or a chunk given to two workers, is executed once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from flask import current_app
from sqlalchemy import select, update

from portal import clock
from portal.extensions import db
from portal.runs import eligibility, lease
from portal.runs.lease import HEARTBEAT_EVERY
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunState
from portal.runs.pipeline import ChargeLoop
from portal.runs.service import (
    append_error,
    maybe_finish,
    not_attempted_ids,
    open_chunks,
    run_filter,
    trouble,
)

log = logging.getLogger(__name__)

# How long an executor's silence means it died, and how often a chunk is taken over: lease.py.


def execute_run(run_id: int) -> PaymentRun:
    """Begin a Queued run and execute all its chunks here (the portal thread, the CLI, tests)."""
    for chunk_id in begin_run(run_id, current_app.config["SETTLE_RUN_CHUNK_SIZE"]):
        run_chunk(chunk_id)
    return db.session.get(PaymentRun, run_id, populate_existing=True)


def resume_run(run_id: int) -> PaymentRun:
    """Go on with a Running run whose executor died: its chunks not done, each after the invoices
    it already charged or skipped, then finish it, as if it had never stopped."""
    chunk_ids = db.session.scalars(
        select(RunChunk.id)
        .where(RunChunk.run_id == run_id, RunChunk.state != ChunkState.DONE.value)
        .order_by(RunChunk.seq)
    ).all()
    for chunk_id in chunk_ids:
        run_chunk(chunk_id)
    if not open_chunks(run_id):
        maybe_finish(run_id)
    return db.session.get(PaymentRun, run_id, populate_existing=True)


def begin_run(run_id: int, chunk_size: int) -> list[int]:
    """Queued → Running, and the eligible invoices split into chunks, in one database transaction.

    Returns the new chunks' ids; none if the run was not Queued (begun elsewhere, or cancelled).
    """
    # started_at is business time (the retry schedule's "now"); the heartbeat is the lease's.
    moved = db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == run_id, PaymentRun.state == RunState.QUEUED.value)
        .values(
            state=RunState.RUNNING.value,
            started_at=clock.now(),
            heartbeat_at=lease.database_now(),
            dispatch_error=None,
        )  # fmt: skip
    ).rowcount
    if moved != 1:
        db.session.rollback()
        log.info("payment run #%s is not Queued: not begun again", run_id)
        return []
    run = db.session.get(PaymentRun, run_id, populate_existing=True)
    if run.follows_run_id:
        ids = not_attempted_ids(run.follows_run_id)
    else:
        ids = eligibility.candidate_ids(run_filter(run))
    # A capped run is one chunk, so that its cap is exact.
    size = max(1, len(ids) if run.invoice_limit else chunk_size)
    chunks = [
        RunChunk(run_id=run_id, seq=n, invoice_ids=ids[start : start + size])
        for n, start in enumerate(range(0, len(ids), size))
    ]
    db.session.add_all(chunks)
    run.selected_count, run.chunk_count = len(ids), len(chunks)
    db.session.commit()
    chunk_ids = [chunk.id for chunk in chunks]
    if not chunk_ids:
        maybe_finish(run_id)
    return chunk_ids


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_chunk(chunk_id: int) -> None:
    """Claim a chunk (Queued, or Running with a dead worker) and charge its invoices.

    The claim's attempt number is the worker's token: its heartbeats and its closing update match
    only while it still owns the chunk, so a worker that was taken over stops and closes nothing.
    """
    now = lease.database_now()
    claimed = db.session.execute(
        update(RunChunk)
        .where(RunChunk.id == chunk_id, lease.chunk_claimable(now))
        .values(
            state=ChunkState.RUNNING.value,
            attempts=RunChunk.attempts + 1,
            heartbeat_at=now,
            worker=worker_name(),
        )
    ).rowcount
    db.session.commit()
    if claimed != 1:
        log.info("chunk #%s is taken or done: not executed again", chunk_id)
        return
    chunk = db.session.get(RunChunk, chunk_id)
    owner = _Owner(chunk_id, chunk.attempts)
    run_id, ids = chunk.run_id, list(chunk.invoice_ids)
    try:
        if _state(run_id) == RunState.RUNNING:
            errors = ChargeLoop(current_app._get_current_object(), run_id, owner, ids).run()
        else:
            errors = []
    except Exception as exc:  # the chunk ends with the reason; its run is not left Running
        log.exception("payment run #%s: chunk #%s stopped", run_id, chunk_id)
        db.session.rollback()
        errors = [trouble(f"chunk #{chunk_id} stopped", exc)]
    finally:
        owner.stop()
    closed = db.session.execute(
        update(RunChunk)
        .where(RunChunk.id == chunk_id, RunChunk.attempts == owner.attempt)
        .values(state=ChunkState.DONE.value, finished_at=clock.now())
    ).rowcount
    if closed != 1:
        db.session.rollback()  # taken over: the new owner closes it
        log.warning("chunk #%s was taken over by another worker", chunk_id)
        return
    if errors:
        append_error(run_id, errors)
    db.session.commit()
    maybe_finish(run_id)


class _Owner:
    """A worker's hold on its chunk: a heartbeat thread, and whether the hold is still good."""

    def __init__(self, chunk_id: int, attempt: int):
        self.chunk_id, self.attempt = chunk_id, attempt
        self.lost = False
        self._stop = threading.Event()
        self._app = current_app._get_current_object()
        self._thread = threading.Thread(target=self._beat, name=f"chunk-{chunk_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            with self._app.app_context():
                try:
                    self.beat()
                except Exception:
                    log.exception("chunk #%s: heartbeat failed", self.chunk_id)
                    db.session.rollback()
                finally:
                    db.session.remove()

    def beat(self) -> None:
        now = lease.database_now()
        held = db.session.execute(
            update(RunChunk)
            .where(RunChunk.id == self.chunk_id, RunChunk.attempts == self.attempt)
            .values(heartbeat_at=now)
        ).rowcount
        if held == 1:
            run_id = select(RunChunk.run_id).where(RunChunk.id == self.chunk_id).scalar_subquery()
            db.session.execute(
                update(PaymentRun).where(PaymentRun.id == run_id).values(heartbeat_at=now)
            )
        db.session.commit()
        self.lost = held != 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _state(run_id: int) -> str:
    state = db.session.scalar(select(PaymentRun.state).where(PaymentRun.id == run_id))
    db.session.rollback()  # a read: no transaction left open (idle) while the calls are made
    return state
