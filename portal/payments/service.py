"""Payments and allocations: money received, applied to invoices, never beyond a balance."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select, update

from portal import clock
from portal.audit import service as audit
from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.service import lock_invoice
from portal.money import Money
from portal.payments.models import Allocation, Payment, PaymentMethodKind, PaymentReversal


def create_payment(
    *,
    account_id: int,
    amount: Decimal,
    currency: str,
    method: PaymentMethodKind,
    reference: str | None,
    received_on: date | None = None,
    transaction_id: int | None = None,
    actor=None,
) -> Payment:
    if amount <= 0:
        raise DomainError("A payment must be more than zero")
    payment = Payment(
        account_id=account_id,
        amount=amount,
        currency=currency,
        method=method.value,
        reference=reference,
        received_on=received_on or clock.today(),
        transaction_id=transaction_id,
        created_by_id=getattr(actor, "id", None),
        allocations=[],  # new: known empty, so allocating does not ask the database
        reversals=[],
    )
    db.session.add(payment)
    audit.record(
        "payment.created",
        payment,
        actor=actor,
        after={"amount": str(amount), "currency": currency, "method": method.value,
               "reference": reference, "transaction_id": transaction_id},
    )  # fmt: skip
    return payment


def allocate(payment: Payment, invoice: Invoice, amount: Decimal, *, actor=None) -> Allocation:
    """Apply part of a payment to an invoice. The caller holds the invoice's row lock."""
    if payment.currency != invoice.currency:
        raise DomainError(
            f"A {payment.currency} payment cannot be allocated to a {invoice.currency} invoice"
        )
    if amount <= 0:
        raise DomainError("An allocation must be more than zero")
    if payment.allocated + amount > payment.net.amount:
        raise DomainError("The allocations would exceed the payment")
    # Decimal arithmetic here, never in SQL: SQLite would compute the balance in binary floats.
    # The caller's row lock (lock_invoice) keeps anyone else from changing it meanwhile.
    before = Money(invoice.balance, invoice.currency).amount
    if amount > before:
        raise DomainError(
            f"{amount} {invoice.currency} is more than invoice {invoice.number}'s balance"
        )
    invoice.balance = before - amount
    allocation = Allocation(
        payment=payment,
        invoice_id=invoice.id,
        amount=amount,
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(allocation)
    audit.record(
        "invoice.allocated",
        invoice,
        actor=actor,
        before={"balance": str(before)},
        # The payment itself, not its id: a payment not yet written gets it with the next flush.
        after={"balance": str(invoice.balance), "payment_id": payment, "amount": str(amount)},
    )
    return allocation


MIN_REASON = 10


def unallocate(allocation_id: int, reason: str, actor) -> Allocation:
    """A supervisor takes an allocation back, with a written reason: the invoice's balance opens
    again by its amount, and the payment's amount is free to allocate elsewhere. One effect
    however often it is asked for: the database lets exactly one request write it."""
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise DomainError(
            f"Write why the allocation is taken back (at least {MIN_REASON} characters)"
        )
    allocation = db.session.get(Allocation, allocation_id)
    if allocation is None:
        raise DomainError(f"Allocation {allocation_id} does not exist")
    invoice = lock_invoice(allocation.invoice_id)
    _take_back(allocation, invoice, reason, actor)
    return allocation


def _take_back(allocation: Allocation, invoice: Invoice, reason: str, actor) -> None:
    """Mark the allocation taken back (compare-and-set: of two requests, one writes it) and open
    the invoice's balance again by its amount. The caller holds the invoice's row lock."""
    now = clock.now()
    won = db.session.execute(
        update(Allocation)
        .where(Allocation.id == allocation.id, Allocation.unallocated_at.is_(None))
        .values(
            unallocated_at=now,
            unallocated_by_id=getattr(actor, "id", None),
            unallocation_reason=reason,
        )  # fmt: skip
    ).rowcount
    if won != 1:
        db.session.rollback()
        done = db.session.get(Allocation, allocation.id, populate_existing=True)
        raise NotAllowed(
            f"Already unallocated by {done.unallocated_by or 'Settle'} at "
            f"{clock.shown(done.unallocated_at)}"
        )
    db.session.refresh(allocation)
    before = Money(invoice.balance, invoice.currency).amount
    invoice.balance = before + allocation.amount
    audit.record(
        "invoice.unallocated", invoice, actor=actor, before={"balance": str(before)},
        after={"balance": str(invoice.balance), "payment_id": allocation.payment_id,
               "amount": str(allocation.amount)},
        note=reason,
    )  # fmt: skip
    audit.record(
        "payment.unallocated", allocation.payment, actor=actor,
        after={"invoice": invoice.number, "amount": str(allocation.amount)}, note=reason,
    )  # fmt: skip


def reverse(
    payment_id: int, amount: Decimal, reason: str, actor, *,
    charge_id: int | None = None, refund_id: int | None = None, invoice_id: int | None = None,
) -> PaymentReversal:  # fmt: skip
    """Take `amount` of a payment back, by a reversal of its own: the gateway does not hold it
    (given back, or never captured). What of its allocations no longer fits in what is left is
    taken back too, `invoice_id`'s first, then the newest first (an allocation is taken back
    whole, and what of it still fits is allocated again), so that each invoice is owed again
    exactly what the payment no longer pays.
    The caller holds the row lock of the charge's invoice; the payment's is taken here."""
    payment = _lock_payment(payment_id)
    if payment is None:
        raise DomainError(f"Payment {payment_id} does not exist")
    db.session.expire(payment, ["allocations", "reversals"])  # read under the payment's lock
    if amount <= 0:
        raise DomainError("A reversal must be more than zero")
    if amount > payment.net.amount:
        raise DomainError(
            f"{Money(amount, payment.currency)} is more than the {payment.net} left of payment"
            f" #{payment.id}"
        )
    before = payment.net
    left = payment.net.amount - amount
    excess = payment.allocated - left
    for allocation in sorted(
        (a for a in payment.allocations if a.active),
        key=lambda a: (a.invoice_id == invoice_id, a.id),
        reverse=True,
    ):
        if excess <= 0:
            break
        invoice = lock_invoice(allocation.invoice_id)
        _take_back(allocation, invoice, reason, actor)
        keep = allocation.amount - excess
        excess -= allocation.amount
        if keep > 0:
            allocate(payment, invoice, keep, actor=actor)
    reversal = PaymentReversal(
        payment=payment, amount=amount, reason=reason, transaction_id=charge_id,
        refund_id=refund_id, created_by_id=getattr(actor, "id", None),
    )  # fmt: skip
    db.session.add(reversal)
    audit.record(
        "payment.reversed", payment, actor=actor,
        before={"net": str(before.amount)},
        after={"net": str(before.amount - amount), "amount": str(amount),
               "transaction_id": charge_id, "refund_id": refund_id},
        note=reason,
    )  # fmt: skip
    return reversal


def allocate_remainder(payment_id: int, invoice_id: int, amount: Decimal, actor) -> Allocation:
    """A supervisor applies what of a payment is free to an invoice of the same account."""
    invoice = lock_invoice(invoice_id)
    payment = _lock_payment(payment_id)
    if payment is None:
        raise DomainError(f"Payment {payment_id} does not exist")
    db.session.expire(payment, ["allocations", "reversals"])  # read under its lock, not before
    if invoice.account_id != payment.account_id:
        raise DomainError(
            f"Invoice {invoice.number} belongs to another account than payment #{payment.id}"
        )
    if amount > payment.unallocated.amount:
        raise DomainError(
            f"{Money(amount, payment.currency)} is more than the {payment.unallocated} of payment "
            f"#{payment.id} that is not allocated"
        )
    return allocate(payment, invoice, amount, actor=actor)


def _lock_payment(payment_id: int) -> Payment | None:
    """Take the payment's row lock for the rest of the database transaction, and read it fresh:
    two allocations of its free money to two invoices (two invoice locks) would otherwise both
    see the same free amount on PostgreSQL. SQLite's database write lock, which the invoice's
    lock took already, serializes them there."""
    query = select(Payment).where(Payment.id == payment_id)
    if db.session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return db.session.scalars(query.execution_options(populate_existing=True)).first()
