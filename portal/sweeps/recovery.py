"""Crash recovery: every call left Pending is settled by asking the gateway; orphaned runs are
handed again or end."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select

from portal.extensions import db
from portal.gateways.base import GatewayResult, Settlement
from portal.gateways.service import plugin_for
from portal.runs import dispatch, lease
from portal.runs.models import RunChunk
from portal.statuses import GatewayStatus
from portal.transactions import calls, effects, lookups
from portal.transactions.effects import finish_charge
from portal.transactions.models import Finalization, Operation, PaymentTransaction

log = logging.getLogger(__name__)

NOT_SENT = Finalization.RECOVERED_NEVER_SENT.value
NOT_SENT_REASON = "Recovered after a crash: the gateway holds no such charge, so it was never sent"


@dataclass
class RecoveryReport:
    transactions: list[str] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)


def recover(now: datetime | None = None, *, alone: bool = False) -> RecoveryReport:
    """Sort every orphaned Pending call, then hand again or end every orphaned run (the same run
    sweep as the schedule's, with a broker or without). Safe to run at any time.

    `alone` says no other Settle process is running (the embedded default at start, or an
    operator who stopped the portal): then nothing can still be in flight, whatever its age.
    """
    started = lease.database_now()
    now = now or started
    if alone:
        now += lease.RUN_ORPHANED_AFTER + lease.IN_FLIGHT_MARGIN + lease.LONGEST_CALL
    report = RecoveryReport()
    pending = db.session.scalars(
        select(PaymentTransaction)
        .where(PaymentTransaction.status == GatewayStatus.PENDING.value)
        .order_by(PaymentTransaction.id)
    ).all()
    for txn in pending:
        # The call's deadline bounds it in all (gateways.transport), its timeout each read only.
        longest = float(max(txn.gateway.timeout_seconds, txn.gateway.deadline_seconds))
        if lease.call_may_be_in_flight(txn.requested_at, longest, now) or _in_a_live_chunk(
            txn, now
        ):
            continue  # may still be in flight in another process
        try:
            report.transactions.append(_resolve(txn.id))
        except Exception as exc:  # one call's trouble must not leave the others unsorted
            db.session.rollback()
            log.exception("recovery of transaction #%s failed", txn.id)
            report.transactions.append(f"#{txn.id}: not recovered ({exc}); try again")
    # A run started while the (possibly slow) lookups were made is not orphaned.
    report.runs = dispatch.sweep_runs(now, begun_before=min(now, started)).runs
    return report


def _in_a_live_chunk(txn: PaymentTransaction, now: datetime) -> bool:
    """A worker still beats for the run's chunk: its call may be slow, not dead (a read timeout
    bounds each read, not the whole call)."""
    if txn.run_id is None:
        return False
    live = db.session.scalar(
        select(RunChunk.id).where(RunChunk.run_id == txn.run_id, lease.chunk_live(now))
    )
    return live is not None


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
        _close_unsent(txn_id, reason, finalization=Finalization.RECOVERED_REVERSED)
        return f"#{txn_id}: {finding.state} at the gateway -> invoice eligible again"
    found = plugin_for(txn.gateway).interpret_finding(finding)  # codes are the plugin's to read
    result = replace(
        found,
        message=f"Recovered after a crash: {found.message}",
        reason="Found at the gateway by crash recovery",
    )
    if result.status is GatewayStatus.SUCCESS and finding.amount not in (None, txn.money):
        # Money moved, but not what the invoice asked: no payment is booked for it by itself.
        reason = f"Found at the gateway by crash recovery holding {finding.amount}, not {txn.money}"
        result = replace(
            result, status=GatewayStatus.REQUIRES_REVIEW, message=reason, reason=reason
        )
    finish_charge(txn_id, result)
    return f"#{txn_id}: found at the gateway -> {result.status}"


def _close_unsent(
    txn_id: int,
    reason: str = NOT_SENT_REASON,
    finalization: Finalization = Finalization.RECOVERED_NEVER_SENT,
) -> None:
    """The charge moved no money: a System Fail, finalized as it is answered, so that its policy
    counts it on its run and locks nothing."""
    # Reversed: it reached the gateway, which has given it back.
    reversed_ = finalization is not Finalization.RECOVERED_NEVER_SENT
    answer = GatewayResult(GatewayStatus.SYSTEM_FAIL, None, reason, reason=reason, sent=reversed_)
    calls.answer(txn_id, answer, effects.close_as(finalization))


def _close_follow_up(txn: PaymentTransaction) -> str:
    """A refund, void or lookup cut off by a crash: unknown; the invoice stays locked for a clerk."""
    status = (
        GatewayStatus.SYSTEM_FAIL
        if txn.operation == Operation.LOOKUP
        else GatewayStatus.INDETERMINATE
    )
    reason = "Recovered after a crash: no answer was recorded; check the gateway status"
    calls.answer(txn.id, GatewayResult(status, None, reason, reason=reason))
    return f"#{txn.id}: {txn.operation} cut off -> {status}"
