"""Webhooks end to end: the sandbox's Stripe emulation sends its signed events to the portal over
real HTTP, and they settle what Settle could not decide, once, whatever order they arrive in."""

import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.runs.models import PaymentRun
from portal.sandbox.server import register_webhook
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.transactions.models import PaymentTransaction
from portal.webhooks.models import Outcome, WebhookEvent

pytestmark = pytest.mark.integration
S = GatewayStatus


@pytest.fixture
def stripe_gateway(stripe_gateway, sandbox, portal_url):
    # As the demo does: the sandbox's registration endpoint, over HTTP.
    register_webhook(sandbox.url, "stripe", f"{portal_url}/webhooks/{stripe_gateway.id}")
    return stripe_gateway


def wait_for(check, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.rollback()
        db.session.expire_all()
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("the webhook did not arrive in time")


def events(outcome=None) -> list[WebhookEvent]:
    query = select(WebhookEvent).order_by(WebhookEvent.id)
    if outcome:
        query = query.where(WebhookEvent.outcome == outcome)
    return list(db.session.scalars(query))


def charge_of(invoice) -> PaymentTransaction:
    return db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    ).one()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_hung_charge_left_indeterminate_is_settled_by_the_sandboxs_webhook(
    sandbox, stripe_gateway, make_invoice, run_for
):
    invoice = make_invoice(token="cus_demo|tok_hang", gateway=stripe_gateway)
    run = run_for()
    txn = charge_of(invoice)
    assert txn.status == S.INDETERMINATE  # no answer within the gateway's 0.5 s
    assert db.session.get(Invoice, invoice.id).corrective_action == ACTION_REQUIRED

    wait_for(lambda: charge_of(invoice).status == S.SUCCESS)
    txn = charge_of(invoice)
    assert txn.webhook_event and txn.provider_code == "charge.succeeded"
    assert "webhook event" in txn.reason and "no answer within" in txn.reason
    assert txn.locked_invoice is False
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.corrective_action, invoice.balance) == (None, Decimal("0"))
    assert count(Payment) == 1
    run = db.session.get(PaymentRun, run.id)
    assert (run.success_count, run.indeterminate_count, run.processed_count) == (1, 0, 1)
    wait_for(lambda: len(events()) == 2)
    assert [(e.event_type, e.outcome) for e in events()] == [
        ("payment_intent.created", Outcome.NO_CHANGE),
        ("payment_intent.succeeded", Outcome.SETTLED),
    ]
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"transaction.settled_by_webhook", "invoice.unlocked"} <= actions


def test_duplicates_and_an_out_of_order_delivery_change_nothing(
    sandbox, stripe_gateway, make_invoice, run_for
):
    # Every event twice, and the intent's creation overtaken by its outcome.
    sandbox.webhooks.twice, sandbox.webhooks.disorder = 1.0, 1.0
    invoice = make_invoice(token="cus_demo|tok_hang", gateway=stripe_gateway)
    run_for()
    wait_for(lambda: len(sandbox.webhooks.delivered) == 4)
    assert all(status == 200 for _, _, status in sandbox.webhooks.delivered)
    order = [e.event_type for e in events()]
    assert order == ["payment_intent.succeeded", "payment_intent.created"]  # arrived reversed
    assert [e.outcome for e in events()] == [Outcome.SETTLED, Outcome.NO_CHANGE]
    assert charge_of(invoice).status == S.SUCCESS
    assert count(Payment) == 1
    settled = select(func.count()).where(AuditEvent.action == "transaction.settled_by_webhook")
    assert db.session.scalar(settled) == 1


def test_a_charge_answered_by_its_call_is_not_changed_by_the_same_news(
    sandbox, stripe_gateway, make_invoice, run_for
):
    sandbox.webhooks.twice = 1.0
    invoice = make_invoice(token="cus_demo|tok_approve", gateway=stripe_gateway)
    run_for()
    assert charge_of(invoice).status == S.SUCCESS
    wait_for(lambda: len(sandbox.webhooks.delivered) == 4)
    assert [e.outcome for e in events()] == [Outcome.NO_CHANGE, Outcome.NO_CHANGE]
    assert count(Payment) == 1


def test_a_500_after_the_money_moved_is_settled_by_the_webhook(
    sandbox, stripe_gateway, make_invoice, run_for
):
    invoice = make_invoice(token="cus_demo|tok_timeout", gateway=stripe_gateway)
    run_for()
    assert charge_of(invoice).status == S.INDETERMINATE  # api_error_500
    wait_for(lambda: charge_of(invoice).status == S.SUCCESS)
    assert db.session.get(Invoice, invoice.id).corrective_action is None


def test_a_decline_told_by_webhook_keeps_the_decline_policy(
    sandbox, stripe_gateway, make_invoice, run_for
):
    invoice = make_invoice(token="cus_demo|tok_decline", gateway=stripe_gateway)
    run_for()
    assert charge_of(invoice).status == S.DECLINE
    wait_for(lambda: len(events()) == 2)
    failed = events()[1]
    assert (failed.event_type, failed.told_status, failed.code) == (
        "payment_intent.payment_failed", S.DECLINE, "insufficient_funds",
    )  # fmt: skip
    assert failed.outcome == Outcome.NO_CHANGE
    assert db.session.get(Invoice, invoice.id).decline_count == 1  # counted once, not twice


def test_a_webhook_during_the_call_answers_it_and_the_calls_time_out_adds_nothing(
    sandbox, stripe_gateway, make_invoice, run_for
):
    # The call times out at 1.5 s; the sandbox's answer would come at 2 s, its webhook at 0.3 s.
    stripe_gateway.timeout_seconds = Decimal("1.5")
    db.session.commit()
    sandbox.webhooks.delay = 0.3
    invoice = make_invoice(token="cus_demo|tok_hang", gateway=stripe_gateway)
    run = run_for()
    txn = charge_of(invoice)
    assert txn.status == S.SUCCESS and txn.webhook_event
    assert db.session.get(Invoice, invoice.id).corrective_action is None
    assert "late answer" not in (txn.reason or "")
    run = db.session.get(PaymentRun, run.id)
    assert (run.success_count, run.indeterminate_count, run.processed_count) == (1, 0, 1)
    assert count(Payment) == 1


def test_a_void_is_told_by_the_canceled_event(sandbox, stripe_gateway, make_invoice, run_for):
    from portal.auth.models import Role
    from portal.auth.service import create_user
    from portal.transactions import finalize

    invoice = make_invoice(token="cus_demo|tok_review", gateway=stripe_gateway)
    run_for()
    charge = charge_of(invoice)
    assert charge.status == S.REQUIRES_REVIEW
    clerk = create_user("clerk", "correct horse battery", Role.CLERK)
    db.session.commit()
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert outcome.unlocked, outcome.problems
    wait_for(lambda: len(events(Outcome.NO_CHANGE)) >= 2 and len(events()) >= 3)
    canceled = [e for e in events() if e.event_type == "payment_intent.canceled"]
    assert canceled and canceled[0].outcome == Outcome.NO_CHANGE
    assert db.session.get(PaymentTransaction, canceled[0].transaction_id).operation == "void"
