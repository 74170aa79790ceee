"""Braintree's webhooks end to end: the sandbox settles a sale and posts its signed
transaction_settled notification to the portal, which settles the charge Settle could not decide."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.sandbox.server import register_webhook, sandbox_credentials
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.webhooks.models import Outcome, WebhookEvent
from tests.integration.test_webhooks import charge_of, count, events, wait_for

pytestmark = pytest.mark.integration
S = GatewayStatus


@pytest.fixture
def braintree_gateway(app, sandbox, portal_url):
    gateway = Gateway(name="Braintree", plugin="braintree", base_url=sandbox.url_for("braintree"),
                      credentials=sandbox_credentials("braintree"), timeout_seconds=Decimal("0.5"))  # fmt: skip
    db.session.add(gateway)
    db.session.commit()
    register_webhook(sandbox.url, "braintree", f"{portal_url}/webhooks/{gateway.id}")
    return gateway


def test_a_hung_bank_sale_is_settled_by_braintrees_transaction_settled(
    sandbox, braintree_gateway, make_invoice, run_for
):
    invoice = make_invoice(token="bank_tok_hang", gateway=braintree_gateway)
    run_for()
    assert charge_of(invoice).status == S.INDETERMINATE
    assert db.session.get(Invoice, invoice.id).corrective_action == ACTION_REQUIRED

    wait_for(lambda: charge_of(invoice).status == S.SUCCESS)
    txn = charge_of(invoice)
    assert (txn.provider_code, txn.locked_invoice) == ("charge.settled", False)
    assert txn.webhook_event == f"transaction_settled/{txn.provider_reference}"
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.corrective_action, invoice.balance) == (None, Decimal("0"))
    assert count(Payment) == 1
    (event,) = events()
    assert (event.event_type, event.outcome) == ("transaction_settled", Outcome.SETTLED)


def test_a_pending_bank_sale_told_twice_books_one_payment(
    sandbox, braintree_gateway, make_invoice, run_for
):
    sandbox.webhooks.twice = 1.0
    invoice = make_invoice(token="bank_tok_approve", gateway=braintree_gateway)
    run_for()
    assert charge_of(invoice).status == S.REQUIRES_REVIEW  # settlement_pending: not yet paid
    assert count(Payment) == 0
    wait_for(lambda: len(sandbox.webhooks.delivered) == 2)
    assert [e.outcome for e in events()] == [Outcome.SETTLED]
    assert charge_of(invoice).status == S.SUCCESS
    assert count(Payment) == 1
    assert db.session.scalars(select(WebhookEvent.event_type)).all() == ["transaction_settled"]
