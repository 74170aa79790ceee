"""Invoices: what an account owes, and whether runs may charge it."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.money import Money
from portal.types import Amount, trigram_index


class InvoiceState(enum.StrEnum):
    OPEN = "Open"
    PARTIALLY_PAID = "Partially paid"
    PAID = "Paid"
    ACTION_REQUIRED = "Action Required"
    CANCELLED = "Cancelled"


def invoice_state(
    corrective_action: str | None, total: Decimal, balance: Decimal, cancelled: bool = False
) -> InvoiceState:
    """Cancelled, Action Required, Paid, Partially paid or Open, as clerks name an invoice's
    state (the list's filter, invoices.listing.state_clause, says the same in SQL)."""
    if cancelled:
        return InvoiceState.CANCELLED
    if corrective_action:
        return InvoiceState.ACTION_REQUIRED
    if balance <= 0:
        return InvoiceState.PAID
    if balance < total:
        return InvoiceState.PARTIALLY_PAID
    return InvoiceState.OPEN


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint("balance >= 0 AND balance <= total", name="balance_within_total"),
        trigram_index("ix_invoices_number_trgm", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Amount)
    # total minus allocations; kept by the allocation service under the invoice's row lock.
    balance: Mapped[Decimal] = mapped_column(Amount)
    due_date: Mapped[date] = mapped_column(index=True)
    posted: Mapped[bool] = mapped_column(default=True)
    corrective_action: Mapped[str | None] = mapped_column(String(40), index=True)
    # While locked: since when, and the clerk who took (or was given) the work of finalizing it.
    locked_at: Mapped[datetime | None] = mapped_column(index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # A clerk's (or autovoid's) claim while Attempt Refund & Unlock talks to the gateway: one per
    # invoice, taken by a conditional UPDATE of this row, so that a manual payment (which locks
    # the row) and a second clerk on any charge of the invoice wait for it or are refused.
    finalizing_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    finalizing_at: Mapped[datetime | None]
    # Soft declines since the last success or reset, and when the retry schedule allows the next.
    decline_count: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Cancelled by the billing system (the API): runs never charge it again.
    cancelled_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    account = relationship("Account")
    owner = relationship("User", foreign_keys=[owner_id])
    finalizing_by = relationship("User", foreign_keys=[finalizing_by_id])

    @property
    def state(self) -> str:
        return invoice_state(
            self.corrective_action, self.total, self.balance, self.cancelled_at is not None
        )

    @property
    def total_money(self) -> Money:
        return Money(self.total, self.currency)

    @property
    def balance_money(self) -> Money:
        return Money(self.balance, self.currency)

    def __str__(self) -> str:
        return self.number
