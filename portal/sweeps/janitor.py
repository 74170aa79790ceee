"""The janitor: asks the gateway about every locked charge on a back-off schedule, so that the
clerk arrives to an answer. It never moves money, except voids when a supervisor turns autovoid on."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from portal import clock, once
from portal.audit import chain
from portal.extensions import db
from portal.gateways import registry
from portal.settings import service as settings
from portal.statuses import GatewayStatus
from portal.transactions import confirmations, finalize, lookups
from portal.transactions.models import Operation, PaymentTransaction

log = logging.getLogger(__name__)

SCHEDULE = "janitor_schedule_minutes"
# 1 min, 5 min, 30 min, 2 h, 12 h, then daily up to two weeks.
DEFAULT_SCHEDULE = [1, 5, 30, 120, 720] + [1440] * 14
AUTOVOID = "autovoid"
# Autovoid voids only what Settle could not know the fate of; a review hold is the bank's call.
AUTOVOID_STATUSES = (GatewayStatus.INDETERMINATE.value, GatewayStatus.SYSTEM_FAIL.value)


@dataclass
class JanitorReport:
    looked_up: list[str] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)


def schedule() -> list[int]:
    return list(settings.get(SCHEDULE, DEFAULT_SCHEDULE))


def autovoid() -> bool:
    return bool(settings.get(AUTOVOID, False))


def configure(minutes_text: str, wanted_autovoid: bool, actor) -> list[int]:
    """A supervisor's janitor settings: its waits in minutes, and whether it voids."""
    minutes = settings.whole_numbers(
        minutes_text, count=40, lowest=1, highest=10080,
        problem="Give 1 to 40 waits in minutes, each 1 to 10080 (a week), such as: 1 5 30 120",
    )  # fmt: skip
    if minutes != schedule():
        settings.put(SCHEDULE, minutes, actor)
    if wanted_autovoid != autovoid():
        settings.put(AUTOVOID, wanted_autovoid, actor)
    return minutes


def due(now: datetime) -> list[PaymentTransaction]:
    """Locked, unfinalized charges whose next check is due (the first a minute after the answer)."""
    candidates = db.session.scalars(
        select(PaymentTransaction)
        .where(
            PaymentTransaction.operation == Operation.CHARGE.value,
            PaymentTransaction.locked_invoice.is_(True),
            PaymentTransaction.finalized_at.is_(None),
            PaymentTransaction.janitor_checks < len(schedule()),
            or_(
                PaymentTransaction.janitor_next_at.is_(None),
                PaymentTransaction.janitor_next_at <= now,
            ),
        )
        .order_by(PaymentTransaction.id)
    ).all()
    first = timedelta(minutes=schedule()[0])
    return [
        c
        for c in candidates
        if c.janitor_next_at is not None or (c.answered_at and c.answered_at + first <= now)
    ]


def run_janitor(now: datetime | None = None) -> JanitorReport:
    """One pass. Safe to run from several places: each charge's check is claimed by its due time."""
    now = now or clock.now()
    report = JanitorReport()
    for charge in due(now):
        try:
            _check(charge.id, now, report)
        except Exception:  # one gateway's trouble must not stop the others
            db.session.rollback()
            log.exception("janitor: transaction #%s", charge.id)
    once.forget_expired(now)
    chain.seal()  # events a crash left unsealed
    return report


def _check(charge_id: int, now: datetime, report: JanitorReport) -> None:
    charge = db.session.get(PaymentTransaction, charge_id)
    steps = schedule()
    charge.janitor_checks += 1
    index = min(charge.janitor_checks, len(steps) - 1)
    charge.janitor_next_at = now + timedelta(minutes=steps[index])
    db.session.commit()
    if charge.invoice.corrective_action is None:
        return
    # A Refund & Unlock whose confirmation came while a clerk held the invoice finishes now.
    note = "Finished by the janitor: the gateway had confirmed every undo of the invoice"
    finished = confirmations.finish_confirmed_undo(charge.id, note)
    if finished is not None and finished.unlocked:
        report.voided.append(f"#{charge.id}: {note.lower()}")
        return
    plugin = registry.plugin_class(charge.gateway.plugin)
    # Autovoid never refunds: a provider whose asking may refund (Adyen's reversal) is a clerk's.
    wants_void = autovoid() and charge.status in AUTOVOID_STATUSES and not plugin.lookup_may_refund
    if plugin.lookup_moves_money and not wants_void:
        return  # asking this gateway would reverse the charge: only a clerk or autovoid may
    if wants_void:
        outcome = finalize.refund_and_unlock(charge.id, None, voids_only=True)
        line = f"#{charge.id}: " + ("; ".join(outcome.actions + outcome.problems) or "nothing held")
        (report.voided if outcome.unlocked else report.looked_up).append(line)
        return
    lookup, result = lookups.lookup_charge(charge, None)
    state = lookup.gateway_state if result.status is GatewayStatus.SUCCESS else "no answer"
    report.looked_up.append(f"#{charge.id}: {state}")
