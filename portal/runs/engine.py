"""Executing a payment run: split it into chunks, charge each chunk with calls in flight per
gateway, finish the run when its last chunk is done.

The portal's background thread and a Celery worker call the very same two functions: `begin_run`
then `run_chunk` for each chunk. Every step moves state by a conditional UPDATE, so a run begun
twice, or a chunk given to two workers, is executed once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from flask import current_app
from sqlalchemy import func, select, update

from portal import clock
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.runs import eligibility, lease
from portal.runs.charging import charge_invoice
from portal.runs.eligibility import RunFilter
from portal.runs.lease import HEARTBEAT_EVERY
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunSkip, RunState
from portal.runs.service import (
    NOT_ATTEMPTED_CANCELLED,
    NOT_ATTEMPTED_ERROR,
    append_error,
    considered,
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
        errors = _charge_all(run_id, owner, ids) if _state(run_id) == RunState.RUNNING else []
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


def _charge_all(run_id: int, owner: _Owner, ids: list[int]) -> list[str]:
    """Charge the invoices with up to C calls in flight per gateway; returns the errors."""
    run = db.session.get(PaymentRun, run_id)
    rf = run_filter(run)
    limit = run.invoice_limit
    charged = 0
    if owner.attempt > 1:
        # Taken over or resumed: go on after what the earlier worker charged or skipped.
        done, charged = considered(run_id, ids)
        ids = [i for i in ids if i not in done]
    db.session.rollback()  # no transaction stays open while the calls are made
    errors: list[str] = []
    reached = 0
    app = current_app._get_current_object()
    gates = _Gates(app.config["SETTLE_GATEWAY_CONCURRENCY"])
    width = gates.per_gateway * max(1, _gateway_count())
    in_flight: set[Future] = set()
    unsaved = {"skips": [], "since": time.monotonic()}

    def save(force: bool = False) -> None:
        """Skips at most once a second: one write, not one per invoice."""
        if not force and time.monotonic() - unsaved["since"] < 1.0:
            return
        skips = unsaved["skips"]
        if skips:
            db.session.add_all(skips)
            db.session.execute(
                update(PaymentRun)
                .where(PaymentRun.id == run_id)
                .values(skipped_count=PaymentRun.skipped_count + len(skips))
            )
            db.session.commit()
        unsaved["skips"], unsaved["since"] = [], time.monotonic()

    def settle(done) -> None:
        nonlocal charged
        for future in done:
            invoice_id = future.invoice_id
            try:
                outcome = future.result()
            except Exception as exc:  # one invoice's trouble must not stop the run
                log.exception("payment run #%s: invoice %s failed", run_id, invoice_id)
                errors.append(trouble(f"invoice id {invoice_id}", exc))
                if not considered(run_id, [invoice_id])[0]:
                    # No call was recorded for it: list it, so that the counts still add up.
                    unsaved["skips"].append(
                        RunSkip(run_id=run_id, invoice_id=invoice_id, reason=NOT_ATTEMPTED_ERROR)
                    )
                db.session.rollback()
                continue
            if outcome.skipped:
                unsaved["skips"].append(
                    RunSkip(run_id=run_id, invoice_id=invoice_id, reason=outcome.skipped)
                )
            else:
                charged += 1
        save()

    cancelled_at_check = {"at": 0.0, "cancelled": False}

    def stopped() -> bool:
        """Cancelled, or taken over: asked before each invoice, read at most every 0.2 s."""
        if time.monotonic() - cancelled_at_check["at"] >= 0.2:
            cancelled_at_check["cancelled"] = _state(run_id) == RunState.CANCELLED
            cancelled_at_check["at"] = time.monotonic()
        return cancelled_at_check["cancelled"] or owner.lost

    with ThreadPoolExecutor(max_workers=min(width, 64), thread_name_prefix=f"run-{run_id}") as pool:
        for invoice_id in ids:
            # A capped run keeps what is in flight within the cap: each call may yet charge.
            while in_flight and (
                len(in_flight) >= width or (limit and charged + len(in_flight) >= limit)
            ):
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(done)
            if limit and charged >= limit:
                break
            if stopped():
                break  # cancelled (or taken over): the calls in flight finish and are recorded
            reached += 1
            future = pool.submit(_charge_in_worker, app, run_id, rf, invoice_id, gates)
            future.invoice_id = invoice_id
            in_flight.add(future)
        settle(wait(in_flight).done)
    if cancelled_at_check["cancelled"] and not owner.lost:
        # Listed, so that a cancelled run's counts add up too.
        unsaved["skips"] += [
            RunSkip(run_id=run_id, invoice_id=i, reason=NOT_ATTEMPTED_CANCELLED)
            for i in ids[reached:]
        ]
    save(force=True)
    if limit and reached < len(ids):
        # The cap stopped the run early: it considered only these.
        db.session.execute(
            update(PaymentRun)
            .where(PaymentRun.id == run_id)
            .values(selected_count=PaymentRun.selected_count - (len(ids) - reached))
        )
        db.session.commit()
    return errors


class _Gates:
    """At most `per_gateway` calls in flight to any one gateway, whatever the run's width."""

    def __init__(self, per_gateway: int):
        self.per_gateway = max(1, per_gateway)
        self._gates: dict[int, threading.Semaphore] = {}
        self._lock = threading.Lock()

    def gate(self, gateway_id: int) -> threading.Semaphore:
        with self._lock:
            return self._gates.setdefault(gateway_id, threading.Semaphore(self.per_gateway))


def _gateway_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Gateway)) or 1


def _charge_in_worker(app, run_id: int, rf: RunFilter, invoice_id: int, gates: _Gates):
    """One invoice, in a worker thread with its own database session."""
    with app.app_context():
        try:
            run = db.session.get(PaymentRun, run_id)
            invoice = db.session.get(Invoice, invoice_id)
            method = eligibility.charging_method(invoice)
            with gates.gate(method.gateway_id if method else 0):
                return charge_invoice(invoice_id, run, rf)
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def _state(run_id: int) -> str:
    state = db.session.scalar(select(PaymentRun.state).where(PaymentRun.id == run_id))
    db.session.rollback()  # a read: no transaction left open (idle) while the calls are made
    return state
