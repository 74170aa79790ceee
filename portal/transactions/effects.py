"""The one applier of a charge's lifecycle (portal.transactions.lifecycle decides): the only code
that writes a charge's lock, unlock, reopen and finalization, books a payment for it, and moves
its run's counters. Runs, recovery, webhooks and clerks all come here."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import Decimal

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.audit import service as audit
from portal.errors import NotAllowed
from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.invoices import service as invoices
from portal.invoices.models import Invoice
from portal.money import Money
from portal.payments import service as payments
from portal.payments.models import Payment, PaymentMethodKind
from portal.settings import service as settings
from portal.statuses import ACTION_REQUIRED, GatewayStatus, MethodState, policy_for
from portal.transactions import calls, lookups
from portal.transactions.lifecycle import Action, ChargeState, Decision, Event, Undo, decide
from portal.transactions.models import Finalization, Operation, PaymentTransaction

# Reading a charge's state ------------------------------------------------------------------


def state_of(txn: PaymentTransaction) -> ChargeState:
    """What Settle knows of the charge and its invoice now (read under the invoice's lock)."""
    invoice = txn.invoice
    other_unknown = calls.charge_of_unknown_outcome(txn.invoice_id, besides=txn.id)
    booked = txn.payment.net.amount if txn.payment is not None else None
    undo = undo_that_may_have_moved(txn)
    return ChargeState(
        status=txn.gateway_status,
        finalization=Finalization(txn.finalization) if txn.finalization else None,
        locked=txn.locked_invoice,
        invoice_locked=invoice.corrective_action == ACTION_REQUIRED,
        owes_it=invoice.cancelled_at is None and invoice.balance >= txn.amount,
        other_unknown=other_unknown is not None,
        booked_short=booked is not None and booked < txn.amount,
        undo=Undo.MAY_HAVE_MOVED if undo else Undo.NONE,
        undo_said=f"{undo.operation} #{undo.id} of it is {undo.status}" if undo else "",
        being_finalized=invoices.claim_is_fresh(invoice),
        webhook_told=bool(txn.webhook_event),
        booked=booked_payment(txn) is not None,
    )


def booked_payment(charge: PaymentTransaction) -> Payment | None:
    """The payment of the gateway's money booked for the charge (its Success, or a clerk's manual
    payment received through the gateway), reversed in part or whole or not at all: the charge's
    one payment, which a second one would book twice."""
    payment = charge.payment
    if payment is None or payment.method != PaymentMethodKind.GATEWAY.value:
        return None
    return payment


def undo_that_may_have_moved(charge: PaymentTransaction) -> PaymentTransaction | None:
    """A void or refund of the charge (or a lookup that reverses it, as Adyen's) that went
    through, or may have: its money may be back with the customer."""
    for follow in db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.parent_id == charge.id)
    ):
        if not lookups.is_undo(follow):
            continue
        failed = follow.gateway_status in (
            GatewayStatus.DECLINE, GatewayStatus.VALIDATION_ERROR, GatewayStatus.PERMANENT_FAIL,
        )  # fmt: skip
        if not failed and follow.request_sent is not False:
            return follow
    return None


# The answer path ---------------------------------------------------------------------------


def finish_charge(txn_id: int, result: GatewayResult, invoice_id: int | None = None) -> None:
    """A charge's answer and its status's action, in one database transaction."""
    finish_charges([(txn_id, result, invoice_id)])


def finish_charges(answers: list[tuple[int, GatewayResult, int | None]]) -> None:
    """A batch of charges' answers (transaction id, result, invoice id), each with its status's
    action, all in one database transaction; an answer to a charge answered meanwhile (recovery
    closed it) is news, and the lifecycle decides what of it to keep."""
    calls.answer_many(answers, apply_policy, late=take_late_answer)


def take_late_answer(txn: PaymentTransaction, result: GatewayResult) -> None:
    take_news(txn, result, Event.LATE_ANSWER)


def close_as(finalization: Finalization):
    """The `then` of a charge closed as it is answered, by Settle, with no money left at the
    gateway (never sent, or given back): finalized, its policy counts it and locks nothing."""

    def closed(txn: PaymentTransaction, result: GatewayResult) -> None:
        txn.finalization, txn.finalized_at = finalization.value, txn.answered_at
        apply_policy(txn, result)

    return closed


def take_news(txn: PaymentTransaction, result: GatewayResult, event_: Event) -> Decision:
    """A late answer or the gateway's word about a charge that has an answer: decided by the
    lifecycle and applied here, under the invoice's lock the caller holds."""
    decision = decide(state_of(txn), event_, result.status)
    # What the news said, kept with what was done about it.
    decision = replace(
        decision, note=f"{decision.note} ({event_}: {result.code or 'no code'}, {result.message})"
    )
    if decision.action is Action.REPLACE:
        replace_answer(txn, result)
    elif decision.action is Action.BOOK:
        book_late_success(txn, result, decision.note)
    elif decision.action is Action.HOLD:
        hold(txn, result, decision.note)
        if decision.stops_finalizing:
            db.session.execute(
                update(Invoice)
                .where(Invoice.id == txn.invoice_id)
                .values(finalizing_by_id=None, finalizing_at=None)
            )
    elif decision.action is Action.CLERK and event_ is Event.LATE_ANSWER:
        _note_on(txn, decision.note)
        audit.record(
            "transaction.late_answer", txn, after={"status": result.status.value},
            note=decision.note,
        )  # fmt: skip
    return decision


def _note_on(txn: PaymentTransaction, note: str) -> None:
    txn.reason = f"{txn.reason or ''} {note}".strip()


def replace_answer(txn: PaymentTransaction, result: GatewayResult) -> None:
    """The gateway's decided word over the status Settle gave without it: the policy's difference
    (payment, method, run counts), and the invoice unlocked where nothing else of it locks."""
    before = policy_for(txn.gateway_status, strict=settings.strict_mode())
    locked = txn.locked_invoice
    calls.write_answer(txn, result)
    apply_policy(txn, result, replacing=before)
    invoice = txn.invoice
    still_open = [c for c in open_charges(invoice.id) if c.id != txn.id]
    unlocks = locked and not txn.locked_invoice and not still_open
    if unlocks and invoice.corrective_action == ACTION_REQUIRED:
        note = f"the gateway answered transaction #{txn.id}: {txn.status}"
        unlock(invoice, None, note)


def book_late_success(txn: PaymentTransaction, result: GatewayResult, note: str) -> None:
    """The gateway took the money of a charge finalized as holding none, and the invoice still
    owes it: the charge becomes the Success it was, and its payment is booked, so that the next
    run does not charge the customer again."""
    before = policy_for(txn.gateway_status, strict=settings.strict_mode())
    was = txn.finalization
    calls.write_answer(txn, replace(result, reason=f"{result.reason or ''} {note}".strip()))
    apply_policy(txn, result, replacing=before)
    audit.record(
        "transaction.booked_late", txn,
        before={"finalization": was}, after={"status": txn.status}, note=note,
    )  # fmt: skip


def hold(txn: PaymentTransaction, result: GatewayResult, note: str) -> None:
    """Money may be held that Settle has not booked (or booked twice): the word is kept on the
    charge, which is open again, and its invoice locked for a clerk, so that no run charges it
    again before a person has looked."""
    _note_on(txn, note)
    txn.provider_reference = txn.provider_reference or result.reference
    reopen(txn, note, event_name="transaction.held", status=result.status.value)


def take_booking_difference(txn: PaymentTransaction, said: str) -> Decision:
    """A reconciliation found the gateway holding another amount than Settle booked for the
    charge (`said` names both): decided by the lifecycle; where it holds, the charge is open again
    and its invoice locked for a clerk, who corrects the booking or gives the money back."""
    decision = decide(state_of(txn), Event.BOOKING_DIFFERS)
    decision = replace(decision, note=f"{said}. {decision.note}")
    if decision.action is Action.HOLD:
        _note_on(txn, decision.note)
        reopen(txn, decision.note, event_name="transaction.booking_differs")
    return decision


def reverse_booking(charge: PaymentTransaction, actor, reason: str, *, keep: Money | None = None):
    """Reverse the charge's booked payment down to `keep` (nothing, by default: the gateway gave
    it all back): the invoice is owed the rest again. What Settle's own refunds of it gave back
    (and no earlier reversal named) is reversed naming the latest refund: the ledger shows that
    refund as the money going out. The rest (a void: the money never settled; a refund made
    outside Settle) is reversed on its own, and is the ledger's money going out."""
    payment = booked_payment(charge)
    if payment is None:
        return None
    amount = payment.net.amount - (keep.amount if keep is not None else 0)
    if amount <= 0:
        return None
    refunds = db.session.execute(
        select(PaymentTransaction.id, PaymentTransaction.amount).where(
            PaymentTransaction.parent_id == charge.id,
            PaymentTransaction.operation == Operation.REFUND.value,
            PaymentTransaction.status == GatewayStatus.SUCCESS.value,
        )
    ).all()
    named = sum((r.amount for r in payment.reversals if r.refund_id is not None), Decimal(0))
    covered = min(amount, max(Decimal(0), sum((r.amount for r in refunds), Decimal(0)) - named))
    done = None
    if covered > 0:
        done = payments.reverse(
            payment.id, covered, reason, actor, charge_id=charge.id,
            refund_id=max(r.id for r in refunds), invoice_id=charge.invoice_id,
        )  # fmt: skip
    if amount - covered > 0:
        done = payments.reverse(
            payment.id, amount - covered, reason, actor, charge_id=charge.id,
            invoice_id=charge.invoice_id,
        )  # fmt: skip
    return done


# A status's policy -------------------------------------------------------------------------


def apply_policy(
    txn: PaymentTransaction, result: GatewayResult | None = None, *, replacing=None
) -> None:
    """What the status does to the invoice, the payment method and the run (domain.md section 2).

    A charge finalized as it was answered (crash recovery proved it never moved money) locks
    nothing: there is nothing left for a clerk to do. `replacing` is the policy of the status an
    answer replaces (the gateway's webhook over Settle's Indeterminate): the run's count moves."""
    policy = policy_for(txn.gateway_status, strict=settings.strict_mode())
    if txn.finalized_at is not None:
        policy = replace(policy, locks_invoice=False)
    txn.locked_invoice = policy.locks_invoice
    invoice = txn.invoice
    run_note = f"payment run #{txn.run_id}" if txn.run_id else None
    if txn.gateway_status is GatewayStatus.DECLINE:
        invoices.record_decline(invoice, txn.answered_at or txn.requested_at)
    elif txn.gateway_status is GatewayStatus.SUCCESS:
        invoices.clear_declines(invoice)
    if policy.creates_payment:
        payment = payments.create_payment(
            account_id=invoice.account_id,
            amount=txn.amount,
            currency=txn.currency,
            method=PaymentMethodKind.GATEWAY,
            reference=txn.provider_reference,
            transaction_id=txn.id,
        )
        # Never allocate past the balance, whatever else paid the invoice meanwhile.
        amount = min(txn.amount, invoice.balance)
        if amount > 0:
            payments.allocate(payment, invoice, amount)
        if amount < txn.amount:
            # Something else paid the invoice meanwhile: the customer's money is held twice, and
            # a clerk gives the difference back (Refund & Unlock, or at the gateway).
            note = (
                f"Success on transaction #{txn.id} for {txn.money}, but invoice {invoice.number}"
                f" owed only {Money(amount, txn.currency)}: the customer's money may be held"
                " twice; refund this charge"
            )
            _note_on(txn, note)
            policy = replace(policy, locks_invoice=True)
            txn.locked_invoice = True
    method = txn.payment_method if policy.method_state != MethodState.ACTIVE else None
    if method is not None:
        before = method.state
        method.state = policy.method_state.value
        audit.record(
            "payment_method.state_changed", method,
            before={"state": before}, after={"state": method.state},
            note=f"{txn.status} on transaction #{txn.id}" + (f", {run_note}" if run_note else ""),
        )  # fmt: skip
    if policy.locks_invoice:
        lock(
            invoice,
            f"{txn.status} on transaction #{txn.id}" + (f", {run_note}" if run_note else ""),
        )
    count_on_run(txn, policy, replacing)


def count_on_run(txn: PaymentTransaction, policy, replacing=None) -> None:
    """The run's counter for the status moves with the answer, in the same database transaction;
    an answer that replaces another moves the count from the old status's counter instead.

    The moves are added up in the session and written by one UPDATE per run as the transaction
    commits (`_write_counts`): a batch of answers moves its run's counters once."""
    if txn.run_id is None:
        return
    if replacing is None:
        moves = {policy.counter.value: 1, "processed_count": 1}
    elif replacing.counter is policy.counter:
        return
    else:
        moves = {policy.counter.value: 1, replacing.counter.value: -1}
    counts = db.session.info.setdefault(_RUN_COUNTS, {}).setdefault(txn.run_id, Counter())
    counts.update(moves)


_RUN_COUNTS = "run_counts"


@event.listens_for(Session, "before_commit")
def _write_counts(session) -> None:
    # The runs' table by name: the run machinery stands above the charge's life, not below it.
    runs = db.metadata.tables["payment_runs"]
    for run_id, counts in session.info.pop(_RUN_COUNTS, {}).items():
        values = {runs.c[name]: runs.c[name] + n for name, n in counts.items() if n}
        if values:
            session.execute(update(runs).where(runs.c.id == run_id).values(values))


@event.listens_for(Session, "after_transaction_end")
def _forget_counts(session, transaction) -> None:
    if transaction.parent is None:  # rolled back (a commit wrote and forgot them already)
        session.info.pop(_RUN_COUNTS, None)


# Locks, unlocks, reopenings and finalizations ----------------------------------------------


def lock(invoice: Invoice, note: str) -> None:
    """Action Required, audited, unless it is set already."""
    if invoice.corrective_action is not None:
        return
    invoice.corrective_action = ACTION_REQUIRED
    invoice.locked_at = clock.now()
    audit.record(
        "invoice.locked", invoice,
        before={"corrective_action": None}, after={"corrective_action": invoice.corrective_action},
        note=note,
    )  # fmt: skip


def reopen(charge: PaymentTransaction, note: str, *, event_name: str, **after) -> None:
    """The charge is open again (not finalized, locking its invoice): money may be held that
    nobody has dealt with, and a clerk must."""
    charge.locked_invoice = True
    charge.finalization = charge.finalized_at = charge.finalized_by_id = None
    lock(charge.invoice, note)
    audit.record(event_name, charge, after=after, note=note)


def reopen_after_failed_undo(undo: PaymentTransaction, result: GatewayResult, note: str) -> None:
    """The gateway says an undo Settle took as done failed (a refund refused after it was
    accepted): the undo takes that answer (it no longer counts as given back), and the money may
    still be with the merchant, so the charge is open again and its invoice locked, and the next
    run does not charge the customer a second time."""
    calls.write_answer(undo, result)
    undo.gateway_state = None
    reopen(undo.parent, note, event_name="transaction.reopened", undo_id=undo.id)


def open_charges(invoice_id: int) -> list[PaymentTransaction]:
    """The invoice's charges that locked it and are not finalized yet."""
    return [c for c in calls.charges_of(invoice_id) if c.locked_invoice and c.finalized_at is None]


def unlock(invoice: Invoice, actor, note: str) -> None:
    """Compare-and-set on the Corrective Action: of two clerks, exactly one clears it."""
    cleared = db.session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.corrective_action == ACTION_REQUIRED)
        .values(
            corrective_action=None,
            locked_at=None,
            owner_id=None,
            finalizing_by_id=None,
            finalizing_at=None,
        )  # fmt: skip
    ).rowcount
    if cleared != 1:
        db.session.rollback()
        raise NotAllowed(f"Invoice {invoice.number} is not locked any more")
    db.session.refresh(invoice)
    audit.record(
        "invoice.unlocked", invoice, actor=actor,
        before={"corrective_action": ACTION_REQUIRED}, after={"corrective_action": None},
        note=note,
    )  # fmt: skip


def finalize_open_charges(
    invoice_id: int, actor, how: Finalization, note: str | None = None, **after
) -> None:
    """Mark every open charge of the invoice finalized, audited."""
    for open_charge in open_charges(invoice_id):
        finalize_charge(open_charge, actor, how, note, **after)


def finalize_charge(
    charge: PaymentTransaction, actor, how: Finalization, note: str | None = None, **after
) -> None:
    """Mark one charge finalized, audited."""
    charge.finalization = how.value
    charge.finalized_at = clock.now()
    charge.finalized_by_id = getattr(actor, "id", None)
    audit.record(
        "transaction.finalized", charge, actor=actor,
        after={"finalization": how.value, **after}, note=note,
    )  # fmt: skip
