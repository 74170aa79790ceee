"""Cancelling runs, stale queued runs, and an answer that arrives after recovery gave up on it."""

import time
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal import clock, jobs
from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.invoices.models import Invoice
from portal.runs import dispatch
from portal.runs.charging import claim
from portal.runs.models import PaymentRun
from portal.runs.service import run_filter, start_run
from portal.statuses import GatewayStatus
from portal.sweeps.recovery import recover
from portal.transactions.effects import finish_charge
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


def test_cancel_stops_a_running_run_between_invoices_and_leaves_nothing_pending(
    app, make_invoice, make_gateway, monkeypatch
):
    monkeypatch.setitem(app.config, "SETTLE_JOBS", "thread")
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 1)  # one call at a time
    slow = make_gateway(name="Slow", timeout="1")
    for _ in range(6):
        make_invoice(token="tok_hang", gateway=slow)
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    dispatch.submit_run(run.id)
    for _ in range(100):  # wait until the first call is out
        db.session.expire_all()
        if db.session.scalar(select(PaymentTransaction.id)):
            break
        time.sleep(0.05)
    from portal.runs.service import cancel_run

    assert cancel_run(run.id, None)
    jobs.wait_for_threads(app, timeout=30)
    db.session.expire_all()
    run = db.session.get(PaymentRun, run.id)
    statuses = db.session.scalars(select(PaymentTransaction.status)).all()
    assert run.state == "Cancelled" and run.finished_at is not None
    assert "Pending" not in statuses
    assert 1 <= len(statuses) < 6
    # Every invoice it did not reach is listed, so the counts add up.
    assert run.processed_count + run.skipped_count == run.selected_count == 6


def test_a_supervisor_cancels_a_queued_run_and_can_start_the_filter_again(client, login, make_user):
    supervisor = make_user("supervisor")
    login(supervisor)
    run = start_run(due_on=date.today(), actor=supervisor)
    db.session.commit()
    page = client.post(f"/runs/{run.id}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "is cancelled" in page
    again = client.post(f"/runs/{run.id}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "had already ended" in again
    start_run(due_on=date.today(), actor=supervisor)
    db.session.commit()


@pytest.mark.parametrize("role", ["auditor", "clerk"])
def test_only_a_supervisor_cancels(client, login, make_user, role):
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    login(make_user(role))
    assert client.post(f"/runs/{run.id}/cancel").status_code == 403
    assert db.session.get(PaymentRun, run.id).state == "Queued"


def test_recovery_cancels_a_run_that_never_started(app):
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    report = recover(now=clock.now() + timedelta(minutes=10))
    assert run.id in report.runs
    db.session.expire_all()
    run = db.session.get(PaymentRun, run.id)
    assert run.state == "Cancelled" and "never started" in run.error


def test_a_late_success_after_recovery_gave_up_books_the_payment_the_invoice_still_owes(
    make_invoice, sandbox
):
    invoice = make_invoice()
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    txn_id = claim(invoice.id, run, run_filter(run)).txn_id
    recover(now=clock.now() + timedelta(minutes=10))  # the gateway holds nothing yet: "never sent"
    db.session.expire_all()
    assert db.session.get(PaymentTransaction, txn_id).finalization == "Recovered: never sent"
    late = GatewayResult(GatewayStatus.SUCCESS, "approved", "Approved", reference="ch_late")
    finish_charge(txn_id, late)
    db.session.expire_all()
    txn = db.session.get(PaymentTransaction, txn_id)
    assert txn.gateway_status is GatewayStatus.SUCCESS and txn.provider_reference == "ch_late"
    assert "the payment is booked" in txn.reason and not txn.locked_invoice
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.balance, invoice.corrective_action) == (0, None)


def test_a_late_success_for_an_invoice_paid_meanwhile_locks_it_as_money_held_twice(
    make_invoice, sandbox
):
    from portal.payments import service as payments
    from portal.payments.models import PaymentMethodKind

    invoice = make_invoice()
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    txn_id = claim(invoice.id, run, run_filter(run)).txn_id
    recover(now=clock.now() + timedelta(minutes=10))
    invoice = db.session.get(Invoice, invoice.id)
    cheque = payments.create_payment(account_id=invoice.account_id, amount=invoice.balance,
                                     currency=invoice.currency, method=PaymentMethodKind.CHECK,
                                     reference="cheque 1", transaction_id=None)  # fmt: skip
    payments.allocate(cheque, invoice, invoice.balance)
    db.session.commit()
    late = GatewayResult(GatewayStatus.SUCCESS, "approved", "Approved", reference="ch_late")
    finish_charge(txn_id, late)
    db.session.expire_all()
    txn = db.session.get(PaymentTransaction, txn_id)
    assert "held twice" in txn.reason and txn.provider_reference == "ch_late"
    assert txn.finalized_at is None and txn.locked_invoice
    assert db.session.get(Invoice, invoice.id).corrective_action == "Action Required"
