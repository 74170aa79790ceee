"""Charging invoices: claim them and record their calls (their answers are written by the charge's
lifecycle, portal.transactions.effects). One invoice or a window of them, through the same
functions (runs/pipeline.py makes the calls in between)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.invoices import service as invoices
from portal.runs import eligibility
from portal.runs.eligibility import RunFilter
from portal.runs.models import PaymentRun, RunState
from portal.statuses import GatewayStatus
from portal.transactions import calls, effects
from portal.transactions.models import Finalization, Operation

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


NEVER_SENT = Finalization.RUN_NEVER_SENT.value


def close_unsent(charges: list[tuple[int, int]], reason: str) -> None:
    """Charges (transaction id, invoice id) a run recorded and then never sent, because it was
    cancelled or its chunk taken over first: each a System Fail that moved nothing, finalized as
    it is answered, so that its policy counts it on its run and locks nothing."""
    result = GatewayResult(GatewayStatus.SYSTEM_FAIL, None, reason, reason=reason, sent=False)
    closed = effects.close_as(Finalization.RUN_NEVER_SENT)
    calls.answer_many([(txn_id, result, invoice_id) for txn_id, invoice_id in charges], closed)
