"""The printable transaction review: everything an auditor needs about one transaction, on a page."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from portal import clock
from portal.audit import service as audit
from portal.extensions import db
from portal.settings import service as settings
from portal.statuses import NOT_SENT_GUIDANCE, POLICY, policy_for
from portal.transactions.models import PaymentTransaction

# The raw answer is cut here so that the review stays on one page; the portal shows it whole.
RAW_LIMIT = 900
# Rows beyond these are folded into a count with a pointer to the portal, so that the review
# of an invoice with up to six gateway calls still prints on one A4 or Letter page.
ATTEMPTS_SHOWN = 6
EVENTS_SHOWN = 10


@dataclass(frozen=True)
class Attempt:
    txn: PaymentTransaction
    decided_by: str


def decided_by(txn: PaymentTransaction) -> str:
    """Which rule gave the status, as the plugin reported it when the answer came: a mapping entry
    (file and line), the mapping's default, or Settle itself."""
    if txn.decided_by:
        return txn.decided_by
    if txn.provider_code is None:
        # The provider's words column already holds Settle's reason.
        return "Settle (no answer to read)" if txn.reason else "—"
    return "not kept (answered before Settle kept the rule)"


HELD_GUIDANCE = (
    "The gateway holds money for this charge that Settle has not booked (see why): the invoice is"
    " locked so that no run charges it again. Check the gateway status, then book it as a manual"
    " payment if the invoice still owes it, or Attempt Refund & Unlock to give it back."
)


BOOKED_GUIDANCE = (
    "Settle booked a payment for this charge that the gateway does not hold as booked, or that"
    " the invoice no longer needed (see why): the invoice is locked so that nobody takes it as"
    " paid and no run charges it. Check the gateway status, then Correct the booking to what the"
    " gateway holds (the invoice owes the rest again), or Attempt Refund & Unlock to give the"
    " money back (its payment is reversed)."
)


def guidance_for(txn: PaymentTransaction) -> str | None:
    """What to do now: for a request that never left, that; else the code's own guidance from its
    mapping entry, kept with the answer; else the status's, from the policy table."""
    if txn.never_sent:
        return NOT_SENT_GUIDANCE
    strict = settings.strict_mode()
    if txn.needs_finalization and not policy_for(txn.gateway_status, strict=strict).locks_invoice:
        # Held by the lifecycle (the gateway took money this status says did not move, or holds
        # it twice, or holds other than Settle booked): the code's own word would mislead.
        return BOOKED_GUIDANCE if txn.payment is not None else HELD_GUIDANCE
    if txn.guidance:
        return txn.guidance
    policy = POLICY.get(txn.gateway_status)
    return policy.guidance if policy else None


def review_of(txn: PaymentTransaction) -> dict:
    invoice = txn.invoice
    related = db.session.scalars(
        select(PaymentTransaction)
        .where(PaymentTransaction.invoice_id == invoice.id)
        .order_by(PaymentTransaction.id)
    ).all()
    raw = json.dumps({"request": txn.raw_request, "response": txn.raw_response}, indent=1)
    if len(raw) > RAW_LIMIT:
        raw = (
            raw[:RAW_LIMIT]
            + f"\n… ({len(raw) - RAW_LIMIT} more characters on the transaction page)"
        )
    shown = _newest(related, ATTEMPTS_SHOWN, keep=txn)
    events = audit.timeline(txn, invoice)
    return {
        "txn": txn,
        "invoice": invoice,
        "attempts": [Attempt(t, decided_by(t)) for t in shown],
        "earlier_attempts": len(related) - len(shown),
        "guidance": guidance_for(txn),
        "events": events[-EVENTS_SHOWN:],
        "earlier_events": max(0, len(events) - EVENTS_SHOWN),
        "raw": raw,
        "printed_at": clock.now(),
    }


def _newest(txns: list[PaymentTransaction], limit: int, keep: PaymentTransaction) -> list:
    """The newest `limit` calls, oldest first, always with the reviewed one among them."""
    shown = txns[-limit:]
    if keep not in shown:
        shown = [keep, *shown[1:]]
    return shown
