"""Charging one invoice: claim it, record the call, make it, apply the status's policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

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


@dataclass(frozen=True)
class Outcome:
    invoice_id: int
    status: GatewayStatus | None = None
    transaction_id: int | None = None
    skipped: str | None = None


def claim(invoice_id: int, run: PaymentRun | None, rf: RunFilter) -> calls.Call | str:
    """Step 1, committed before any call: the Pending charge's call, or why the invoice was
    skipped."""
    invoice = invoices.lock_invoice(invoice_id)
    if run is not None and _cancelled(run.id):
        # Calls queued for a gateway's turn when a supervisor cancelled: none of them leaves.
        db.session.rollback()
        return CANCELLED_BEFORE_ITS_TURN
    method = eligibility.charging_method(invoice)
    reason = eligibility.why_not_eligible(invoice, method, rf)
    if reason:
        db.session.rollback()
        return reason
    try:
        call = calls.record(
            operation=Operation.CHARGE,
            invoice=invoice,
            gateway=method.gateway,
            amount=invoice.balance,
            currency=invoice.currency,
            run=run,
            method=method,
        )
        db.session.commit()  # record before call
    except IntegrityError:
        # The unique in-flight index: another run holds a Pending charge for this invoice.
        db.session.rollback()
        return "charged by another run in progress"
    return call


CANCELLED_BEFORE_ITS_TURN = "the run was cancelled before its turn"


def _cancelled(run_id: int) -> bool:
    state = db.session.scalar(select(PaymentRun.state).where(PaymentRun.id == run_id))
    return state == RunState.CANCELLED


def charge_invoice(invoice_id: int, run: PaymentRun | None, rf: RunFilter) -> Outcome:
    call = claim(invoice_id, run, rf)
    if isinstance(call, str):
        return Outcome(invoice_id, skipped=call)
    result = call.make()
    finish_charge(call.txn_id, result, invoice_id)
    return Outcome(invoice_id, status=result.status, transaction_id=call.txn_id)


def finish_charge(txn_id: int, result: GatewayResult, invoice_id: int | None = None) -> None:
    """Step 3: a charge's answer and its status's action, in one database transaction."""
    calls.answer(txn_id, result, apply_policy, late=keep_late_answer, invoice_id=invoice_id)


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
    an answer that replaces another moves the count from the old status's counter instead."""
    if txn.run_id is None:
        return
    column = getattr(PaymentRun, policy.counter.value)
    if replacing is None:
        values = {column: column + 1, PaymentRun.processed_count: PaymentRun.processed_count + 1}
    elif replacing.counter is policy.counter:
        return
    else:
        old = getattr(PaymentRun, replacing.counter.value)
        values = {column: column + 1, old: old - 1}
    db.session.execute(update(PaymentRun).where(PaymentRun.id == txn.run_id).values(values))
