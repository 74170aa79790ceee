"""Payment runs: start one (refusing a duplicate), execute it, finish it with its state."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.accounts.models import Account
from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices import service as invoices
from portal.invoices.service import RunFilter
from portal.money import MINOR_UNITS
from portal.runs.charging import charge_invoice
from portal.runs.models import PaymentRun, RunSkip, RunState
from portal.statuses import GatewayStatus
from portal.transactions.models import PaymentTransaction

log = logging.getLogger(__name__)


def filter_key(rf: RunFilter) -> str:
    return "|".join(
        [
            rf.due_on.isoformat(),
            rf.currency or "*",
            str(rf.gateway_id or "*"),
            str(rf.account_id or "*"),
        ]
    )


def run_filter(run: PaymentRun) -> RunFilter:
    return RunFilter(
        due_on=run.due_on,
        currency=run.currency,
        gateway_id=run.gateway_id,
        account_id=run.account_id,
        at=run.started_at,
    )


def start_run(
    *,
    due_on: date,
    actor,
    currency: str | None = None,
    gateway_id: int | None = None,
    account_id: int | None = None,
    invoice_limit: int | None = None,
) -> PaymentRun:
    """Queue a run. The same filter cannot run twice at once: the database refuses the second."""
    if currency and currency not in MINOR_UNITS:
        raise DomainError(f"Unknown currency {currency!r}")
    if gateway_id and db.session.get(Gateway, gateway_id) is None:
        raise DomainError("Unknown gateway")
    if account_id and db.session.get(Account, account_id) is None:
        raise DomainError("Unknown account")
    if invoice_limit is not None and invoice_limit < 1:
        raise DomainError("The cap must be at least 1 invoice")
    rf = RunFilter(due_on, currency or None, gateway_id or None, account_id or None)
    key = filter_key(rf)
    active = db.session.scalar(
        select(PaymentRun).where(
            PaymentRun.filter_key == key, PaymentRun.state.in_(RunState.active())
        )
    )
    if active is not None:
        raise DomainError(
            f"Payment run #{active.id} with the same filter is still {active.state.lower()}"
        )
    run = PaymentRun(
        due_on=due_on,
        currency=rf.currency,
        gateway_id=rf.gateway_id,
        account_id=rf.account_id,
        invoice_limit=invoice_limit,
        filter_key=key,
        started_by_id=actor.id if actor else None,
        state=RunState.QUEUED.value,
    )
    db.session.add(run)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise DomainError("A payment run with the same filter was started a moment ago") from None
    audit.record("payment_run.started", run, actor=actor, after={"filter": run.describe_filter()})
    return run


def execute_run(run_id: int) -> PaymentRun:
    """Charge every eligible invoice of a Queued run. Safe to call from a thread or a worker."""
    moved = db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == run_id, PaymentRun.state == RunState.QUEUED.value)
        .values(state=RunState.RUNNING.value, started_at=clock.now(), heartbeat_at=clock.now())
    ).rowcount
    db.session.commit()
    run = db.session.get(PaymentRun, run_id)
    if moved != 1:
        log.info("payment run #%s is %s, not Queued: not executed again", run_id, run.state)
        return run
    rf = run_filter(run)
    ids = invoices.candidate_ids(rf)
    run.selected_count = len(ids)
    db.session.commit()
    errors, charged, considered = [], 0, 0
    for invoice_id in ids:
        if run.invoice_limit and charged >= run.invoice_limit:
            break
        if _state(run_id) == RunState.CANCELLED:
            break  # a supervisor cancelled it: the call before this one was answered and recorded
        considered += 1
        try:
            outcome = charge_invoice(invoice_id, run, rf)
        except Exception as exc:  # one invoice's trouble must not stop the run
            db.session.rollback()
            log.exception("payment run #%s: invoice %s failed", run_id, invoice_id)
            errors.append(f"invoice {invoice_id}: {exc}")
            continue
        if outcome.skipped:
            db.session.add(RunSkip(run_id=run_id, invoice_id=invoice_id, reason=outcome.skipped))
        else:
            charged += 1
        db.session.execute(
            update(PaymentRun)
            .where(PaymentRun.id == run_id)
            .values(
                heartbeat_at=clock.now(),
                skipped_count=PaymentRun.skipped_count + (1 if outcome.skipped else 0),
            )
        )
        db.session.commit()
    if considered < len(ids):
        # The cap stopped the run early: it considered only these.
        db.session.execute(
            update(PaymentRun).where(PaymentRun.id == run_id).values(selected_count=considered)
        )
        db.session.commit()
    return finish_run(run_id, errors)


def _state(run_id: int) -> str:
    return db.session.scalar(select(PaymentRun.state).where(PaymentRun.id == run_id))


def cancel_run(run_id: int, actor, note: str | None = None) -> bool:
    """Stop a Queued or Running run: it charges no further invoice. False if it had ended."""
    moved = db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == run_id, PaymentRun.state.in_(RunState.active()))
        .values(state=RunState.CANCELLED.value)
    ).rowcount
    if moved != 1:
        db.session.rollback()
        return False
    run = db.session.get(PaymentRun, run_id, populate_existing=True)
    if run.started_at is None:
        run.finished_at = clock.now()
    if note:
        run.error = note
    audit.record("payment_run.cancelled", run, actor=actor, note=note)
    db.session.commit()
    return True


def finish_run(run_id: int, errors: list[str]) -> PaymentRun:
    run = db.session.get(PaymentRun, run_id, populate_existing=True)
    if run.state == RunState.CANCELLED:
        run.finished_at = clock.now()
        run.error = "\n".join(filter(None, [run.error, *errors])) or None
        audit.record("payment_run.finished", run, after={"state": run.state})
        db.session.commit()
        return run
    troubled = db.session.scalar(
        select(func.count())
        .select_from(PaymentTransaction)
        .where(
            PaymentTransaction.run_id == run_id,
            PaymentTransaction.status.in_(
                [
                    GatewayStatus.SYSTEM_FAIL.value,
                    GatewayStatus.INDETERMINATE.value,
                    GatewayStatus.PENDING.value,
                ]
            ),
        )
    )
    run.state = (
        RunState.COMPLETED_WITH_ERRORS.value if errors or troubled else RunState.COMPLETED.value
    )
    run.error = "\n".join(errors) or None
    run.finished_at = clock.now()
    audit.record("payment_run.finished", run, after={"state": run.state})
    db.session.commit()
    return run


def skip_reasons(run: PaymentRun) -> list[tuple[str, int]]:
    """How many invoices the run skipped for each reason, most frequent first."""
    rows = db.session.execute(
        select(RunSkip.reason, func.count())
        .where(RunSkip.run_id == run.id)
        .group_by(RunSkip.reason)
        .order_by(func.count().desc())
    )
    return [(reason, count) for reason, count in rows]


def collected(run: PaymentRun) -> dict[str, str]:
    """Amount collected per currency, summed as Decimal in Python (SQLite sums would be floats)."""
    totals: dict = {}
    rows = db.session.execute(
        select(PaymentTransaction.currency, PaymentTransaction.amount).where(
            PaymentTransaction.run_id == run.id,
            PaymentTransaction.status == GatewayStatus.SUCCESS.value,
        )
    )
    for currency, amount in rows:
        totals[currency] = totals.get(currency, 0) + amount
    return totals
