"""What a provider's webhook tells, once its plugin has verified and read it: one `Notice` per event.

A notice names the transaction it is about the way the provider does (its own reference, and
Settle's key where the provider echoes it back) and carries the status it tells, read through the
provider's code mapping like any answer. Only a *final* notice (the provider decided: succeeded,
failed, cancelled) may settle a transaction; an interim one (created, processing) is kept and shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.gateways.base import GatewayResult
from portal.money import Money


class UnreadableWebhook(ValueError):
    """The body is not the provider's webhook format; the words say what is wrong."""


@dataclass(frozen=True)
class Notice:
    event_id: str  # the provider's id of the event: a re-delivery has the same one
    event_type: str  # the provider's own name for it ("payment_intent.succeeded")
    # What it is about: "charge", "refund" or "void"; None for an event Settle does not act on.
    operation: str | None
    final: bool
    result: GatewayResult | None
    reference: str | None = None  # the provider's id of the transaction
    key: str | None = None  # Settle's idempotency key, where the provider echoes it back
    order_id: str | None = None  # the invoice number
    amount: Money | None = None
    occurred_at: datetime | None = None  # UTC, naive, as Settle stores times
