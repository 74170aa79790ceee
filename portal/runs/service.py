"""Payment runs: start one (refusing a duplicate), cancel it, finish it once with its state."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import func, select, true, update
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.accounts.models import Account
from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.money import MINOR_UNITS
from portal.runs.eligibility import RunFilter
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunSkip, RunState
from portal.statuses import GatewayStatus
from portal.transactions.models import Operation, PaymentTransaction

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
    return _queue(run, actor, "A payment run with the same filter was started a moment ago")


def _queue(run: PaymentRun, actor, taken: str) -> PaymentRun:
    """Add a Queued run, audited; the unique index of active filters refuses a twin."""
    db.session.add(run)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise DomainError(taken) from None
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
    db.session.commit()
    # Chunks no worker has taken are done with, their invoices listed as not attempted; a chunk
    # in a worker stops before its next invoice and lists the rest itself.
    for chunk in db.session.scalars(
        select(RunChunk).where(RunChunk.run_id == run_id, RunChunk.state == ChunkState.QUEUED.value)
    ).all():
        give_up_chunk(chunk, NOT_ATTEMPTED_CANCELLED)
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


def trouble(what: str, exc: Exception) -> str:
    """A line for the run's page: a domain error's own words, else no Python text (the traceback
    is in the server log)."""
    if isinstance(exc, DomainError):
        return f"{what}: {exc}"
    return f"{what}: an internal error at {clock.shown(clock.now())}; the details are in the server log"


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
    """Its executor is gone for good: close its chunks, each invoice they did not reach listed as
    not attempted, and finish it."""
    for chunk in db.session.scalars(
        select(RunChunk).where(RunChunk.run_id == run_id, RunChunk.state != ChunkState.DONE.value)
    ).all():
        give_up_chunk(chunk)
    return finish_run(run_id, errors)


NOT_ATTEMPTED = "not attempted: the run was interrupted"
NOT_ATTEMPTED_ERROR = "not attempted: an internal error"
NOT_ATTEMPTED_CANCELLED = "not attempted: the run was cancelled"


def considered(run_id: int, invoice_ids: list[int]) -> tuple[set[int], int]:
    """Which of these invoices the run already charged or skipped (a chunk taken over or resumed
    goes on after them, so that nothing is counted twice), and how many it charged."""
    charged = set(
        db.session.scalars(
            select(PaymentTransaction.invoice_id).where(
                PaymentTransaction.run_id == run_id,
                PaymentTransaction.operation == Operation.CHARGE.value,
            )
        )
    )
    skipped = set(db.session.scalars(select(RunSkip.invoice_id).where(RunSkip.run_id == run_id)))
    wanted = set(invoice_ids)
    return (charged | skipped) & wanted, len(charged & wanted)


def give_up_chunk(chunk: RunChunk, reason: str | None = None) -> int:
    """Close a chunk no worker will finish; each invoice it did not reach is listed on the run as
    not attempted (counted as skipped, so the counts add up), for a supervisor to charge them in
    a new run. Returns how many."""
    done, _ = considered(chunk.run_id, chunk.invoice_ids)
    left = [i for i in chunk.invoice_ids if i not in done]
    closed = db.session.execute(
        update(RunChunk)
        .where(RunChunk.id == chunk.id, RunChunk.state != ChunkState.DONE.value)
        .values(state=ChunkState.DONE.value, finished_at=clock.now())
    ).rowcount
    if closed != 1:
        db.session.rollback()
        return 0
    db.session.add_all(
        RunSkip(run_id=chunk.run_id, invoice_id=i, reason=reason or NOT_ATTEMPTED) for i in left
    )
    db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == chunk.run_id)
        .values(skipped_count=PaymentRun.skipped_count + len(left))
    )
    db.session.commit()
    return len(left)


def not_attempted_ids(run_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(RunSkip.invoice_id)
            .where(
                RunSkip.run_id == run_id, RunSkip.reason.in_([NOT_ATTEMPTED, NOT_ATTEMPTED_ERROR])
            )
            .order_by(RunSkip.id)
        )
    )


def start_run_for_not_attempted(run_id: int, actor) -> PaymentRun:
    """A new run over exactly the invoices an interrupted run did not attempt."""
    earlier = db.session.get(PaymentRun, run_id)
    if earlier is None or earlier.is_active:
        raise DomainError(f"Payment run #{run_id} has not finished")
    if not not_attempted_ids(run_id):
        raise DomainError(f"Payment run #{run_id} attempted every invoice it selected")
    follow_up = db.session.scalar(select(PaymentRun).where(PaymentRun.follows_run_id == run_id))
    if follow_up is not None:
        raise DomainError(
            f"Payment run #{follow_up.id} was started for them already ({follow_up.state})"
        )
    run = PaymentRun(
        due_on=earlier.due_on, currency=earlier.currency, gateway_id=earlier.gateway_id,
        account_id=earlier.account_id, follows_run_id=run_id,
        filter_key=f"not attempted by run #{run_id}", started_by_id=getattr(actor, "id", None),
        state=RunState.QUEUED.value,
    )  # fmt: skip
    return _queue(run, actor, "A payment run for them was started a moment ago")


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
    return collected_by_run([run.id]).get(run.id, {})


def collected_by_run(run_ids: list[int]) -> dict[int, dict]:
    """For each run, the amount its successful charges collected, per currency."""
    totals: dict[int, dict] = {}
    rows = db.session.execute(
        select(
            PaymentTransaction.run_id, PaymentTransaction.currency, PaymentTransaction.amount
        ).where(
            PaymentTransaction.run_id.in_(run_ids),
            PaymentTransaction.operation == Operation.CHARGE.value,
            PaymentTransaction.status == GatewayStatus.SUCCESS.value,
        )
    )
    for run_id, currency, amount in rows:
        per_run = totals.setdefault(run_id, {})
        per_run[currency] = per_run.get(currency, 0) + amount
    return totals


def locked_by_run(run_ids: list[int]) -> dict[int, int]:
    """For each run, how many invoices its answers locked (whatever the status: System Fail,
    Indeterminate, Requires Review, or any failure in strict mode)."""
    rows = db.session.execute(
        select(PaymentTransaction.run_id, func.count())
        .where(
            PaymentTransaction.run_id.in_(run_ids),
            PaymentTransaction.operation == Operation.CHARGE.value,
            PaymentTransaction.locked_invoice == true(),  # as its partial index says it
        )
        .group_by(PaymentTransaction.run_id)
    )
    return dict(rows.all())


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
