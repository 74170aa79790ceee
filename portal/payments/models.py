"""Payments received, and their allocations to invoices."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.money import Money
from portal.types import Amount


class PaymentMethodKind(enum.StrEnum):
    GATEWAY = "Gateway"
    CHECK = "Check"
    WIRE = "Wire"
    CASH = "Cash"
    OTHER = "Other"


class Payment(db.Model):
    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str | None] = mapped_column(String(120))
    received_on: Mapped[date]
    # The Success transaction this payment came from, or the charge a manual payment finalized.
    transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_transactions.id"), unique=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    account = relationship("Account")
    created_by = relationship("User", foreign_keys=[created_by_id])
    transaction = relationship("PaymentTransaction", back_populates="payment")
    allocations: Mapped[list[Allocation]] = relationship(back_populates="payment")
    reversals: Mapped[list[PaymentReversal]] = relationship(
        back_populates="payment", order_by="PaymentReversal.id"
    )

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def reversed(self) -> Decimal:
        """What of the payment was taken back because the gateway does not hold it (any more)."""
        return sum((r.amount for r in self.reversals), Decimal(0))

    @property
    def net(self) -> Money:
        """What Settle holds of the payment: its amount less what was reversed."""
        return Money(self.amount - self.reversed, self.currency)

    @property
    def allocated(self) -> Decimal:
        return sum((a.amount for a in self.allocations if a.active), Decimal(0))

    @property
    def unallocated(self) -> Money:
        """What of the payment is applied to no invoice (after an unallocation, say)."""
        return Money(self.amount - self.reversed - self.allocated, self.currency)


class Allocation(db.Model):
    __tablename__ = "allocations"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Amount)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # An allocation is never deleted: a supervisor's unallocation is written on it, with why.
    unallocated_at: Mapped[datetime | None]
    unallocated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    unallocation_reason: Mapped[str | None] = mapped_column(Text)

    payment: Mapped[Payment] = relationship(back_populates="allocations")
    invoice = relationship("Invoice")
    created_by = relationship("User", foreign_keys=[created_by_id])
    unallocated_by = relationship("User", foreign_keys=[unallocated_by_id])

    @property
    def active(self) -> bool:
        return self.unallocated_at is None


class PaymentReversal(db.Model):
    """A movement of its own that takes part of a payment back (never a deletion, never an edit
    of the payment): the gateway gave the money back (a Refund & Unlock, `refund_id`), or a clerk
    corrected the booking to what the gateway holds (a reconciliation found it holds less)."""

    __tablename__ = "payment_reversals"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Amount)
    reason: Mapped[str] = mapped_column(Text)
    # The charge whose booking this corrects, and the refund or void that gave the money back
    # where Settle made it (the ledger then shows that refund as the money going out).
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("payment_transactions.id"))
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("payment_transactions.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    payment: Mapped[Payment] = relationship(back_populates="reversals")
    created_by = relationship("User", foreign_keys=[created_by_id])

    @property
    def money(self) -> Money:
        return Money(self.amount, self.payment.currency)
