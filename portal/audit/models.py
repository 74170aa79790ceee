"""Audit events: who did what to which record, when, with before and after. Append-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.types import JSONValue


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    # None means Settle itself (a run, the janitor).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int]
    before: Mapped[dict | None] = mapped_column(JSONValue)
    after: Mapped[dict | None] = mapped_column(JSONValue)
    note: Mapped[str | None] = mapped_column(Text)
    # The hash chain (portal/audit/chain.py): set once, moments after the event's commit.
    seq: Mapped[int | None] = mapped_column(unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    actor = relationship("User")

    @property
    def sentence(self) -> str:
        return sentence(self.action)

    @property
    def record_name(self) -> str:
        return f"{RECORDS.get(self.entity_type, self.entity_type)} #{self.entity_id}"

    @property
    def actor_name(self) -> str:
        return str(self.actor) if self.actor else "Settle (system)"


# What each event says to a person; the stored action name stays the machine's key.
class AuditChain(db.Model):
    """The chain's head: its last place and hash (one row), to tell a chain cut at its end."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


SENTENCES = {
    "user.logged_in": "logged in",
    "login.locked": "locked the username after repeated failed logins",
    "login.throttled": "refused login attempts over the limit",
    "user.sessions_ended": "ended sessions of",
    "gateway.created": "added the gateway",
    "gateway.updated": "changed the gateway",
    "gateway.tested": "tested the gateway's connection",
    "payment_method.gateway_changed": "moved the payment method to another gateway",
    "payment_method.state_changed": "changed the payment method's state",
    "payment_run.started": "started the payment run",
    "payment_run.cancelled": "cancelled the payment run",
    "payment_run.resumed": "resumed the payment run after an interruption",
    "payment_run.finished": "finished the payment run",
    "payment.created": "recorded a payment",
    "invoice.allocated": "allocated a payment to the invoice",
    "invoice.unallocated": "took a payment's allocation back from the invoice",
    "payment.unallocated": "took back an allocation of the payment",
    "payment.reversed": "reversed part of the payment: the gateway does not hold it",
    "invoice.locked": "locked the invoice (Action Required)",
    "invoice.unlocked": "unlocked the invoice",
    "invoice.retries_reset": "reset the invoice's retries",
    "invoice.cancelled": "cancelled the invoice",
    "invoice.created_by_api": "created the invoice through the API",
    "invoice.updated_by_api": "changed the invoice through the API",
    "account.saved_by_api": "saved the account through the API",
    "payment_method.saved_by_api": "saved the payment method through the API",
    "import.applied": "applied the import",
    "import.failed": "stopped writing the import (it failed part way)",
    "api_token.created": "created an API token for the user",
    "api_token.revoked": "revoked an API token of the user",
    "invoice.owner_changed": "changed who works on the invoice",
    "invoice.looked_up": "asked the gateway for everything it holds for the invoice",
    "transaction.looked_up": "asked the gateway about this charge",
    "transaction.void": "asked the gateway to void the charge",
    "transaction.refund": "asked the gateway to refund the charge",
    "transaction.finalized": "finalized the charge",
    "transaction.late_answer": "kept a late answer from the gateway",
    "transaction.held": "held the charge open: the gateway holds money Settle has not booked",
    "transaction.booking_differs": (
        "held the charge open: the gateway holds other than the payment Settle booked"
    ),
    "transaction.booked_late": "booked the payment the gateway took after all",
    "transaction.reopened": "opened the charge again: its void or refund did not go through",
    "transaction.settled_by_webhook": "took the gateway's answer from its webhook",
    "webhook.for_a_clerk": "received a gateway event that disagrees with Settle",
    "webhook.unmatched": "received a gateway event for a transaction Settle never sent",
    "webhook.handled": "marked a gateway event handled",
    "reconciliation.asked": "asked the gateways what they hold, and compared",
}

# The record an event is about, as a person names it.
RECORDS = {
    "payment_transactions": "transaction",
    "invoices": "invoice",
    "payments": "payment",
    "payment_runs": "payment run",
    "payment_methods": "payment method",
    "gateways": "gateway",
    "users": "user",
    "login_throttles": "login name",
    "settings": "setting",
    "accounts": "account",
    "allocations": "allocation",
    "reconciliation_reports": "reconciliation report",
    "webhook_events": "gateway event",
}


def sentence(action: str) -> str:
    if action in SENTENCES:
        return SENTENCES[action]
    if action.startswith("setting."):
        return f"changed the setting {action.removeprefix('setting.').replace('_', ' ')}"
    return action.replace("_", " ").replace(".", ": ")
