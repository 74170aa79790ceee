"""Webhook events as the gateways sent them: each stored once, with what Settle did about it."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.money import Money
from portal.types import Amount, JSONValue


class Outcome(enum.StrEnum):
    SETTLED = "settled"  # it gave the transaction the gateway's decided answer
    NO_CHANGE = "no change"  # Settle had that answer already, or the event only tells progress
    FOR_A_CLERK = "for a clerk"  # it disagrees with what Settle holds: a clerk looks
    UNMATCHED = "unmatched"  # about a transaction Settle never sent: a clerk looks
    NOT_ACTED = "not acted on"  # an event about something Settle does not do


class WebhookEvent(db.Model):
    __tablename__ = "webhook_events"
    # A re-delivery of an event is recognised by its provider's id and changes nothing.
    __table_args__ = (UniqueConstraint("gateway_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(120))
    event_type: Mapped[str] = mapped_column(String(80))
    operation: Mapped[str | None] = mapped_column(String(10))
    final: Mapped[bool] = mapped_column(default=False)
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    # What it tells: the transaction as the provider names it, and the status its code maps to.
    reference: Mapped[str | None] = mapped_column(String(120), index=True)
    settle_key: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(60))
    amount: Mapped[Decimal | None] = mapped_column(Amount)
    currency: Mapped[str | None] = mapped_column(String(3))
    told_status: Mapped[str | None] = mapped_column(String(20))
    code: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(Text)
    transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_transactions.id"), index=True
    )
    outcome: Mapped[str] = mapped_column(String(20), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    body: Mapped[dict | None] = mapped_column(JSONValue)
    # A clerk's word on an unmatched or disputed event.
    handled_at: Mapped[datetime | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handled_note: Mapped[str | None] = mapped_column(Text)

    gateway = relationship("Gateway")
    transaction = relationship("PaymentTransaction")
    handled_by = relationship("User")

    @property
    def money(self) -> Money | None:
        return Money(self.amount, self.currency) if self.amount is not None else None
