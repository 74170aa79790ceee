"""Finalization (seed 000): ask the gateway, Attempt Refund & Unlock Invoice, or a manual payment."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select, update

from portal import clock
from portal.audit import service as audit
from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.gateways import registry
from portal.gateways.base import GatewayResult, Settlement
from portal.invoices import service as invoices
from portal.invoices.models import Invoice
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.transactions import calls, effects, lifecycle, lookups
from portal.transactions.effects import open_charges
from portal.transactions.models import (
    CORRECT_BOOKING,
    MANUAL_PAYMENT,
    REFUND_AND_UNLOCK,
    UNLOCK_UNSENT,
    Finalization,
    Operation,
    PaymentTransaction,
)


@dataclass
class RefundOutcome:
    unlocked: bool
    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _id(actor) -> int | None:
    """A clerk's id; None when Settle itself acts (autovoid), which the audit shows as the system."""
    return getattr(actor, "id", None)


def _charge(txn_id: int) -> PaymentTransaction:
    txn = db.session.get(PaymentTransaction, txn_id, populate_existing=True)
    if txn is None:
        raise DomainError(f"Transaction {txn_id} does not exist")
    if txn.operation != Operation.CHARGE:
        raise NotAllowed("Only a charge can be finalized")
    return txn


def ensure_finalizable(
    txn: PaymentTransaction, event: lifecycle.Event = lifecycle.Event.REFUND_AND_UNLOCK
) -> None:
    """Refuse, with the reason a clerk needs, a finalization that is not (or no longer) possible."""
    # Both read now, the invoice first: SQLite reads each in its own snapshot, and another
    # clerk's unlock and finalization commit together, so an invoice seen unlocked is then seen
    # with that clerk's finalization, and the refusal says who did it and when.
    db.session.refresh(txn.invoice)
    db.session.refresh(txn)
    decision = lifecycle.decide(effects.state_of(txn), event)
    if decision.action is lifecycle.Action.FINALIZE:
        return
    if txn.finalized_at is not None:
        who = txn.finalized_by or "Settle"
        raise NotAllowed(
            f"Already done by {who} at {clock.shown(txn.finalized_at)} ({txn.finalization})"
        )
    if decision.note == lifecycle.INVOICE_UNLOCKED:
        raise NotAllowed(f"Invoice {txn.invoice.number} is not locked any more")
    raise NotAllowed(decision.note)


def check_gateway_status(txn_id: int, actor) -> tuple[PaymentTransaction, GatewayResult]:
    """Check gateway status: a recorded lookup of the charge by its idempotency key."""
    charge = _charge(txn_id)
    if not lookups.lookup_is_read_only(charge):
        raise NotAllowed(
            f"{charge.gateway.name} cannot be asked without reversing an unsettled charge: use "
            f"{REFUND_AND_UNLOCK}, or search the provider's portal for invoice {charge.invoice.number}"
        )
    return lookups.lookup_charge(charge, actor)


def recommendation(charge: PaymentTransaction, lookup: PaymentTransaction | None) -> str | None:
    """The seed's rule: settled at the gateway -> manual payment; otherwise refund and unlock.
    Settle's own addition: when no open charge of the invoice ever reached the gateway, there is
    nothing to ask or undo there, so the invoice is simply unlocked."""
    if charge.finalized_at is not None or charge.invoice.corrective_action != ACTION_REQUIRED:
        return None
    latest = lookups.latest_word(charge)
    if latest is not None and latest.awaiting_gateway:
        return None  # asked already: the gateway's confirmation finishes it
    payment = effects.booked_payment(charge)
    if payment is not None:
        # Settle booked a payment for it: give back what the invoice did not need (money held
        # twice) or money held beyond a booking reversed in full, else set the booking to what
        # the gateway holds.
        held_twice = payment.unallocated.is_positive() or not payment.net.is_positive()
        return REFUND_AND_UNLOCK if held_twice else CORRECT_BOOKING
    if lookup is not None and lookup.settled_finding() is not None:
        return MANUAL_PAYMENT
    if all(c.never_sent for c in open_charges(charge.invoice_id)):
        return UNLOCK_UNSENT
    return REFUND_AND_UNLOCK


def _claim(charge: PaymentTransaction, actor) -> None:
    """Claim the charge's invoice for a Refund & Unlock, or refuse with who holds it.

    One conditional UPDATE of the invoice's row, which a manual payment locks (FOR UPDATE) for its
    whole database transaction: on PostgreSQL this claim waits for that payment to commit and then
    finds the invoice unlocked; a payment that comes after the claim sees it. Per invoice, so two
    clerks on two charges of one invoice cannot both give its money back."""
    now = clock.now()
    won = db.session.execute(
        update(Invoice)
        .where(
            Invoice.id == charge.invoice_id,
            Invoice.corrective_action == ACTION_REQUIRED,
            or_(
                Invoice.finalizing_at.is_(None),
                Invoice.finalizing_at < now - invoices.CLAIM_TIMEOUT,
            ),
        )
        .values(finalizing_by_id=_id(actor), finalizing_at=now)
    ).rowcount
    if won != 1:
        db.session.rollback()
        current = _charge(charge.id)
        ensure_finalizable(current)  # done or unlocked meanwhile: says by whom
        invoice = db.session.get(Invoice, current.invoice_id, populate_existing=True)
        raise NotAllowed(
            f"{invoice.finalizing_by or 'Settle (autovoid)'} is finalizing this invoice right now"
        )
    db.session.commit()


def _refresh_claim(invoice_id: int, actor) -> None:
    """Keep the claim fresh before the next call; stop if it is not this actor's any more (held
    past CLAIM_TIMEOUT and taken over): another clerk is finalizing, and nothing more is sent."""
    kept = db.session.execute(
        update(Invoice)
        .where(Invoice.id == invoice_id, _held_by(actor))
        .values(finalizing_at=clock.now())
    ).rowcount
    db.session.commit()
    if kept != 1:
        raise NotAllowed(
            "This Refund & Unlock took so long that its claim on the invoice lapsed and was taken"
            " over, or the invoice was finalized meanwhile: nothing more was sent; reload the page"
        )


def _release(invoice_id: int, actor) -> None:
    """Give up this clerk's claim (never another clerk's, who may have taken over a stale one)."""
    db.session.rollback()
    db.session.execute(
        update(Invoice)
        .where(Invoice.id == invoice_id, _held_by(actor))
        .values(finalizing_by_id=None, finalizing_at=None)
    )
    db.session.commit()


def _held_by(actor):
    """The invoice carries a claim, and it is `actor`'s: their id, or no one's id for Settle
    itself (autovoid)."""
    who = (
        Invoice.finalizing_by_id.is_(None)
        if _id(actor) is None
        else Invoice.finalizing_by_id == _id(actor)
    )
    return Invoice.finalizing_at.is_not(None) & who


def locked_for_finalizing(
    txn_id: int, actor, event: lifecycle.Event
) -> tuple[PaymentTransaction, Invoice]:
    """The charge, read under its invoice's row lock, for a finalization made in one database
    transaction (a manual payment, an unlock of an unsent charge)."""
    charge = _charge(txn_id)
    invoice = invoices.lock_invoice(charge.invoice_id)
    charge = _charge(txn_id)
    ensure_finalizable(charge, event)
    if invoices.claim_is_fresh(invoice):
        # A Refund & Unlock is talking to the gateway (another clerk's, autovoid's, or this
        # clerk's own in another tab): acting now could be undone under it.
        raise NotAllowed(
            f"{invoice.finalizing_by or 'Settle (autovoid)'} is attempting a refund and unlock of"
            " this invoice right now"
        )
    return charge, invoice


def refund_and_unlock(
    txn_id: int, actor, *, voids_only: bool = False, note: str | None = None
) -> RefundOutcome:
    """Void or refund what the gateway holds for the invoice's open charges; unlock if all went through."""
    charge = _charge(txn_id)
    ensure_finalizable(charge)
    _claim(charge, actor)
    invoice_id = charge.invoice_id
    try:
        outcome = RefundOutcome(unlocked=False)
        undone = open_charges(invoice_id)
        undone_ids = {c.id for c in undone}
        for open_charge in undone:
            _refresh_claim(invoice_id, actor)
            _undo_at_gateway(open_charge, actor, outcome, voids_only=voids_only)
        if not outcome.problems:
            _refresh_claim(invoice_id, actor)
            actions, problems = lookups.find_unexplained(undone, actor)
            outcome.actions += actions
            outcome.problems += problems
        if outcome.problems:
            _release(invoice_id, actor)
            return outcome
        _unlock(charge.id, actor, outcome, undone_ids, note)
        return outcome
    except BaseException:
        _release(invoice_id, actor)
        raise


def _undo_at_gateway(
    charge: PaymentTransaction, actor, outcome: RefundOutcome, *, voids_only: bool = False
) -> None:
    # For a gateway whose lookup reverses (Payeezy), this lookup already is the void.
    plugin = registry.plugin_class(charge.gateway.plugin)
    if plugin.lookup_moves_money:
        latest = lookups.latest_word(charge)
        if latest is not None and latest.awaiting_gateway:
            outcome.problems.append(
                f"Transaction #{charge.id}: asked already (#{latest.id}); waiting for the"
                " gateway's confirmation, then the invoice unlocks by itself"
            )
            return
        if latest is not None and plugin.lookup_may_refund and lookups.given_back(latest):
            outcome.actions.append(f"Transaction #{charge.id}: given back already (#{latest.id})")
            return
        if voids_only and plugin.lookup_may_refund:
            # Autovoid never refunds, and asking this gateway may.
            outcome.problems.append(
                f"Transaction #{charge.id}: asking {charge.gateway.name} may refund it; a clerk"
                " decides"
            )
            return
    lookup, result = lookups.lookup_charge(charge, actor)
    if result.awaiting_confirmation:
        outcome.problems.append(f"Transaction #{charge.id}: {_waiting(result)}")
        return
    if result.status is not GatewayStatus.SUCCESS:
        outcome.problems.append(
            f"Transaction #{charge.id}: the gateway could not say what it holds ({result.message})"
        )
        return
    if not result.findings:
        outcome.actions.append(f"Transaction #{charge.id}: the gateway holds nothing")
    for finding in result.findings:
        if finding.state is Settlement.UNSETTLED:
            operation = Operation.VOID
        elif finding.state is Settlement.SETTLED and voids_only:
            # Autovoid never refunds: settled money is a clerk's decision (refund or payment).
            outcome.problems.append(
                f"Transaction #{charge.id}: settled at the gateway; a clerk decides"
            )
            continue
        elif finding.state is Settlement.SETTLED:
            operation = Operation.REFUND
        else:
            outcome.actions.append(f"Transaction #{charge.id}: {finding.state} at the gateway")
            continue

        def audited(follow: PaymentTransaction, result: GatewayResult, operation=operation) -> None:
            audit.record(
                f"transaction.{operation.value}", charge, actor=actor,
                after={"transaction_id": follow.id, "status": follow.status, "code": follow.provider_code},
            )  # fmt: skip

        follow, answer = calls.make_recorded_call(
            audited,
            operation=operation,
            invoice=charge.invoice,
            gateway=charge.gateway,
            # What the gateway still holds of it: a charge partly refunded takes only the rest.
            amount=(finding.held or finding.amount or charge.money).amount,
            currency=(finding.held or finding.amount or charge.money).currency,
            parent=charge,
            reference=finding.reference,
            actor=actor,
        )
        what = (
            f"{operation.value} of {finding.held or finding.amount or charge.money}"
            f" ({finding.reference})"
        )
        if answer.status is GatewayStatus.SUCCESS:
            outcome.actions.append(f"Transaction #{charge.id}: {what} went through")
        elif answer.awaiting_confirmation:
            outcome.problems.append(f"Transaction #{charge.id}: {what}: {_waiting(answer)}")
        else:
            outcome.problems.append(
                f"Transaction #{charge.id}: {what} came back {answer.status}: {answer.message}"
            )


def _waiting(result: GatewayResult) -> str:
    """An undo the gateway took but has not confirmed: the invoice unlocks when it does."""
    return (
        f"{result.message}. The invoice stays locked until the gateway's webhook confirms it"
        " (Gateways → Webhooks shows whether they arrive), then unlocks by itself"
    )


def _unlock(
    charge_id: int, actor, outcome: RefundOutcome, undone: set[int], note: str | None
) -> None:
    charge = db.session.get(PaymentTransaction, charge_id)
    invoice = invoices.lock_invoice(charge.invoice_id)
    still_ours = db.session.scalar(
        select(Invoice.id).where(Invoice.id == invoice.id, _held_by(actor))
    )
    if still_ours is None:
        # The gateway told of money for the invoice meanwhile (the lifecycle took the claim
        # back), or another clerk took a lapsed claim over: what was asked is out of date.
        db.session.rollback()
        outcome.problems.append(
            "While this Refund & Unlock was under way, the gateway told of money for this invoice"
            " (or another clerk took it over): nothing was unlocked; look at the charge, then"
            " try again"
        )
        return
    arrived = {c.id for c in open_charges(invoice.id)} - undone
    if arrived:
        # A late answer reopened a charge while the others were undone: it was never looked at.
        db.session.rollback()
        _release(invoice.id, actor)
        outcome.problems.append(
            "An answer arrived meanwhile for transaction(s) "
            + ", ".join(f"#{i}" for i in sorted(arrived))
            + ": nothing was unlocked; look at it, then try again"
        )
        return
    effects.unlock(invoice, actor, Finalization.REFUND_AND_UNLOCK.value)
    for given_back in open_charges(invoice.id):
        # Its money is back with the customer (or was never held): a payment booked for it
        # no longer pays the invoice, which owes it again.
        if effects.reverse_booking(given_back, actor, "Given back at the gateway: Refund & Unlock"):
            outcome.actions.append(
                f"Transaction #{given_back.id}: its payment is reversed; invoice"
                f" {invoice.number} owes {invoice.balance_money} again"
            )
    effects.finalize_open_charges(
        invoice.id, actor, Finalization.REFUND_AND_UNLOCK, note=_note(note)
    )
    db.session.commit()
    outcome.unlocked = True


def unlock_unsent(txn_id: int, actor, note: str | None = None) -> None:
    """Unlock without asking the gateway: every open charge of the invoice is known never to have
    reached it (refused connection, missing credential), so no money can have moved."""
    charge, invoice = locked_for_finalizing(txn_id, actor, lifecycle.Event.UNLOCK_UNSENT)
    sent = [c for c in open_charges(invoice.id) if not c.never_sent]
    if sent:
        raise NotAllowed(
            "Charge " + ", ".join(f"#{c.id}" for c in sent) + " of this invoice reached the "
            f"gateway, so the money may have moved: use {REFUND_AND_UNLOCK}"
        )
    effects.unlock(invoice, actor, Finalization.UNLOCKED_UNSENT.value)
    effects.finalize_open_charges(invoice.id, actor, Finalization.UNLOCKED_UNSENT, note=_note(note))
    db.session.commit()


def _note(*parts: str | None) -> str | None:
    """The clerk's note on a finalization (and Settle's own line, if any), as one audit note."""
    kept = [p.strip() for p in parts if p and p.strip()]
    return " · ".join(kept) or None
