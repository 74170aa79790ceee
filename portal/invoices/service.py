"""Invoice rules: the row lock, the lock (Corrective Action) itself, the retry schedule and who
works on a locked invoice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select, update

from portal import clock
from portal.audit import service as audit
from portal.auth.models import Role, User
from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.settings import service as settings
from portal.statuses import ACTION_REQUIRED


def lock_invoice(invoice_id: int) -> Invoice:
    """Take the invoice's row lock for the rest of the database transaction, and read it fresh."""
    invoice = lock_invoices([invoice_id]).get(invoice_id)
    if invoice is None:
        raise DomainError(f"Invoice {invoice_id} does not exist")
    return invoice


def lock_invoices(invoice_ids, *, rows: bool = False) -> dict:
    """Take the row locks of these invoices for the rest of the database transaction, in id
    order (so that two writers never wait on each other in a circle), and read them fresh; an id
    with no invoice is left out. `rows`: plain rows (a run's window reads many and changes none)
    instead of the ORM's objects.

    PostgreSQL locks the rows with SELECT ... FOR UPDATE. SQLite has no row locks: a no-op UPDATE
    of an unindexed column takes its database write lock. Either way the same code serializes two
    clerks (or a clerk and a run, or a run's window of invoices).
    """
    ids = sorted(set(invoice_ids))
    if not ids:
        return {}
    query = select(Invoice.__table__ if rows else Invoice).where(Invoice.id.in_(ids))
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(
            update(Invoice)
            .where(Invoice.id.in_(ids))
            .values(decline_count=Invoice.decline_count)
            .execution_options(synchronize_session=False)
        )
    else:
        query = query.order_by(Invoice.id).with_for_update()
    if rows:
        return {row.id: row for row in db.session.execute(query)}
    found = db.session.scalars(query.execution_options(populate_existing=True))
    return {invoice.id: invoice for invoice in found}


DEFAULT_RETRY_DAYS = [1, 3, 7]
RETRY_SCHEDULE = "retry_schedule_days"


def retry_schedule() -> list[int]:
    """Days after the 1st, 2nd, 3rd... soft decline before the next attempt; then a clerk decides."""
    return list(settings.get(RETRY_SCHEDULE, DEFAULT_RETRY_DAYS))


def past_retry_schedule(decline_count, retries: int | None = None):
    """More soft declines than the schedule has `retries` (read when not given): a clerk decides
    now. Given an invoice's count, a bool; given the column, the same rule in SQL."""
    return decline_count > (len(retry_schedule()) if retries is None else retries)


def retries_exhausted():
    """Open invoices past the retry schedule, for the dashboard: a clerk asks the customer for
    another payment method."""
    return and_(
        past_retry_schedule(Invoice.decline_count),
        Invoice.balance > 0,
        Invoice.cancelled_at.is_(None),
    )


def set_retry_schedule(text: str, actor) -> list[int]:
    days = settings.whole_numbers(
        text, count=10, lowest=1, highest=365,
        problem="Give 1 to 10 retries as whole numbers, each 1 to 365 days after its decline: 1 3 7",
    )  # fmt: skip
    settings.put(RETRY_SCHEDULE, days, actor)
    return days


def record_decline(invoice: Invoice, at: datetime) -> None:
    """A soft decline: schedule the next attempt, or, past the schedule, leave it to a clerk."""
    invoice.decline_count += 1
    schedule = retry_schedule()
    if invoice.decline_count <= len(schedule):
        invoice.next_attempt_at = at + timedelta(days=schedule[invoice.decline_count - 1])
    else:
        invoice.next_attempt_at = None


def clear_declines(invoice: Invoice) -> None:
    invoice.decline_count = 0
    invoice.next_attempt_at = None


def reset_retries(invoice: Invoice, reason: str, actor) -> None:
    """A supervisor's reset of the retry schedule; it needs a written reason and is audited."""
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise DomainError("Write why the retries are reset (at least 5 characters)")
    before = {"decline_count": invoice.decline_count, "next_attempt_at": invoice.next_attempt_at}
    clear_declines(invoice)
    audit.record(
        "invoice.retries_reset", invoice, actor=actor, before=before,
        after={"decline_count": 0, "next_attempt_at": None}, note=reason,
    )  # fmt: skip


# A Refund & Unlock's claim on an invoice (finalizing_at) older than this was left by a crashed
# request and may be taken over. A Refund & Unlock makes a lookup and a void or refund per open
# charge, each up to the 300 s longest timeout, and refreshes its claim before each call; so this
# is well beyond one call.
CLAIM_TIMEOUT = timedelta(minutes=20)


def claim_is_fresh(invoice: Invoice) -> bool:
    return (
        invoice.finalizing_at is not None and invoice.finalizing_at >= clock.now() - CLAIM_TIMEOUT
    )


def being_finalized(invoice_id: int) -> bool:
    """Whether a clerk (or autovoid) holds a fresh claim on the invoice right now."""
    invoice = db.session.get(Invoice, invoice_id, populate_existing=True)
    return invoice is not None and claim_is_fresh(invoice)


def take(invoice_id: int, actor, owner=None) -> Invoice:
    """Give a locked invoice's finalization to a clerk: a clerk takes it (owner None), a
    supervisor may give it to anyone who can finalize. Audited; the last word wins."""
    invoice = lock_invoice(invoice_id)
    if invoice.corrective_action != ACTION_REQUIRED:
        raise DomainError(f"Invoice {invoice.number} is not locked: there is nothing to take")
    owner = owner or actor
    if owner.id != actor.id and not actor.can(Role.SUPERVISOR):
        raise NotAllowed("Only a supervisor gives an invoice to another clerk")
    if not owner.can(Role.CLERK) or not owner.active:
        raise DomainError(f"{owner} cannot finalize invoices")
    before = invoice.owner_id
    invoice.owner_id = owner.id
    audit.record(
        "invoice.owner_changed", invoice, actor=actor,
        before={"owner": before and str(db.session.get(User, before))}, after={"owner": str(owner)},
    )  # fmt: skip
    return invoice


def release(invoice_id: int, actor) -> Invoice:
    """Give the work back to the queue: its owner, or a supervisor."""
    invoice = lock_invoice(invoice_id)
    if invoice.owner_id is None:
        raise DomainError(f"Nobody owns invoice {invoice.number}")
    if invoice.owner_id != actor.id and not actor.can(Role.SUPERVISOR):
        raise NotAllowed(
            f"Invoice {invoice.number} is {invoice.owner}'s: only they or a supervisor give it back"
        )
    audit.record(
        "invoice.owner_changed", invoice, actor=actor,
        before={"owner": str(invoice.owner)}, after={"owner": None},
    )  # fmt: skip
    invoice.owner_id = None
    return invoice
