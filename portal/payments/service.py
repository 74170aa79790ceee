"""Payments and allocations: money received, applied to invoices, never beyond a balance."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from portal import clock
from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.money import Money
from portal.payments.models import Allocation, Payment, PaymentMethodKind


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
    )
    db.session.add(payment)
    db.session.flush()
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
    allocated = sum((a.amount for a in payment.allocations), Decimal(0))
    if allocated + amount > payment.amount:
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
    db.session.flush()
    audit.record(
        "invoice.allocated",
        invoice,
        actor=actor,
        before={"balance": str(before)},
        after={"balance": str(invoice.balance), "payment_id": payment.id, "amount": str(amount)},
    )
    return allocation
