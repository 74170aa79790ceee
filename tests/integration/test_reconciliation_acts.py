"""What reconciliation finds is acted on (issue 26, item 8): the gateway's word in its listing is
an event of the charge's lifecycle, so a charge Settle took as declined that the gateway captured
locks its invoice for a clerk, and no run charges the customer a second time."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.reconciliation import service as reconciliation
from portal.reconciliation.models import ReconciliationLine
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.transactions import calls, finalize
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


def test_a_declined_charge_the_gateway_captured_locks_its_invoice_and_is_not_charged_again(
    make_invoice, run_for, make_user, sandbox
):
    invoice = make_invoice(token="tok_decline_captured", amount="50.00")
    supervisor = make_user("supervisor")
    run = run_for(actor=supervisor)
    (charge,) = calls.charges_of(invoice.id)
    assert charge.gateway_status is GatewayStatus.DECLINE
    report = reconciliation.reconcile(supervisor, run=run)
    db.session.commit()
    (line,) = db.session.scalars(
        select(ReconciliationLine).where(ReconciliationLine.report_id == report.id)
    ).all()
    assert line.kind == "status" and line.transaction_id == charge.id
    assert "Settle locked the invoice (Action Required)" in line.advice
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.corrective_action == ACTION_REQUIRED
    charge = db.session.get(type(charge), charge.id)
    assert charge.needs_finalization
    assert f"Reconciliation report #{report.id}: the gateway holds it" in charge.reason
    # The retry schedule would have charged it again; the lock keeps every run away.
    invoice.next_attempt_at = None
    db.session.commit()
    run_for(actor=supervisor)
    assert len(calls.charges_of(invoice.id)) == 1
    # Asked again, the report changes nothing more: the charge is in a clerk's hands.
    held = select(func.count()).where(AuditEvent.action == "transaction.held")
    before = db.session.scalar(held)
    reconciliation.reconcile(supervisor, run=run)
    db.session.commit()
    assert before == 1 and db.session.scalar(held) == before
    # The clerk gives the captured money back, and then the invoice is owed again.
    outcome = finalize.refund_and_unlock(charge.id, make_user("clerk"))
    assert outcome.unlocked, outcome.problems
    assert [c["state"] for c in sandbox.ledger.all()] == ["voided"]
    assert db.session.get(Invoice, invoice.id).balance == Decimal("50.00")


def _voided_then_forgotten(charge, clerk, sandbox):
    """A clerk's Refund & Unlock voids the charge; then the gateway shows it held again."""
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert outcome.unlocked, outcome.problems
    (held,) = sandbox.ledger.all()
    with sandbox.ledger._tx() as ledger:
        ledger.execute("UPDATE charges SET voided = 0 WHERE id = ?", (held["id"],))


def _lines(report):
    return db.session.scalars(
        select(ReconciliationLine).where(ReconciliationLine.report_id == report.id)
    ).all()


def test_money_the_gateway_still_holds_after_settles_void_locks_the_invoice_again(
    make_invoice, run_for, make_user, sandbox
):
    """Settle took a void as done, unlocked, and the invoice is owed again; the gateway's listing
    shows the money still held (the void did not go through as answered). Before, the report only
    advised: the next run charged the customer a second time."""
    invoice = make_invoice(token="tok_review", amount="45.00")
    supervisor, clerk = make_user("supervisor"), make_user("clerk")
    run = run_for(actor=supervisor)
    (charge,) = calls.charges_of(invoice.id)
    _voided_then_forgotten(charge, clerk, sandbox)
    (line,) = _lines(reconciliation.reconcile(supervisor, run=run))
    assert line.kind == "status" and "Settle locked the invoice (Action Required)" in line.advice
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).corrective_action == ACTION_REQUIRED
    charge = db.session.get(type(charge), charge.id)
    assert charge.needs_finalization and "the gateway still holds the money" in charge.reason
    run_for(actor=supervisor)
    assert len(calls.charges_of(invoice.id)) == 1


def test_a_listing_that_cannot_show_a_later_refund_does_not_lock_on_it(
    make_invoice, run_for, make_user, sandbox, monkeypatch
):
    """Authorize.Net lists a refund in the batch it settles in: a run's listing cannot show a
    refund made after the run, so its charge reads as held there. That is no proof the refund
    failed: the line says to check, and nothing is locked."""
    from portal.gateways.sandbox.plugin import SandboxGateway

    monkeypatch.setattr(SandboxGateway, "listing_tells_later_refunds", False)
    invoice = make_invoice(token="tok_review", amount="45.00")
    supervisor, clerk = make_user("supervisor"), make_user("clerk")
    run = run_for(actor=supervisor)
    (charge,) = calls.charges_of(invoice.id)
    _voided_then_forgotten(charge, clerk, sandbox)
    undo = db.session.scalar(
        select(PaymentTransaction).where(
            PaymentTransaction.parent_id == charge.id, PaymentTransaction.operation == "void"
        )
    )
    undo.answered_at = run.finished_at + timedelta(hours=3)  # a day's work later
    db.session.commit()
    (line,) = _lines(reconciliation.reconcile(supervisor, run=run))
    assert line.kind == "status" and "check the gateway status before acting" in line.advice
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).corrective_action is None
