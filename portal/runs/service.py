"""Payment runs: start one (refusing a duplicate), cancel it, finish it once with its state."""

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
from portal.invoices.service import RunFilter
from portal.money import MINOR_UNITS
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunSkip, RunState
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
    # Chunks no worker has taken are done with; a chunk in a worker stops before its next invoice.
    db.session.execute(
        update(RunChunk)
        .where(RunChunk.run_id == run_id, RunChunk.state == ChunkState.QUEUED.value)
        .values(state=ChunkState.DONE.value, finished_at=clock.now())
    )
    run = db.session.get(PaymentRun, run_id, populate_existing=True)
    if run.started_at is None:
        run.finished_at = clock.now()
    if note:
        run.error = note
    audit.record("payment_run.cancelled", run, actor=actor, note=note)
    db.session.commit()
    if run.started_at is not None:
        maybe_finish(run_id)
    return True


def append_error(run_id: int, errors: list[str]) -> None:
    """Add lines to the run's error text in SQL, so that two workers' lines both stay."""
    text = "\n".join(errors)
    db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == run_id)
        .values(error=func.coalesce(PaymentRun.error + "\n", "") + text)
    )


def open_chunks(run_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(RunChunk)
        .where(RunChunk.run_id == run_id, RunChunk.state != ChunkState.DONE.value)
    )


def maybe_finish(run_id: int) -> PaymentRun | None:
    """Finish a begun run once none of its chunks is left; whoever gets there first does it."""
    if open_chunks(run_id):
        return None
    return finish_run(run_id)


def abandon(run_id: int, errors: list[str]) -> PaymentRun:
    """Its executor is gone for good (embedded process died): close its chunks and finish it."""
    db.session.execute(
        update(RunChunk)
        .where(RunChunk.run_id == run_id, RunChunk.state != ChunkState.DONE.value)
        .values(state=ChunkState.DONE.value, finished_at=clock.now())
    )
    db.session.commit()
    return finish_run(run_id, errors)


def finish_run(run_id: int, errors: list[str] | None = None) -> PaymentRun:
    """Its final state, counts and audit event, exactly once: the first caller claims it."""
    claimed = db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == run_id, PaymentRun.finished_at.is_(None))
        .values(finished_at=clock.now())
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return db.session.get(PaymentRun, run_id, populate_existing=True)
    if errors:
        append_error(run_id, errors)
    run = db.session.get(PaymentRun, run_id, populate_existing=True)
    if run.state == RunState.CANCELLED:
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
        RunState.COMPLETED_WITH_ERRORS.value if run.error or troubled else RunState.COMPLETED.value
    )
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


def chunk_summary(run: PaymentRun) -> dict:
    """How far a chunked run is, and which workers executed it."""
    rows = db.session.execute(
        select(RunChunk.state, RunChunk.worker, func.count())
        .where(RunChunk.run_id == run.id)
        .group_by(RunChunk.state, RunChunk.worker)
    ).all()
    return {
        "done": sum(n for state, _, n in rows if state == ChunkState.DONE),
        "running": sum(n for state, _, n in rows if state == ChunkState.RUNNING),
        "workers": sorted({worker for _, worker, _ in rows if worker}),
    }
