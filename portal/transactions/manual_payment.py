"""The guided manual payment (seed 000): the payment a clerk records when the charge settled at
the gateway, and the rules that keep it from making the customer pay twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask import current_app

from portal import clock
from portal.errors import DomainError
from portal.extensions import db
from portal.money import Money
from portal.payments import service as payments
from portal.payments.models import PaymentMethodKind
from portal.statuses import GatewayStatus
from portal.transactions import effects, lookups
from portal.transactions.effects import open_charges
from portal.transactions.finalize import _note, locked_for_finalizing
from portal.transactions.lifecycle import Event
from portal.transactions.models import REFUND_AND_UNLOCK, Finalization, PaymentTransaction


def holds_nothing(charge: PaymentTransaction) -> bool:
    """Known to hold no money at the gateway: never sent, or its latest lookup found none."""
    if charge.never_sent:
        return True
    held = lookups.held_by_check(charge).held
    return held is not None and not held.is_positive()


def unaccounted_charges(invoice_id: int, paid_charge_id: int) -> list[str]:
    """Why a manual payment for one charge cannot unlock the invoice: each other open charge that
    may hold the customer's money at the gateway. Unlocking would let the next run charge again."""
    problems = []
    for other in open_charges(invoice_id):
        if other.id == paid_charge_id:
            continue
        booked = effects.booked_payment(other)
        if booked is not None:
            # Finalized with this one, its payment would stay booked as it is: settle it first.
            problems.append(
                f"Charge #{other.id} of this invoice has payment #{booked.id} of {booked.net}"
                " booked and is open: correct its booking, or Attempt Refund & Unlock, first."
            )
            continue
        if holds_nothing(other):
            continue
        lookup = lookups.latest_lookup(other)
        said = (
            f"the gateway holds it {lookup.gateway_state}"
            if lookup is not None and lookup.status == GatewayStatus.SUCCESS
            else "the gateway has not said what became of it"
        )
        problems.append(
            f"Charge #{other.id} of this invoice ({other.status}, {other.money}) is not accounted "
            f"for: {said}. Finalize it first (Check gateway status, or {REFUND_AND_UNLOCK})."
        )
    return problems


@dataclass(frozen=True)
class PaymentBasis:
    """What a manual payment for a charge is expected to be: the settled charge as the gateway
    reports it, else Settle's own record of the charge."""

    amount: Money
    reference: str | None
    from_gateway: bool
    lookup: PaymentTransaction | None

    def differs_from(self, charge: PaymentTransaction) -> bool:
        """The gateway settled another amount than Settle's record of the charge."""
        return self.from_gateway and self.amount != charge.money


def payment_basis(charge: PaymentTransaction) -> PaymentBasis:
    lookup = lookups.latest_lookup(charge)
    settled = lookup.settled_finding() if lookup else None
    if settled is not None and settled["amount"] is not None:
        amount = Money(Decimal(settled["amount"]), settled["currency"] or charge.currency)
        return PaymentBasis(amount, settled["reference"], True, lookup)
    return PaymentBasis(charge.money, charge.provider_reference, False, lookup)


# A reason for a manual payment that differs from the expected amount: a sentence, not a mark.
MIN_REASON = 10


def _books_what_the_gateway_holds(
    charge: PaymentTransaction, amount: Money, method: PaymentMethodKind
) -> None:
    """Where the gateway holds money of the charge, the payment is that money, all of it: less
    would unlock the invoice for the rest while the gateway holds it (the next run would charge
    the customer again), and a check or wire beside it is the customer's money held twice.
    Less than the charge without the gateway's word on what it holds needs a check first, where
    the gateway can be asked."""
    check = lookups.held_by_check(charge)
    if check.held is not None and check.held.is_positive():
        if method is not PaymentMethodKind.GATEWAY or amount != check.held:
            raise DomainError(
                f"The gateway holds {check.held} of this charge (checked"
                f" {clock.shown(check.lookup.answered_at)}): record exactly that, received by"
                f" {PaymentMethodKind.GATEWAY.value}, or give it back with {REFUND_AND_UNLOCK}"
                " and record what the customer paid otherwise"
            )
        return
    if check.held is None:  # not checked, no answer, or an answer that tells no amount
        short = amount.amount < charge.amount
        if short and method is PaymentMethodKind.GATEWAY and lookups.lookup_is_read_only(charge):
            raise DomainError(
                f"{amount} is less than the charge's {charge.money}: Check gateway status first,"
                " so that the payment is what the gateway holds"
            )


def record_manual_payment(
    txn_id: int,
    *,
    amount: Decimal,
    currency: str,
    method: PaymentMethodKind,
    reference: str | None,
    received_on: date | None,
    actor,
    difference_reason: str | None = None,
    note: str | None = None,
) -> PaymentTransaction:
    """The clerk's confirmed manual payment: create, allocate, finalize, unlock; all or nothing.

    An amount other than the expected one (the gateway's settled amount, else Settle's record)
    needs a written reason: a partial payment recorded by mistake would unlock the invoice for
    the rest, and the next run would charge the customer a second time."""
    charge, invoice = locked_for_finalizing(txn_id, actor, Event.MANUAL_PAYMENT)
    if currency != invoice.currency:
        raise DomainError(f"Invoice {invoice.number} is in {invoice.currency}, not {currency}")
    if amount <= 0:
        raise DomainError("The amount must be more than zero")
    if amount > invoice.balance:
        raise DomainError(
            f"{amount} {currency} is more than the invoice's balance of {invoice.balance_money}"
        )
    if received_on is not None and received_on > clock.today_in(
        current_app.config["SETTLE_TIMEZONE"]
    ):
        raise DomainError("The received-on date cannot be in the future")
    _books_what_the_gateway_holds(charge, Money(amount, currency), method)
    basis = payment_basis(charge)
    reason = (difference_reason or "").strip() or None
    if basis.amount != Money(amount, currency) and (reason is None or len(reason) < MIN_REASON):
        source = "the gateway settled" if basis.from_gateway else "Settle charged"
        raise DomainError(
            f"{Money(amount, currency)} is not the {basis.amount} that {source} for this charge. "
            "To record it anyway, confirm that the amount differs and write why (at least "
            f"{MIN_REASON} characters)"
        )
    blockers = unaccounted_charges(invoice.id, charge.id)
    if blockers:
        raise DomainError(" ".join(blockers) + f" Invoice {invoice.number} stays locked.")
    effects.unlock(invoice, actor, Finalization.MANUAL_PAYMENT.value)
    payment = payments.create_payment(
        account_id=invoice.account_id,
        amount=amount,
        currency=currency,
        method=method,
        reference=reference,
        received_on=received_on,
        transaction_id=charge.id,
        actor=actor,
    )
    payments.allocate(payment, invoice, amount, actor=actor)
    db.session.flush()  # the payment's id, for the charges it finalizes
    effects.finalize_open_charges(
        invoice.id, actor, Finalization.MANUAL_PAYMENT, payment_id=payment.id,
        note=_note(note, reason and f"Amount differs from {basis.amount}: {reason}"),
    )  # fmt: skip
    db.session.commit()
    return charge
