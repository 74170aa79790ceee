"""Charging invoices: claim them and record their calls, then write their answers with each
status's policy. One invoice or a window of them, through the same functions (runs/pipeline.py
makes the calls in between)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.audit import service as audit
from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.invoices import service as invoices
from portal.payments import service as payments
from portal.payments.models import PaymentMethodKind
from portal.runs import eligibility
from portal.runs.eligibility import RunFilter
from portal.runs.models import PaymentRun, RunState
from portal.settings import service as settings
from portal.statuses import GatewayStatus, MethodState, policy_for
from portal.transactions import calls
from portal.transactions.models import Operation, PaymentTransaction

log = logging.getLogger(__name__)


def claim(invoice_id: int, run: PaymentRun | None, rf: RunFilter) -> calls.Call | str:
    """Step 1, committed before any call: the Pending charge's call, or why the invoice was
    skipped."""
    return claim_many([invoice_id], run, rf)[invoice_id]


def claim_many(
    invoice_ids: list[int], run: PaymentRun | None, rf: RunFilter
) -> dict[int, calls.Call | str]:
    """Step 1 for a window of invoices, in one database transaction committed before any call:
    each invoice's lock, its eligibility read as `claim` reads it for one, and a Pending charge
    recorded for each eligible one. Returns each invoice's call, or why it was skipped."""
    locked = invoices.lock_invoices(invoice_ids, rows=True)
    if run is not None and _cancelled(run.id):
        # Calls waiting for their turn when a supervisor cancelled: none of them leaves.
        db.session.rollback()
        return dict.fromkeys(invoice_ids, CANCELLED_BEFORE_ITS_TURN)
    methods = eligibility.charging_methods(invoice.account_id for invoice in locked.values())
    pending = eligibility.pending_charges(locked)
    retries = len(invoices.retry_schedule())
    outcome: dict[int, calls.Call | str] = {}
    charge, charged = [], []
    for invoice_id in invoice_ids:
        invoice = locked.get(invoice_id)
        if invoice is None:
            outcome[invoice_id] = "no such invoice"
            continue
        method = methods.get(invoice.account_id)
        reason = eligibility.why_not_eligible(
            invoice, method, rf, pending=invoice_id in pending, retries=retries
        )
        if reason:
            outcome[invoice_id] = reason
            continue
        charge.append(
            dict(operation=Operation.CHARGE, invoice=invoice, gateway=method.gateway,
                 amount=invoice.balance, currency=invoice.currency, run=run, method=method)
        )  # fmt: skip
        charged.append(invoice_id)
    if not charge:
        db.session.rollback()
        return outcome
    try:
        recorded = calls.record_many(charge)
        db.session.commit()  # record before call
    except IntegrityError:
        # The unique in-flight index: another run recorded a charge for one of them meanwhile.
        db.session.rollback()
        if len(invoice_ids) > 1:
            raise  # the caller claims them one at a time, so that only that one is skipped
        return {invoice_ids[0]: "charged by another run in progress"}
    outcome.update(zip(charged, recorded, strict=True))
    return outcome


CANCELLED_BEFORE_ITS_TURN = "the run was cancelled before its turn"


def _cancelled(run_id: int) -> bool:
    state = db.session.scalar(select(PaymentRun.state).where(PaymentRun.id == run_id))
    return state == RunState.CANCELLED


def finish_charge(txn_id: int, result: GatewayResult, invoice_id: int | None = None) -> None:
    """Step 3: a charge's answer and its status's action, in one database transaction."""
    finish_charges([(txn_id, result, invoice_id)])


# Stored in payment_transactions.finalization (30 characters at most).
NEVER_SENT = "Never sent: the run stopped"


def close_unsent(charges: list[tuple[int, int]], reason: str) -> None:
    """Charges (transaction id, invoice id) a run recorded and then never sent, because it was
    cancelled or its chunk taken over first: each a System Fail that moved nothing, finalized as
    it is answered, so that its policy counts it on its run and locks nothing."""
    result = GatewayResult(GatewayStatus.SYSTEM_FAIL, None, reason, reason=reason, sent=False)

    def closed(txn: PaymentTransaction, answer: GatewayResult) -> None:
        txn.finalization, txn.finalized_at = NEVER_SENT, txn.answered_at
        apply_policy(txn, answer)

    calls.answer_many([(txn_id, result, invoice_id) for txn_id, invoice_id in charges], closed)


def finish_charges(answers: list[tuple[int, GatewayResult, int | None]]) -> None:
    """Step 3 for a batch of charges' answers (transaction id, result, invoice id), each with its
    status's action, all in one database transaction."""
    calls.answer_many(answers, apply_policy, late=keep_late_answer)


_MONEY_MAY_HAVE_MOVED = (
    GatewayStatus.SUCCESS,
    GatewayStatus.REQUIRES_REVIEW,
    GatewayStatus.INDETERMINATE,
)


def keep_late_answer(txn: PaymentTransaction, result: GatewayResult) -> None:
    """Recovery finished the charge meanwhile, believing the call dead. Its record stands, but an
    answer that says money moved must not be lost: keep it and put a clerk on it."""
    if result.status is txn.gateway_status or result.status not in _MONEY_MAY_HAVE_MOVED:
        return
    if calls.adds_nothing(txn, result):
        return
    invoice = txn.invoice
    note = (
        f"A late answer arrived after recovery had closed this transaction as {txn.status}: "
        f"{result.status}, {result.code or 'no code'}, {result.message}"
    )
    txn.reason = f"{txn.reason or ''} {note}".strip()
    txn.provider_reference = txn.provider_reference or result.reference
    txn.locked_invoice = True
    txn.finalization = txn.finalized_at = None
    if invoice.corrective_action is None:
        invoices.set_action_required(invoice)
    audit.record("transaction.late_answer", txn, after={"status": result.status.value}, note=note)


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
    method = txn.payment_method if policy.method_state != MethodState.ACTIVE else None
    if method is not None:
        before = method.state
        method.state = policy.method_state.value
        audit.record(
            "payment_method.state_changed", method,
            before={"state": before}, after={"state": method.state},
            note=f"{txn.status} on transaction #{txn.id}" + (f", {run_note}" if run_note else ""),
        )  # fmt: skip
    if policy.locks_invoice and invoice.corrective_action is None:
        invoices.set_action_required(invoice)
        audit.record(
            "invoice.locked", invoice,
            before={"corrective_action": None},
            after={"corrective_action": invoice.corrective_action},
            note=f"{txn.status} on transaction #{txn.id}" + (f", {run_note}" if run_note else ""),
        )  # fmt: skip
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
    for run_id, counts in session.info.pop(_RUN_COUNTS, {}).items():
        values = {
            getattr(PaymentRun, name): getattr(PaymentRun, name) + n
            for name, n in counts.items()
            if n
        }
        if values:
            session.execute(update(PaymentRun).where(PaymentRun.id == run_id).values(values))


@event.listens_for(Session, "after_transaction_end")
def _forget_counts(session, transaction) -> None:
    if transaction.parent is None:  # rolled back (a commit wrote and forgot them already)
        session.info.pop(_RUN_COUNTS, None)
