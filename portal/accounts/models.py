"""Accounts (customers) and their tokenized payment methods."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.statuses import MethodState
from portal.types import trigram_index


class Account(db.Model):
    __tablename__ = "accounts"
    __table_args__ = (
        trigram_index("ix_accounts_number_trgm", "number"),
        trigram_index("ix_accounts_name_trgm", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The billing system's own id, by which an import matches this record (None: made in Settle).
    external_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    payment_methods: Mapped[list[PaymentMethod]] = relationship(back_populates="account")

    def __str__(self) -> str:
        return f"{self.name} ({self.number})"


class PaymentMethod(db.Model):
    """A card or bank account as the gateway's token: never a card number or CVV."""

    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id"), index=True)
    token: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    brand: Mapped[str] = mapped_column(String(40))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int | None]
    exp_year: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(20), default=MethodState.ACTIVE.value)
    is_default: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    account: Mapped[Account] = relationship(back_populates="payment_methods")
    gateway = relationship("Gateway")

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"
