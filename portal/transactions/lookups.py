"""Asking the gateway what it holds: a clerk's check, recovery's and the janitor's lookups, and
the invoice-wide lookup that finds charges Settle never sent. Each is a recorded transaction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from portal.audit import service as audit
from portal.extensions import db
from portal.gateways import registry
from portal.gateways.base import GatewayResult, Settlement
from portal.money import Money
from portal.statuses import GatewayStatus
from portal.transactions import calls
from portal.transactions.models import Operation, PaymentTransaction

UNDOES = (Operation.VOID.value, Operation.REFUND.value)
FOLLOW_UPS = (Operation.LOOKUP.value, *UNDOES)


def lookup_is_read_only(charge: PaymentTransaction) -> bool:
    return not registry.plugin_class(charge.gateway.plugin).lookup_moves_money


def lookup_charge(charge: PaymentTransaction, actor) -> tuple[PaymentTransaction, GatewayResult]:
    def audited(lookup: PaymentTransaction, result: GatewayResult) -> None:
        audit.record(
            "transaction.looked_up", charge, actor=actor,
            after={"lookup_id": lookup.id, "gateway_state": lookup.gateway_state or "no answer"},
        )  # fmt: skip

    return _look_up(charge, actor, audited, of_the_charge=True)


# How long before its own recording a transaction the gateway lists may still be the charge (the
# gateway's clock and Settle's differ a little); anything older was made before it.
CLOCK_SLACK = timedelta(minutes=5)


def only_its_own(charge: PaymentTransaction, result: GatewayResult) -> GatewayResult:
    """What a lookup of a charge found, kept to what is the charge's own. A gateway that cannot
    look a charge up by Settle's key or its own reference searches by the merchant's order field
    (Authorize.Net's unsettled list, by an invoice number it keeps to 20 characters): what that
    finds may be another charge of the invoice, or another invoice's. A finding that another of
    Settle's charges owns (its reference) or that names another key is set aside, never voided,
    refunded or booked for this one; a finding that neither a reference nor a key ties to the
    charge must have its amount and be no older than it, or the lookup cannot tell."""
    if result.status is not GatewayStatus.SUCCESS or not result.findings:
        return result
    refs = {f.reference for f in result.findings if f.reference} - {charge.provider_reference}
    owners = dict(
        db.session.execute(
            select(PaymentTransaction.provider_reference, PaymentTransaction.id).where(
                PaymentTransaction.provider_reference.in_(refs),
                PaymentTransaction.operation == Operation.CHARGE.value,
                PaymentTransaction.id != charge.id,
            )
        ).all()
    ) if refs else {}  # fmt: skip
    kept, aside = [], []
    for finding in result.findings:
        owner = owners.get(finding.reference)
        if owner is not None:
            aside.append(f"{finding.reference} (transaction #{owner})")
        elif finding.key and finding.key != charge.idempotency_key:
            aside.append(f"{finding.reference} (another request's key)")
        else:
            kept.append(finding)
    note = f"; set aside, as other charges': {', '.join(aside)}" if aside else ""
    unproven = [
        f
        for f in kept
        if charge.provider_reference is None
        and f.reference != charge.provider_reference
        and not f.key
        and (
            (f.amount is not None and f.amount != charge.money)
            or (f.at is not None and f.at < charge.requested_at - CLOCK_SLACK)
        )
    ]
    if unproven:
        found = ", ".join(f"{f.reference} ({f.amount})" for f in unproven)
        reason = (
            f"The gateway holds {found} under this charge's order number, which neither its amount"
            f" ({charge.money}) nor its time proves to be this charge: a person must look"
        )
        return replace(
            result, status=GatewayStatus.INDETERMINATE, message=reason + note, reason=reason
        )
    if not aside:
        return result
    return replace(
        result,
        findings=tuple(kept),
        reference=kept[0].reference if kept else None,
        message=result.message + note,
    )


def _look_up(
    charge: PaymentTransaction, actor, then: calls.Then, *, of_the_charge: bool
) -> tuple[PaymentTransaction, GatewayResult]:
    """A recorded lookup at the charge's gateway: of the charge itself (by its key), or of
    everything the gateway holds for its invoice; `then` audits it with its answer."""
    return calls.make_recorded_call(
        then,
        vet=(lambda result: only_its_own(charge, result)) if of_the_charge else None,
        operation=Operation.LOOKUP,
        invoice=charge.invoice,
        gateway=charge.gateway,
        amount=charge.amount,
        currency=charge.currency,
        parent=charge if of_the_charge else None,
        actor=actor,
    )


def latest_lookup(charge: PaymentTransaction) -> PaymentTransaction | None:
    return latest_lookups([charge.id]).get(charge.id)


@dataclass(frozen=True)
class HeldByCheck:
    """What the gateway holds of a charge by its latest check (`held` None: not asked since
    `since`, the check did not answer, it did not tell how much, or it holds it in
    `other_currency`)."""

    held: Money | None
    lookup: PaymentTransaction | None
    other_currency: str | None = None


def held_by_check(charge: PaymentTransaction, since=None) -> HeldByCheck:
    """The money the charge's latest successful check found held (less what was refunded)."""
    lookup = latest_lookup(charge)
    if (
        lookup is None
        or lookup.status != GatewayStatus.SUCCESS
        or (since is not None and lookup.answered_at < since)
    ):
        return HeldByCheck(None, lookup)
    held = Money(Decimal(0), charge.currency)
    for f in lookup.findings or []:
        if not Settlement(f["state"]).holds_money:
            continue
        if f["amount"] is None:
            return HeldByCheck(None, lookup)  # it holds money, how much it did not tell
        currency = f["currency"] or charge.currency
        if currency != charge.currency:
            return HeldByCheck(None, lookup, other_currency=currency)
        held = held + Money(Decimal(f["amount"]) - Decimal(f.get("refunded") or 0), currency)
    return HeldByCheck(held, lookup)


def latest_lookups(charge_ids) -> dict[int, PaymentTransaction]:
    """Each charge's latest lookup, for many charges in one query (a charge without one is left
    out)."""
    latest: dict[int, PaymentTransaction] = {}
    ids = list(charge_ids)
    if not ids:
        return latest
    t = PaymentTransaction
    for lookup in db.session.scalars(
        select(t).where(t.parent_id.in_(ids), t.operation == Operation.LOOKUP.value)
    ):
        if lookup.parent_id not in latest or lookup.id > latest[lookup.parent_id].id:
            latest[lookup.parent_id] = lookup
    return latest


def latest_word(charge: PaymentTransaction) -> PaymentTransaction | None:
    """The latest call about a charge: its lookup, void or refund."""
    return db.session.scalars(
        select(PaymentTransaction)
        .where(
            PaymentTransaction.parent_id == charge.id,
            PaymentTransaction.operation.in_(FOLLOW_UPS),
        )
        .order_by(PaymentTransaction.id.desc())
        .limit(1)
    ).first()


def is_undo(txn: PaymentTransaction) -> bool:
    """A void or refund of a charge, or a lookup that reverses it (Payeezy's, Adyen's)."""
    return txn.parent_id is not None and (
        txn.operation in UNDOES
        or (txn.operation == Operation.LOOKUP and not lookup_is_read_only(txn))
    )


# What a charge's latest word from its gateway may say for it to count as given back: a void or
# refund that went through, or a lookup (or reversal) that found it so, or found no money held.
GIVEN_BACK = ("voided", "refunded", "declined", "not found")


def given_back(word: PaymentTransaction) -> bool:
    """Whether a charge's latest word says its money is back with the customer (or never left)."""
    if word.gateway_status is not GatewayStatus.SUCCESS:
        return False
    return word.operation != Operation.LOOKUP or word.gateway_state in GIVEN_BACK


def state_now(charge: PaymentTransaction) -> tuple[str, PaymentTransaction] | None:
    """What the gateway holds for the charge after the last call about it: a void or refund that
    went through says voided or refunded, later than the lookup that found it unsettled."""
    last = db.session.scalars(
        select(PaymentTransaction)
        .where(
            PaymentTransaction.parent_id == charge.id,
            PaymentTransaction.status == GatewayStatus.SUCCESS.value,
        )
        .order_by(PaymentTransaction.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return None
    if last.operation == Operation.VOID.value:
        return "voided", last
    if last.operation == Operation.REFUND.value:
        return "refunded", last
    return last.gateway_state, last


def find_unexplained(charges: list[PaymentTransaction], actor) -> tuple[list[str], list[str]]:
    """Money a gateway holds for the invoice that Settle never sent (a charge made in the
    provider's portal, say). Unlocking would let the next run charge the customer again, so the
    invoice stays locked until a person has dealt with it. Asks each gateway of the invoice's
    open charges once. Returns (actions, problems)."""
    actions: list[str] = []
    problems: list[str] = []
    by_gateway = {c.gateway_id: c for c in charges}
    for charge in by_gateway.values():
        listing = registry.plugin_class(charge.gateway.plugin).invoice_listing
        if listing is None:
            actions.append(
                f"{charge.gateway.name} cannot list what it holds for an invoice: only the "
                "charges Settle sent were checked"
            )
            continue
        found_actions, found_problems = _list_invoice(charge, listing, actor)
        actions += found_actions
        problems += found_problems
    return actions, problems


def _list_invoice(charge: PaymentTransaction, listing: str, actor) -> tuple[list[str], list[str]]:
    def audited(lookup: PaymentTransaction, result: GatewayResult) -> None:
        found = len(result.findings) if result.status is GatewayStatus.SUCCESS else "no answer"
        audit.record(
            "invoice.looked_up", lookup.invoice, actor=actor,
            after={"lookup_id": lookup.id, "findings": found},
        )  # fmt: skip

    lookup, result = _look_up(charge, actor, audited, of_the_charge=False)
    where = f"Invoice {lookup.invoice.number} at {charge.gateway.name}"
    if result.status is not GatewayStatus.SUCCESS:
        return [], [f"{where}: the gateway could not list what it holds ({result.message})"]
    # What Settle sent, by the provider's reference: this invoice's charges, and the voids and
    # refunds of them (a charge that timed out learns its reference from its own lookup, and its
    # void carries it), and another invoice's whose number the gateway cannot tell from this one
    # (Authorize.Net keeps 20 characters of it). Lookup rows do not count: they only repeat what
    # the gateway said.
    listed = {f.reference for f in result.findings if f.reference}
    known = set(
        db.session.scalars(
            select(PaymentTransaction.provider_reference).where(
                PaymentTransaction.provider_reference.in_(listed),
                PaymentTransaction.operation != Operation.LOOKUP.value,
            )
        )
    ) if listed else set()  # fmt: skip
    problems = [
        f"{where}: the gateway also holds a {finding.state} charge of "
        f"{finding.amount or 'an unknown amount'} ({finding.reference}) that Settle did not send. "
        "Unlocking would let the next run charge again: refund it in the provider's portal, or "
        "ask a supervisor, then try again."
        for finding in result.findings
        if finding.state.holds_money and finding.reference not in known
    ]
    if problems:
        return [], problems
    return [f"{where}: the gateway lists no other {listing} for it"], []


def latest_answers(
    invoices,
) -> dict[int, tuple[PaymentTransaction | None, PaymentTransaction | None]]:
    """For each locked invoice: its open charge, and the latest lookup of it (the janitor's, a
    clerk's or recovery's), so that lists show the gateway's answer beside the invoice. Two
    queries for the whole page, whatever its length."""
    t = PaymentTransaction
    charges: dict[int, PaymentTransaction] = {}
    ids = [invoice.id for invoice in invoices]
    if ids:
        for charge in db.session.scalars(
            select(t).where(
                t.invoice_id.in_(ids), t.locked_invoice.is_(True), t.finalized_at.is_(None)
            )
        ):
            if charge.invoice_id not in charges or charge.id > charges[charge.invoice_id].id:
                charges[charge.invoice_id] = charge
    lookups = latest_lookups(c.id for c in charges.values())
    answers = {}
    for invoice in invoices:
        charge = charges.get(invoice.id)
        answers[invoice.id] = (charge, lookups.get(charge.id) if charge else None)
    return answers
