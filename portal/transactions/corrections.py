"""Correct the booking: a clerk sets the payment Settle booked for a charge to what the gateway
holds of it, after a reconciliation found it holding less (refunded in part outside Settle,
captured for less) or nothing. The rest of the payment is reversed by a movement of its own, the
invoice owes it again, and the next run charges it; nothing is deleted or edited in place."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from portal import clock
from portal.errors import DomainError
from portal.extensions import db
from portal.money import Money
from portal.transactions import effects, lookups
from portal.transactions.finalize import _note, locked_for_finalizing
from portal.transactions.lifecycle import Event
from portal.transactions.models import REFUND_AND_UNLOCK, Finalization, PaymentTransaction

MIN_REASON = 10


@dataclass(frozen=True)
class Held:
    """What the gateway holds of the charge by its latest check since the difference was found,
    for the form (held None: not asked since, it did not say, or it holds it in another
    currency, which `other_currency` names)."""

    booked: Money
    held: Money | None
    lookup: PaymentTransaction | None
    other_currency: str | None = None


def held_now(charge: PaymentTransaction) -> Held:
    payment = effects.booked_payment(charge)
    booked = payment.net if payment is not None else Money(Decimal(0), charge.currency)
    # Only a check made since the difference was found (its invoice locked) counts.
    check = lookups.held_by_check(charge, since=charge.invoice.locked_at)
    return Held(booked, check.held, check.lookup, check.other_currency)


def correct_booking(
    txn_id: int, *, held: Decimal, currency: str, reason: str, actor, note: str | None = None
) -> Money:
    """Set the charge's booked payment to `held` (what the gateway holds of it), reverse the rest,
    finalize the charge, and unlock the invoice where no other charge of it is open; all or
    nothing. Returns what was reversed."""
    charge, invoice = locked_for_finalizing(txn_id, actor, Event.CORRECT_BOOKING)
    payment = effects.booked_payment(charge)
    if payment.unallocated.is_positive():
        raise DomainError(
            f"{payment.unallocated} of payment #{payment.id} pays no invoice: the customer's money"
            f" is held twice. Give this charge back with {REFUND_AND_UNLOCK}"
        )
    if currency != payment.currency:
        raise DomainError(
            f"The payment is in {payment.currency}: a gateway holding it in {currency} is a"
            f" different charge; use {REFUND_AND_UNLOCK} to give it back"
        )
    if held < 0:
        raise DomainError("What the gateway holds cannot be less than zero")
    if held > payment.net.amount:
        raise DomainError(
            f"{Money(held, currency)} is more than the {payment.net} Settle booked: the gateway"
            f" holds more than the invoice was paid. Give it back with {REFUND_AND_UNLOCK}; the"
            " next run then charges what the invoice owes"
        )
    now = held_now(charge)
    if now.other_currency is not None:
        raise DomainError(
            f"The gateway holds this charge in {now.other_currency}, not {payment.currency}: a"
            f" booking cannot be corrected across currencies; use {REFUND_AND_UNLOCK}"
        )
    if now.held is None and lookups.lookup_is_read_only(charge):
        # The amount comes from the gateway, not from memory: a guess of "nothing" would reopen
        # the invoice for money the customer paid, and the next run would charge it again.
        raise DomainError(
            "Check gateway status first: the booking is corrected to what the gateway says it"
            " holds since the difference was found"
        )
    if now.held is not None and now.held != Money(held, currency):
        # What the gateway said since the difference was found is the amount; a typing error
        # here would reopen the invoice for money the customer paid, and the next run would
        # charge it again.
        raise DomainError(
            f"The gateway's check of {clock.shown(now.lookup.answered_at)} says it holds"
            f" {now.held}: correct the booking to that, or Check gateway status again"
        )
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise DomainError(
            "Write why the booking changes, as you found it at the gateway (at least"
            f" {MIN_REASON} characters)"
        )
    reversed_ = payment.net - Money(held, currency)
    effects.reverse_booking(
        charge, actor, f"Booking corrected to {Money(held, currency)} held at the gateway: {reason}",
        keep=Money(held, currency),
    )  # fmt: skip
    # This charge only: another open charge of the invoice (booked, or of unknown outcome) keeps
    # it locked until a clerk finalizes that one too.
    effects.finalize_charge(
        charge, actor, Finalization.BOOKING_CORRECTED, note=_note(note, reason),
        held=str(held), reversed=str(reversed_.amount),
    )  # fmt: skip
    if not effects.open_charges(invoice.id):
        effects.unlock(invoice, actor, Finalization.BOOKING_CORRECTED.value)
    db.session.commit()
    return reversed_
