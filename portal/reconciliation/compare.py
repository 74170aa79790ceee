"""Comparing Settle's charges with what the gateway holds: plain Python, no database, no HTTP.

Each side is reduced to what it says about the customer's money (held, given back, never moved,
not known), then paired: by the gateway's reference where Settle has one, else by Settle's
idempotency key where the gateway reports it, else (a provider whose lists carry no key, for a
charge that got no reference) by invoice number and amount. What is left over on either side is
its own line.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from portal.gateways.base import Finding, Settlement
from portal.money import Money


class View(enum.StrEnum):
    """What one side says about the charge's money."""

    HELD = "holds the money"
    RETURNED = "gave the money back"
    NONE = "no money moved"
    UNKNOWN = "does not know yet"
    IN_FLIGHT = "still asking the gateway"


class Kind(enum.StrEnum):
    MATCHED = "Matched"
    GATEWAY_ONLY = "At the gateway, unknown to Settle"
    SETTLE_ONLY = "In Settle, not at the gateway"
    AMOUNT = "Amount or currency differs"
    STATUS = "Status differs"

    @property
    def slug(self) -> str:
        return self.name.lower()

    @classmethod
    def from_slug(cls, slug: str) -> Kind | None:
        return next((k for k in cls if k.slug == slug), None)


@dataclass(frozen=True)
class SettleCharge:
    """One of Settle's charges, as reconciliation needs it."""

    transaction_id: int
    gateway_id: int
    invoice_id: int
    order_id: str
    key: str
    reference: str | None
    money: Money
    status: str
    view: View
    # What the charge was sent with in the provider's order field, where that is not the invoice
    # number (Authorize.Net's per-charge reference): what a keyless listing shows of it.
    order_reference: str | None = None
    # What Settle books of it after its booking was corrected (part or all of its payment
    # reversed without a refund of Settle's); None: never corrected.
    booked: Money | None = None

    @property
    def sent_as(self) -> str:
        return self.order_reference or self.order_id


@dataclass(frozen=True)
class Line:
    kind: Kind
    advice: str
    charge: SettleCharge | None = None
    finding: Finding | None = None


def gateway_view(finding: Finding) -> View:
    if finding.state.holds_money:
        return View.HELD
    if finding.state in (Settlement.REFUNDED, Settlement.VOIDED):
        return View.RETURNED
    return View.NONE


# What to do, for each (Settle's view, the gateway's view) that differ.
_STATUS_ADVICE = {
    (View.NONE, View.HELD): (
        "Settle says {status}, but the gateway captured the money: the customer paid. Open the"
        " transaction, check the gateway status, and record a manual payment for the settled"
        " amount, or refund it at the gateway."
    ),
    (View.UNKNOWN, View.HELD): (
        "Settle does not know the outcome ({status}); the gateway holds the money. Finalize it:"
        " a manual payment pre-filled with the settled amount, or Attempt Refund & Unlock."
    ),
    (View.UNKNOWN, View.NONE): (
        "Settle does not know the outcome ({status}); the gateway holds no money for it. Attempt"
        " Refund & Unlock: it finds nothing to undo and unlocks the invoice."
    ),
    (View.UNKNOWN, View.RETURNED): (
        "Settle does not know the outcome ({status}); the gateway has already given the money"
        " back. Attempt Refund & Unlock: it finds nothing to undo and unlocks the invoice."
    ),
    (View.HELD, View.NONE): (
        "Settle booked a payment the gateway declined: check the gateway status on the"
        " transaction, then Correct the booking there (the invoice is owed again), and find out"
        " why the answers differ."
    ),
    (View.HELD, View.RETURNED): (
        "The gateway refunded or voided a charge that Settle books as paid (done outside Settle):"
        " check the gateway status on the transaction, then Correct the booking there so that the"
        " invoice is owed again."
    ),
    (View.RETURNED, View.HELD): (
        "Settle recorded a refund that the gateway does not show: the customer's money is still"
        " held. Open the refund's transaction, check the gateway status, and refund again there."
    ),
}

_MISSING_ADVICE = {
    View.HELD: (
        "Settle booked a payment for money the gateway does not hold. Check the gateway status"
        " on the transaction before the customer is told the invoice is paid; if the charge is"
        " truly not there, Correct the booking there so that the invoice is owed again."
    ),
    View.RETURNED: (
        "Settle recorded a refund or void of a charge the gateway does not list. Check the"
        " gateway status on the transaction; nothing is owed if the charge never existed."
    ),
    View.UNKNOWN: (
        "Settle does not know the outcome ({status}) and the gateway holds nothing for it."
        " Attempt Refund & Unlock: it finds nothing to undo and unlocks the invoice."
    ),
}

_MATCHED_ADVICE = {
    View.HELD: "Nothing to do: both hold the payment.",
    View.RETURNED: "Nothing to do: both show the money given back.",
    View.NONE: "Nothing to do: no money moved on either side.",
}

GATEWAY_ONLY_ADVICE = (
    "A charge Settle never sent (made at the gateway's own terminal or by another system). Find"
    " out who made it; refund it at the gateway if it is not owed, or record it as a manual"
    " payment on its invoice if it is."
)
GATEWAY_ONLY_NO_MONEY = (
    "An attempt Settle never sent; the gateway holds no money for it. Nothing to do, but find"
    " out who is charging through this account."
)


def _amount_advice(charge: SettleCharge, finding: Finding) -> str:
    return (
        f"Settle charged {charge.money}, the gateway holds {finding.held or finding.amount}."
        " Check the charge at"
        " the gateway; refund the difference there or ask the customer for the shortfall, and"
        " note on the invoice what was done."
    )


def _partly_refunded_advice(charge: SettleCharge, finding: Finding) -> str:
    return (
        f"Partly refunded at the gateway, {finding.refunded} of {finding.amount}: it holds"
        f" {finding.held}, while Settle books {charge.money} as paid. Check the gateway status on"
        " the transaction and Correct the booking to what it holds, so that the invoice is owed"
        " the refunded part again; find out who refunded it and why."
    )


def _corrected_advice(charge: SettleCharge, finding: Finding) -> str:
    return (
        f"Settle's booking of this charge was corrected to {charge.booked}, but the gateway holds"
        f" {finding.held}. Check the charge at the gateway, and correct the booking again."
    )


def compare(
    charges: Iterable[SettleCharge],
    findings: Iterable[Finding],
    since: datetime,
    until: datetime,
    known_elsewhere: Callable[[list[Finding]], set[int]] = lambda found: set(),
) -> list[Line]:
    """The report's lines for one gateway.

    `findings` may reach a little past [since, until) on both sides (clocks differ): a finding
    that pairs with none of `charges` counts only if it was made inside the period and
    `known_elsewhere` (given the leftovers, answering the indexes of those Settle knows from
    another run or day) does not claim it.
    """
    pool = list(findings)
    by_reference: dict[str, int] = {}
    by_key: dict[str, int] = {}
    keyless: dict[tuple[str, Money | None], list[int]] = {}
    for i, f in enumerate(pool):
        if f.reference:
            by_reference.setdefault(f.reference, i)
        if f.key:
            by_key.setdefault(f.key, i)
        elif f.order_id:
            keyless.setdefault((f.order_id, f.amount), []).append(i)
    charges = list(charges)
    claimed = {c.reference for c in charges if c.reference}  # kept for the charge that names it
    taken: set[int] = set()
    lines: list[Line] = []
    for charge in charges:
        if charge.view is View.IN_FLIGHT:
            continue
        index = by_reference.get(charge.reference) if charge.reference else None
        if index is None or index in taken:
            index = by_key.get(charge.key)
        if (index is None or index in taken) and not charge.reference:
            index = next((i for i in keyless.get((charge.sent_as, charge.money), ())
                          if i not in taken and pool[i].reference not in claimed), None)  # fmt: skip
        if index is None or index in taken:
            lines.append(_missing(charge))
            continue
        taken.add(index)
        lines.append(_paired(charge, pool[index]))
    leftovers = [
        i for i in range(len(pool))
        if i not in taken and pool[i].at is not None and since <= pool[i].at < until
    ]  # fmt: skip
    elsewhere = known_elsewhere([pool[i] for i in leftovers])
    for n, i in enumerate(leftovers):
        if n in elsewhere:
            continue
        f = pool[i]
        advice = GATEWAY_ONLY_ADVICE if gateway_view(f) is View.HELD else GATEWAY_ONLY_NO_MONEY
        lines.append(Line(Kind.GATEWAY_ONLY, advice, finding=f))
    return lines


def _missing(charge: SettleCharge) -> Line:
    if charge.view is View.NONE:
        return Line(Kind.MATCHED, _MATCHED_ADVICE[View.NONE], charge=charge)
    advice = _MISSING_ADVICE[charge.view].format(status=charge.status)
    return Line(Kind.SETTLE_ONLY, advice, charge=charge)


def _paired(charge: SettleCharge, finding: Finding) -> Line:
    mine, theirs = charge.view, gateway_view(finding)
    if theirs is View.HELD and mine is View.HELD:
        # What Settle books of it (its booking corrected, or all it charged) against what the
        # gateway still holds of it (less what it refunded).
        booked = charge.booked if charge.booked is not None else charge.money
        held = finding.held
        if held is None or held == booked:
            return Line(Kind.MATCHED, _MATCHED_ADVICE[View.HELD], charge, finding)
        if charge.booked is not None:
            advice = _corrected_advice(charge, finding)
        elif finding.partly_refunded and finding.amount == charge.money:
            advice = _partly_refunded_advice(charge, finding)
        else:
            advice = _amount_advice(charge, finding)
        return Line(Kind.AMOUNT, advice, charge, finding)
    # Only money held is compared: a list may show a declined or refunded one as 0.00.
    if theirs is View.HELD and finding.amount is not None and finding.amount != charge.money:
        return Line(Kind.AMOUNT, _amount_advice(charge, finding), charge, finding)
    if mine is theirs or {mine, theirs} == {View.NONE, View.RETURNED}:
        return Line(Kind.MATCHED, _MATCHED_ADVICE[theirs], charge, finding)
    advice = _STATUS_ADVICE[(mine, theirs)].format(status=charge.status)
    return Line(Kind.STATUS, advice, charge, finding)
