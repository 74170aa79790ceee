"""Crash recovery: every call left Pending is settled by asking the gateway; orphaned runs end."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select, update

from portal import clock, jobs
from portal.audit import service as audit
from portal.extensions import db
from portal.gateways.base import GatewayResult, Settlement
from portal.gateways.service import plugin_for
from portal.invoices import service as invoices
from portal.runs import dispatch, lease
from portal.runs.charging import count_on_run, finish_charge
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunState
from portal.runs.service import append_error, cancel_run, give_up_chunk
from portal.statuses import GatewayStatus, policy_for
from portal.transactions import lookups
from portal.transactions.models import Operation, PaymentTransaction
from portal.transactions.service import store_answer

log = logging.getLogger(__name__)

NOT_SENT = "Recovered: never sent"
NOT_SENT_REASON = "Recovered after a crash: the gateway holds no such charge, so it was never sent"


@dataclass
class RecoveryReport:
    transactions: list[str] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)


def recover(now: datetime | None = None, *, alone: bool = False) -> RecoveryReport:
    """Sort every orphaned Pending call and end every orphaned run. Safe to run at any time.

    `alone` says no other Settle process is running (the embedded default at start, or an
    operator who stopped the portal): then nothing can still be in flight, whatever its age.
    """
    now = now or clock.now()
    if alone:
        now += lease.RUN_ORPHANED_AFTER + lease.IN_FLIGHT_MARGIN + lease.LONGEST_CALL
    report = RecoveryReport()
    # Runs are chosen before the (possibly slow) lookups: one started meanwhile is not orphaned.
    fresh = {"populate_existing": True}
    running = db.session.scalars(
        select(PaymentRun).where(PaymentRun.state == RunState.RUNNING.value),
        execution_options=fresh,
    ).all()
    queued = db.session.scalars(
        select(PaymentRun).where(PaymentRun.state == RunState.QUEUED.value), execution_options=fresh
    ).all()
    pending = db.session.scalars(
        select(PaymentTransaction)
        .where(PaymentTransaction.status == GatewayStatus.PENDING.value)
        .order_by(PaymentTransaction.id)
    ).all()
    for txn in pending:
        timeout = float(txn.gateway.timeout_seconds)
        if lease.call_may_be_in_flight(txn.requested_at, timeout, now) or _in_a_live_chunk(
            txn, now
        ):
            continue  # may still be in flight in another process
        try:
            report.transactions.append(_resolve(txn.id))
        except Exception as exc:  # one call's trouble must not leave the others unsorted
            db.session.rollback()
            log.exception("recovery of transaction #%s failed", txn.id)
            report.transactions.append(f"#{txn.id}: not recovered ({exc}); try again")
    if jobs.uses_broker():
        # Runs and chunks are the dispatcher's: it sends again what no worker holds.
        return report
    for run in queued:
        if run.created_at < now - lease.RUN_ORPHANED_AFTER:
            note = "The run never started: the process stopped first. Start it again."
            if cancel_run(run.id, None, note=note):
                report.runs.append(run.id)
    for run in running:
        orphaned = lease.run_silent_since(run) < now - lease.RUN_ORPHANED_AFTER
        if orphaned and not _has_pending(run.id) and _reopen(run, now):
            dispatch.submit_resume(run.id)
            report.runs.append(run.id)
    return report


def _reopen(run: PaymentRun, now: datetime) -> bool:
    """Hand an orphaned run's dead chunks to a new executor: each goes on after the invoices it
    already charged or skipped. A chunk that has lost MAX_ATTEMPTS executors is given up, its
    invoices listed as not attempted. False when another recovery took the run meanwhile."""
    taken = db.session.execute(
        update(PaymentRun)
        .where(
            PaymentRun.id == run.id,
            PaymentRun.state == RunState.RUNNING.value,
            lease.run_orphaned(now),
        )
        .values(heartbeat_at=clock.now())
    ).rowcount
    if taken != 1:
        db.session.rollback()
        return False
    dead = (RunChunk.run_id == run.id) & lease.chunk_stale(now)
    db.session.execute(
        update(RunChunk)
        .where(dead, RunChunk.attempts < lease.MAX_ATTEMPTS)
        .values(state=ChunkState.QUEUED.value)
    )
    db.session.commit()
    for chunk in db.session.scalars(select(RunChunk).where(dead)).all():
        left = give_up_chunk(chunk)
        note = f"chunk #{chunk.id} given up: its executor stopped {chunk.attempts} times"
        append_error(run.id, [f"{note}; {left} invoice(s) not attempted"])
        db.session.commit()
    audit.record("payment_run.resumed", run, note="The process executing it stopped")
    db.session.commit()
    return True


def _in_a_live_chunk(txn: PaymentTransaction, now: datetime) -> bool:
    """A worker still beats for the run's chunk: its call may be slow, not dead (a read timeout
    bounds each read, not the whole call)."""
    if txn.run_id is None:
        return False
    live = db.session.scalar(
        select(RunChunk.id).where(RunChunk.run_id == txn.run_id, lease.chunk_live(now))
    )
    return live is not None


def _has_pending(run_id: int) -> bool:
    return (
        db.session.scalar(
            select(PaymentTransaction.id).where(
                PaymentTransaction.run_id == run_id,
                PaymentTransaction.status == GatewayStatus.PENDING.value,
            )
        )
        is not None
    )


def _resolve(txn_id: int) -> str:
    txn = db.session.get(PaymentTransaction, txn_id)
    if txn.operation != Operation.CHARGE:
        return _close_follow_up(txn)
    _, answer = lookups.lookup_charge(txn, None)  # recorded and audited like a clerk's check
    if answer.status is not GatewayStatus.SUCCESS:
        reason = f"Recovered after a crash: the gateway could not say what became of it ({answer.message})"
        finish_charge(
            txn_id, GatewayResult(GatewayStatus.INDETERMINATE, None, reason, reason=reason)
        )
        return f"#{txn_id}: gateway could not tell -> Indeterminate, invoice locked"
    if not answer.findings:
        _close_unsent(txn_id)
        return f"#{txn_id}: never reached the gateway -> invoice eligible again"
    finding = answer.findings[0]  # looked up by the charge's own idempotency key
    if finding.state in (Settlement.VOIDED, Settlement.REFUNDED):
        # Given back already (a lookup that reverses, as Payeezy's does): nothing is owed to it.
        reason = f"Recovered after a crash: the gateway holds it {finding.state}"
        _close_unsent(txn_id, reason, finalization="Recovered: reversed")
        return f"#{txn_id}: {finding.state} at the gateway -> invoice eligible again"
    found = plugin_for(txn.gateway).interpret_finding(finding)  # codes are the plugin's to read
    result = replace(
        found,
        message=f"Recovered after a crash: {found.message}",
        reason="Found at the gateway by crash recovery",
    )
    finish_charge(txn_id, result)
    return f"#{txn_id}: found at the gateway -> {result.status}"


def _close_unsent(txn_id: int, reason: str = NOT_SENT_REASON, finalization: str = NOT_SENT) -> None:
    """The charge moved no money: record why, count it, and leave the invoice unlocked."""
    invoices.lock_invoice(db.session.get(PaymentTransaction, txn_id).invoice_id)
    txn = db.session.get(PaymentTransaction, txn_id, populate_existing=True)
    if txn.status != GatewayStatus.PENDING:
        db.session.rollback()
        return
    reversed_ = finalization != NOT_SENT  # it reached the gateway, which has given it back
    store_answer(txn, GatewayResult(GatewayStatus.SYSTEM_FAIL, None, reason, reason=reason,
                                    sent=reversed_))  # fmt: skip
    txn.finalization, txn.finalized_at = finalization, txn.answered_at
    count_on_run(txn, policy_for(GatewayStatus.SYSTEM_FAIL))
    db.session.commit()


def _close_follow_up(txn: PaymentTransaction) -> str:
    """A refund, void or lookup cut off by a crash: unknown; the invoice stays locked for a clerk."""
    status = (
        GatewayStatus.SYSTEM_FAIL
        if txn.operation == Operation.LOOKUP
        else GatewayStatus.INDETERMINATE
    )
    reason = "Recovered after a crash: no answer was recorded; check the gateway status"
    store_answer(txn, GatewayResult(status, None, reason, reason=reason))
    db.session.commit()
    return f"#{txn.id}: {txn.operation} cut off -> {status}"
