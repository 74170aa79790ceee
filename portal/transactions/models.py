"""Payment transactions: one call to a gateway and its answer."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.money import Money
from portal.statuses import GatewayStatus
from portal.types import Amount, JSONValue


class Operation(enum.StrEnum):
    CHARGE = "charge"
    REFUND = "refund"
    VOID = "void"
    LOOKUP = "lookup"


class Finalization(enum.StrEnum):
    """How a charge was finalized (stored, 30 characters at most): by a clerk's button, or by
    Settle where it proved that no money stayed at the gateway. Every value is a member here."""

    REFUND_AND_UNLOCK = "Refund & Unlock"
    MANUAL_PAYMENT = "Manual payment"
    # Settle's own, for a charge whose request never reached the gateway: nothing to ask or undo.
    UNLOCKED_UNSENT = "Unlocked: never sent"
    # A run recorded it and stopped (cancelled, or its chunk taken over) before sending it.
    RUN_NEVER_SENT = "Never sent: the run stopped"
    # Crash recovery asked the gateway: it holds no such charge, or holds it given back.
    RECOVERED_NEVER_SENT = "Recovered: never sent"
    RECOVERED_REVERSED = "Recovered: reversed"
    # A clerk set the payment booked for the charge to what the gateway holds of it (less, after
    # a partial refund outside Settle, or none): the rest was reversed, and the invoice owes it.
    BOOKING_CORRECTED = "Booking corrected"

    @property
    def button(self) -> str | None:
        """The clerk's button that finalizes this way (None: Settle's own)."""
        return _BUTTONS.get(self)

    @property
    def said_nothing_is_held(self) -> bool:
        """Finalized on the word that the gateway holds none of the charge's money (never sent,
        or found nothing to give back): the gateway's later "it succeeded" contradicts it."""
        return self in (
            Finalization.REFUND_AND_UNLOCK,
            Finalization.UNLOCKED_UNSENT,
            Finalization.RUN_NEVER_SENT,
            Finalization.RECOVERED_NEVER_SENT,
        )


# The buttons, as seed 000 names the two finalization actions, and Settle's third.
_BUTTONS = {
    Finalization.REFUND_AND_UNLOCK: "Attempt Refund & Unlock Invoice",
    Finalization.MANUAL_PAYMENT: "Create manual payment",
    Finalization.UNLOCKED_UNSENT: "Unlock Invoice (never sent)",
    Finalization.BOOKING_CORRECTED: "Correct the booking",
}
REFUND_AND_UNLOCK = Finalization.REFUND_AND_UNLOCK.button
MANUAL_PAYMENT = Finalization.MANUAL_PAYMENT.button
UNLOCK_UNSENT = Finalization.UNLOCKED_UNSENT.button
CORRECT_BOOKING = Finalization.BOOKING_CORRECTED.button


# What the dashboard's month sums of each call (portal/listings/charts.py).
MONTH_COLUMNS = [
    "operation", "status", "locked_invoice", "currency", "amount", "gateway_id", "provider_code"
]  # fmt: skip
_PENDING_CHARGE = text("status = 'Pending' AND operation = 'charge'")
_LOOKUP = text("operation = 'lookup'")
_LOCKED, _LOCKED_SQLITE = text("locked_invoice"), text("locked_invoice = 1")
# SQLite takes a partial index only for a query that spells its condition the same way.
_UNMAPPED, _UNMAPPED_SQLITE = text("unmapped"), text("unmapped = 1")


class PaymentTransaction(db.Model):
    __tablename__ = "payment_transactions"
    __table_args__ = (
        # The in-flight claim: one unanswered charge per invoice, on SQLite and PostgreSQL alike.
        Index(
            "uq_payment_transactions_pending_charge",
            "invoice_id",
            unique=True,
            sqlite_where=_PENDING_CHARGE,
            postgresql_where=_PENDING_CHARGE,
        ),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        # The transactions list's pages (portal/pagination.py): each filter and sort finds its
        # page in an index in the list's own order, at any depth of a million rows.
        Index("ix_payment_transactions_status_id", "status", "id"),
        # What each run locked (the runs' pages and the dashboard): the few calls that locked.
        Index(
            "ix_payment_transactions_locked_run",
            "run_id",
            sqlite_where=_LOCKED_SQLITE,
            postgresql_where=_LOCKED,
        ),
        Index("ix_payment_transactions_amount_id", "amount", "id"),
        # The date filters, and the dashboard's month read from the index alone on PostgreSQL.
        Index(
            "ix_payment_transactions_requested_at", "requested_at", postgresql_include=MONTH_COLUMNS
        ),
        Index(
            "ix_payment_transactions_lookups", "id", sqlite_where=_LOOKUP, postgresql_where=_LOOKUP
        ),
        Index(
            "ix_payment_transactions_unmapped",
            "id",
            sqlite_where=_UNMAPPED_SQLITE,
            postgresql_where=_UNMAPPED,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    operation: Mapped[str] = mapped_column(String(10))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("payment_runs.id"), index=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id"), index=True)
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    # The charge that a refund, void or lookup is about.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("payment_transactions.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    # The charge's identity at the gateway, fixed when it is recorded and never looked up again:
    # the invoice number it was sent with (a renumbered invoice does not change what the gateway
    # holds), and where the provider's order field is shorter than Settle's key (Authorize.Net's
    # 20 characters), the per-charge reference sent in it. A follow-up copies its charge's.
    order_id: Mapped[str | None] = mapped_column(String(120))
    order_reference: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default=GatewayStatus.PENDING.value)
    provider_code: Mapped[str | None] = mapped_column(String(40))
    provider_message: Mapped[str | None] = mapped_column(Text)
    provider_reference: Mapped[str | None] = mapped_column(String(120), index=True)
    # Whether the answer locked the invoice (kept, since strict mode may change later).
    locked_invoice: Mapped[bool] = mapped_column(default=False)
    # The provider's code was not in the mapping; the status is the mapping's default.
    unmapped: Mapped[bool] = mapped_column(default=False)
    # The rule the plugin applied to give the status (a mapping file's line, or its default), and
    # that entry's guidance for the clerk: kept as answered, never looked up again.
    decided_by: Mapped[str | None] = mapped_column(String(200))
    guidance: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    # False when Settle knows the request never reached the gateway (refused connection, missing
    # credential): a clerk may then unlock without asking the gateway. None: not answered yet.
    request_sent: Mapped[bool | None]
    raw_request: Mapped[dict | None] = mapped_column(JSONValue)
    raw_response: Mapped[dict | None] = mapped_column(JSONValue)
    # What a lookup found: "not found", "unsettled", "settled"... and each transaction it found.
    gateway_state: Mapped[str | None] = mapped_column(String(20))
    findings: Mapped[list | None] = mapped_column(JSONValue)
    requested_at: Mapped[datetime] = mapped_column(default=clock.now)
    answered_at: Mapped[datetime | None]
    # The provider's webhook event whose word gave the status, where one did (not the call's answer).
    webhook_event: Mapped[str | None] = mapped_column(String(120))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    finalization: Mapped[str | None] = mapped_column(String(30))
    finalized_at: Mapped[datetime | None]
    finalized_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The janitor's lookups of a locked charge: how many so far, and when the next is due.
    janitor_checks: Mapped[int] = mapped_column(default=0, server_default="0")
    janitor_next_at: Mapped[datetime | None] = mapped_column(index=True)

    invoice = relationship("Invoice")
    run = relationship("PaymentRun")
    gateway = relationship("Gateway")
    payment_method = relationship("PaymentMethod")
    parent = relationship("PaymentTransaction", remote_side=[id])
    created_by = relationship("User", foreign_keys=[created_by_id])
    finalized_by = relationship("User", foreign_keys=[finalized_by_id])
    # The payment that came from this transaction: its Success, or the clerk's manual payment.
    payment = relationship("Payment", back_populates="transaction", uselist=False, viewonly=True)

    @property
    def gateway_status(self) -> GatewayStatus:
        return GatewayStatus(self.status)

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def needs_finalization(self) -> bool:
        return (
            self.operation == Operation.CHARGE
            and self.locked_invoice
            and self.finalized_at is None
            and self.invoice.corrective_action is not None
        )

    @property
    def is_gateway_check(self) -> bool:
        """A lookup: Settle asked what the gateway holds. It moves no money, so it has a finding,
        never a payment status."""
        return self.operation == Operation.LOOKUP

    @property
    def awaiting_gateway(self) -> bool:
        """A void, refund or reversal the gateway took and has not confirmed yet (Adyen's
        "received", a pending refund): asked, not done; its webhook tells the outcome."""
        return (
            self.operation != Operation.CHARGE
            and self.status == GatewayStatus.REQUIRES_REVIEW
            and self.request_sent is not False
        )

    @property
    def finding(self) -> str:
        """A gateway check's answer, as a clerk reads it."""
        if self.status == GatewayStatus.PENDING:
            return "asking…"
        if self.awaiting_gateway:
            return "asked, waiting for confirmation"
        if self.status == GatewayStatus.SUCCESS:
            return self.gateway_state
        return "no answer"

    @property
    def never_sent(self) -> bool:
        """Settle knows the request never reached the gateway: no money can have moved."""
        return self.operation == Operation.CHARGE and self.request_sent is False

    def settled_finding(self) -> dict | None:
        """The settled transaction a lookup found, as the gateway reports it (amount, reference)."""
        return next((f for f in self.findings or [] if f["state"] == "settled"), None)

    @property
    def duration_ms(self) -> int | None:
        if self.answered_at is None:
            return None
        return int((self.answered_at - self.requested_at).total_seconds() * 1000)
