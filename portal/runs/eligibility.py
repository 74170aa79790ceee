"""Which invoices a run may charge, in a clerk's words when one may not, and cancelling one, which
takes it out of every run for good (it may not have a charge in flight)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import case, exists, select

from portal import clock
from portal.accounts.models import PaymentMethod
from portal.audit import service as audit
from portal.errors import NotAllowed
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.service import lock_invoice, past_retry_schedule
from portal.statuses import ACTION_REQUIRED, GatewayStatus, MethodState
from portal.transactions.models import Operation, PaymentTransaction


@dataclass(frozen=True)
class RunFilter:
    due_on: date
    currency: str | None = None
    gateway_id: int | None = None
    account_id: int | None = None
    # When the run decides; the retry schedule is read against it (None: now).
    at: datetime | None = None


def charging_method(invoice: Invoice) -> PaymentMethod | None:
    """The account's payment method a run charges: an Active one first, the default first among
    those; else the best of the rest, so that the skip reason names its state."""
    return charging_methods([invoice.account_id]).get(invoice.account_id)


def charging_methods(account_ids) -> dict[int, PaymentMethod]:
    """`charging_method` for many accounts in one query: each account's best method."""
    rank = case((PaymentMethod.state == MethodState.ACTIVE.value, 0), else_=1)
    best: dict[int, PaymentMethod] = {}
    for method in db.session.scalars(
        select(PaymentMethod)
        .where(PaymentMethod.account_id.in_(set(account_ids)))
        .order_by(PaymentMethod.account_id, rank, PaymentMethod.is_default.desc(), PaymentMethod.id)
    ):
        best.setdefault(method.account_id, method)
    return best


def pending_charges(invoice_ids) -> set[int]:
    """Which of these invoices have a charge in flight (a Pending charge), in one query."""
    return set(
        db.session.scalars(
            select(PaymentTransaction.invoice_id).where(
                PaymentTransaction.invoice_id.in_(set(invoice_ids)),
                PaymentTransaction.operation == Operation.CHARGE.value,
                PaymentTransaction.status == GatewayStatus.PENDING.value,
            )
        )
    )


def has_pending_charge(invoice: Invoice) -> bool:
    return invoice.id in pending_charges([invoice.id])


def why_not_eligible(
    invoice: Invoice, method: PaymentMethod | None, rf: RunFilter, *, pending: bool | None = None,
    retries: int | None = None,
) -> str | None:  # fmt: skip
    """The first eligibility rule the invoice fails, in a clerk's words; None when eligible.

    A window of invoices passes what it read for all of them at once: whether each has a charge
    in flight (`pending`) and the retry schedule's length (`retries`)."""
    if invoice.cancelled_at is not None:
        return "cancelled"
    if not invoice.posted:
        return "not posted"
    if invoice.balance <= 0:
        return "zero balance"
    if invoice.due_date > rf.due_on:
        return "not due"
    if invoice.corrective_action == ACTION_REQUIRED:
        return "Action Required"
    if rf.currency and invoice.currency != rf.currency:
        return "other currency"
    if rf.account_id and invoice.account_id != rf.account_id:
        return "other account"
    if method is None or method.state == MethodState.INACTIVE:
        return "no active payment method"
    if method.state == MethodState.NEEDS_UPDATE:
        return "payment method needs update"
    if rf.gateway_id and method.gateway_id != rf.gateway_id:
        return "other gateway"
    if not method.gateway.enabled:
        return "gateway disabled"
    if has_pending_charge(invoice) if pending is None else pending:
        return "charged by another run in progress"
    if past_retry_schedule(invoice.decline_count, retries):
        return "retries exhausted"
    if invoice.next_attempt_at and invoice.next_attempt_at > (rf.at or clock.now()):
        return "next retry not yet due"
    return None


def candidate_ids(rf: RunFilter) -> list[int]:
    """The invoices a run considers (open, due, in its scope), oldest due first.

    why_not_eligible has the last word on each, and its reason is recorded when it says no.
    """
    query = (
        select(Invoice.id)
        .where(Invoice.balance > 0, Invoice.due_date <= rf.due_on, Invoice.cancelled_at.is_(None))
        .order_by(Invoice.due_date, Invoice.id)
    )
    if rf.currency:
        query = query.where(Invoice.currency == rf.currency)
    if rf.account_id:
        query = query.where(Invoice.account_id == rf.account_id)
    if rf.gateway_id:
        query = query.where(
            exists().where(
                PaymentMethod.account_id == Invoice.account_id,
                PaymentMethod.gateway_id == rf.gateway_id,
            )
        )
    return list(db.session.scalars(query))


def cancel(invoice_id: int, actor) -> Invoice:
    """The billing system cancels an invoice: runs never charge it again. Only an invoice with
    no money on it: none allocated, no charge in flight, nothing left to finalize."""
    invoice = lock_invoice(invoice_id)
    if invoice.cancelled_at is not None:
        return invoice
    if has_pending_charge(invoice):
        raise NotAllowed(
            f"Invoice {invoice.number} has a charge in flight: cancel it when answered"
        )
    if invoice.corrective_action:
        raise NotAllowed(
            f"Invoice {invoice.number} is {invoice.corrective_action}: a clerk finalizes its"
            " charge first"
        )
    if invoice.balance != invoice.total:
        raise NotAllowed(
            f"Invoice {invoice.number} has payments allocated: a supervisor unallocates them"
            " (Payments) before it is cancelled"
        )
    invoice.cancelled_at = clock.now()
    invoice.cancelled_by_id = getattr(actor, "id", None)
    audit.record("invoice.cancelled", invoice, actor=actor, after={"state": "Cancelled"})
    return invoice
