"""Adyen end to end: its notifications come back from the sandbox, signed per item and with basic
auth, and they are the only word Settle gets on a payment that timed out and on every cancel or
refund: a Refund & Unlock asked of Adyen waits for it, then finishes by itself."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.sandbox.server import register_webhook
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.transactions import finalize
from portal.transactions.models import Finalization, Operation, PaymentTransaction
from portal.webhooks.models import Outcome
from tests.integration.test_webhooks import charge_of, count, events, wait_for

pytestmark = pytest.mark.integration
S = GatewayStatus


@pytest.fixture
def hooked(adyen_gateway, sandbox, portal_url):
    def hook():
        register_webhook(sandbox.url, "adyen", f"{portal_url}/webhooks/{adyen_gateway.id}")

    return hook


def follow_ups(charge) -> list[PaymentTransaction]:
    return list(db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.parent_id == charge.id)
        .order_by(PaymentTransaction.id)))  # fmt: skip


def test_a_hung_payment_is_settled_by_its_authorisation(
    sandbox, adyen_gateway, hooked, make_invoice, run_for
):
    hooked()
    invoice = make_invoice(token="shopper_1|tok_hang", gateway=adyen_gateway)
    run_for()
    assert charge_of(invoice).status == S.INDETERMINATE
    wait_for(lambda: charge_of(invoice).status == S.SUCCESS)
    txn = charge_of(invoice)
    assert txn.provider_code == "AUTHORISATION.true" and txn.provider_reference
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.corrective_action, invoice.balance) == (None, Decimal("0"))
    assert count(Payment) == 1
    assert [(e.event_type, e.outcome) for e in events()] == [("AUTHORISATION", Outcome.SETTLED)]


def test_a_refund_and_unlock_waits_for_adyens_confirmation_then_finishes_by_itself(
    sandbox, adyen_gateway, hooked, make_invoice, run_for, make_user
):
    hooked()
    invoice = make_invoice(token="shopper_1|tok_review", gateway=adyen_gateway)
    run_for()  # a Pending payment: Requires Review, locked, and nothing told of it yet
    charge = charge_of(invoice)
    assert (charge.status, charge.locked_invoice) == (S.REQUIRES_REVIEW, True)
    clerk = make_user("clerk")
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert not outcome.unlocked
    (problem,) = outcome.problems
    assert "waiting for Adyen's confirmation" in problem and "unlocks by itself" in problem
    (asked,) = follow_ups(charge)
    assert (asked.operation, asked.status, asked.provider_code) == (
        Operation.LOOKUP, S.REQUIRES_REVIEW, "lookup.received",
    )  # fmt: skip
    assert db.session.get(Invoice, invoice.id).corrective_action == ACTION_REQUIRED

    wait_for(lambda: db.session.get(Invoice, invoice.id).corrective_action is None)
    (asked,) = follow_ups(charge)
    assert (asked.status, asked.gateway_state) == (S.SUCCESS, "voided")
    charge = db.session.get(PaymentTransaction, charge.id)
    assert (charge.finalization, charge.finalized_by_id) == (
        Finalization.REFUND_AND_UNLOCK.value, clerk.id,
    )  # fmt: skip
    assert count(Payment) == 0
    assert sandbox.ledger.charge("adyen", charge.provider_reference)["state"] == "voided"
    (event,) = [e for e in events() if e.event_type == "CANCEL_OR_REFUND"]
    assert (event.outcome, event.transaction_id) == (Outcome.SETTLED, asked.id)
    finalized = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "transaction.finalized")
    ).one()
    assert finalized.actor_id == clerk.id and "the gateway confirmed" in finalized.note


def test_a_refused_reversal_leaves_the_invoice_locked_for_the_clerk(
    sandbox, adyen_gateway, hooked, make_invoice, run_for, make_user
):
    invoice = make_invoice(token="shopper_1|tok_review", gateway=adyen_gateway)
    run_for()
    charge = charge_of(invoice)
    sandbox.ledger.void("adyen", charge.provider_reference)  # cancelled at Adyen meanwhile
    hooked()
    finalize.refund_and_unlock(charge.id, make_user("clerk"))
    wait_for(lambda: any(e.event_type == "CANCEL_OR_REFUND" for e in events()))
    (asked,) = follow_ups(charge)
    assert (asked.status, asked.provider_code) == (S.DECLINE, "CANCEL_OR_REFUND.false")
    assert db.session.get(Invoice, invoice.id).corrective_action == ACTION_REQUIRED
    assert db.session.get(PaymentTransaction, charge.id).finalized_at is None


def signed_delivery(item: dict) -> tuple[dict, bytes]:
    """A notification as the sandbox's Adyen signs it (HMAC per item, basic auth)."""
    import base64
    import json

    from portal.sandbox.providers.adyen import AdyenEmulator

    creds = AdyenEmulator.credentials
    item = {"merchantAccountCode": creds["merchant_account"], "success": "true", **item}
    item["additionalData"] = {"hmacSignature": AdyenEmulator._sign(AdyenEmulator, item)}
    user = f"{creds['webhook_username']}:{creds['webhook_password']}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(user).decode()}
    body = json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})
    return headers, body.encode()


def post_to(portal_url, gateway, item):
    import requests

    headers, body = signed_delivery(item)
    answer = requests.post(f"{portal_url}/webhooks/{gateway.id}", data=body, headers=headers)
    assert answer.status_code == 200 and answer.text == "[accepted]"


def test_an_authorisation_after_the_reversal_was_asked_books_nothing(
    sandbox, adyen_gateway, hooked, portal_url, make_invoice, run_for, make_user
):
    hooked()
    sandbox.webhooks.delay = 4.0  # the reversal's confirmation comes after the authorisation
    invoice = make_invoice(token="shopper_1|tok_review", gateway=adyen_gateway)
    run_for()
    charge = charge_of(invoice)
    finalize.refund_and_unlock(charge.id, make_user("clerk"))
    amount = {"value": 10000, "currency": "USD"}
    post_to(portal_url, adyen_gateway, {"pspReference": charge.provider_reference,
            "merchantReference": charge.idempotency_key, "eventCode": "AUTHORISATION",
            "amount": amount})  # fmt: skip
    db.session.expire_all()
    assert db.session.get(PaymentTransaction, charge.id).status == S.REQUIRES_REVIEW
    assert count(Payment) == 0  # the money is on its way back: no payment on its word
    (told,) = events()
    assert told.outcome == Outcome.FOR_A_CLERK and "lookup #" in told.note
    wait_for(lambda: db.session.get(Invoice, invoice.id).corrective_action is None)
    assert count(Payment) == 0


def test_asking_again_while_adyen_has_not_confirmed_sends_nothing_and_autovoid_never_asks(
    sandbox, adyen_gateway, hooked, make_invoice, run_for, make_user
):
    hooked()
    sandbox.webhooks.delay = 30.0  # no confirmation during this test
    invoice = make_invoice(token="shopper_1|tok_review", gateway=adyen_gateway)
    run_for()
    charge = charge_of(invoice)
    outcome = finalize.refund_and_unlock(charge.id, None, voids_only=True)
    assert "a clerk decides" in outcome.problems[0] and follow_ups(charge) == []
    clerk = make_user("clerk")
    finalize.refund_and_unlock(charge.id, clerk)
    again = finalize.refund_and_unlock(charge.id, clerk)
    assert "asked already" in again.problems[0]
    assert len(follow_ups(charge)) == 1  # one reversal, never a second


def test_a_refund_that_fails_after_adyen_confirmed_it_reopens_the_charge(
    sandbox, adyen_gateway, hooked, portal_url, make_invoice, run_for, make_user
):
    hooked()
    invoice = make_invoice(token="shopper_1|tok_review", gateway=adyen_gateway)
    run_for()
    charge = charge_of(invoice)
    sandbox.ledger.settle(charge.provider_reference)  # captured: the reversal refunds it
    finalize.refund_and_unlock(charge.id, make_user("clerk"))
    wait_for(lambda: db.session.get(Invoice, invoice.id).corrective_action is None)
    (asked,) = follow_ups(charge)
    assert asked.gateway_state == "refunded"
    post_to(portal_url, adyen_gateway, {"pspReference": asked.provider_reference,
            "originalReference": charge.provider_reference, "eventCode": "REFUND_FAILED",
            "amount": {"value": 10000, "currency": "USD"}})  # fmt: skip
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).corrective_action == ACTION_REQUIRED
    charge = db.session.get(PaymentTransaction, charge.id)
    assert (charge.locked_invoice, charge.finalized_at) == (True, None)
    asked = db.session.get(PaymentTransaction, asked.id)
    assert asked.status == S.DECLINE  # no longer counts as given back
