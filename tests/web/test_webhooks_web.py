"""POST /webhooks/<gateway id> as an attacker and as Stripe would send it, and the clerk's list of
gateway events: a refused delivery changes nothing but a counter; an event never books money
that no transaction asked for; a disagreeing one goes to a clerk."""

import hashlib
import hmac
import json
import time
import uuid

from sqlalchemy import func, select

from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.sandbox.server import sandbox_credentials
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.transactions.models import PaymentTransaction
from portal.webhooks.models import Outcome, WebhookEvent

S = GatewayStatus
SECRET = sandbox_credentials("stripe")["webhook_secret"]


def event(kind="payment_intent.succeeded", *, intent="pi_x", key=None, amount=10000,
          status="succeeded", event_id=None, **extra) -> bytes:  # fmt: skip
    thing = {"id": intent, "object": "payment_intent", "amount": amount, "currency": "usd",
             "status": status, "metadata": {"settle_key": key or "", "invoice": "INV-0001"}, **extra}  # fmt: skip
    return json.dumps({"id": event_id or f"evt_{uuid.uuid4().hex[:12]}", "object": "event",
                       "type": kind, "created": int(time.time()), "data": {"object": thing}}).encode()  # fmt: skip


def signed(body: bytes, secret: str = SECRET) -> dict:
    stamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


def post(client, gateway, body: bytes, headers=None):
    return client.post(f"/webhooks/{gateway.id}", data=body,
                       headers=signed(body) if headers is None else headers)  # fmt: skip


def charged(make_invoice, run_for, gateway, token) -> PaymentTransaction:
    invoice = make_invoice(token=f"cus_demo|{token}", gateway=gateway)
    run_for()
    return db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    ).one()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_forged_or_tampered_delivery_is_refused_changes_nothing_and_is_counted(
    client, stripe_gateway, make_invoice, run_for
):
    txn = charged(make_invoice, run_for, stripe_gateway, "tok_timeout")
    body = event(intent=txn.provider_reference, key=txn.idempotency_key)
    forged = post(client, stripe_gateway, body, signed(body, "whsec_someone_else"))
    tampered = post(client, stripe_gateway, body.replace(b"10000", b"99"), signed(body))
    unsigned = post(client, stripe_gateway, body, {})
    assert [r.status_code for r in (forged, tampered, unsigned)] == [401, 401, 401]
    assert "signature does not verify" in forged.get_data(as_text=True)
    assert count(WebhookEvent) == 0
    db.session.expire_all()
    assert db.session.get(PaymentTransaction, txn.id).status == S.INDETERMINATE
    gateway = db.session.get(Gateway, stripe_gateway.id)
    assert gateway.webhooks_refused == 3 and "signature" in gateway.webhook_refused_reason


def test_an_unknown_gateway_a_malformed_body_and_a_missing_secret_are_refused(
    client, stripe_gateway, make_gateway
):
    assert client.post("/webhooks/9999", data=b"{}").status_code == 404
    garbled = b'{"id": "evt_1", "object": "event"'
    assert post(client, stripe_gateway, garbled).status_code == 400
    sandbox_gateway = make_gateway()  # Settle's own sandbox provider sends no webhooks
    assert post(client, sandbox_gateway, event()).status_code == 404
    stripe_gateway.credentials = {"secret_key": "sk_test_settle_sandbox_stripe"}
    db.session.commit()
    assert post(client, stripe_gateway, event()).status_code == 401
    assert count(WebhookEvent) == 0
    db.session.expire_all()
    assert db.session.get(Gateway, stripe_gateway.id).webhooks_refused == 2


def test_a_webhook_needs_no_login_and_no_csrf_token(app, stripe_gateway):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        answer = app.test_client().post(f"/webhooks/{stripe_gateway.id}", data=event(),
                                        headers=signed(event()))  # fmt: skip
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert answer.status_code in (200, 401)  # the signature decides, never a session or CSRF


def test_a_redelivery_is_answered_200_and_changes_nothing(
    client, stripe_gateway, make_invoice, run_for
):
    txn = charged(make_invoice, run_for, stripe_gateway, "tok_timeout")
    body = event(intent=txn.provider_reference, key=txn.idempotency_key, event_id="evt_once")
    first, again = post(client, stripe_gateway, body), post(client, stripe_gateway, body)
    assert (first.status_code, again.status_code) == (200, 200)
    assert "received before" in again.get_data(as_text=True)
    assert count(WebhookEvent) == 1 and count(Payment) == 1
    db.session.expire_all()
    assert db.session.get(PaymentTransaction, txn.id).status == S.SUCCESS


def test_an_event_for_a_charge_settle_never_sent_books_nothing_and_waits_for_a_clerk(
    client, login, make_user, stripe_gateway
):
    body = event(intent="pi_never_sent", key="not-a-settle-key")
    assert post(client, stripe_gateway, body).status_code == 200
    row = db.session.scalars(select(WebhookEvent)).one()
    assert row.outcome == Outcome.UNMATCHED and row.transaction_id is None
    assert count(Payment) == 0
    login(make_user("auditor"))
    page = client.get("/webhooks/").get_data(as_text=True)
    assert "pi_never_sent" in page and "Mark handled" not in page  # an auditor only reads
    assert client.post(f"/webhooks/events/{row.id}/handled").status_code == 403
    client.post("/logout")
    login(make_user("clerk"))
    done = client.post(f"/webhooks/events/{row.id}/handled", data={"note": "a test charge"},
                       follow_redirects=True)  # fmt: skip
    assert "marked handled" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(WebhookEvent, row.id).handled_note == "a test charge"
    assert "No gateway event waits for a clerk." in client.get("/webhooks/").get_data(as_text=True)


def test_an_event_with_another_amount_changes_nothing_and_goes_to_a_clerk(
    client, stripe_gateway, make_invoice, run_for
):
    txn = charged(make_invoice, run_for, stripe_gateway, "tok_timeout")
    body = event(intent=txn.provider_reference, key=txn.idempotency_key, amount=5000)
    assert post(client, stripe_gateway, body).status_code == 200
    row = db.session.scalars(select(WebhookEvent)).one()
    assert row.outcome == Outcome.FOR_A_CLERK and "50.00 USD" in row.note
    db.session.expire_all()
    assert db.session.get(PaymentTransaction, txn.id).status == S.INDETERMINATE
    assert count(Payment) == 0


def test_an_event_that_contradicts_a_decided_answer_goes_to_a_clerk(
    client, stripe_gateway, make_invoice, run_for
):
    txn = charged(make_invoice, run_for, stripe_gateway, "tok_decline")
    body = event(intent=txn.provider_reference, key=txn.idempotency_key)  # "it succeeded"
    assert post(client, stripe_gateway, body).status_code == 200
    row = db.session.scalars(select(WebhookEvent)).one()
    assert row.outcome == Outcome.FOR_A_CLERK
    db.session.expire_all()
    txn = db.session.get(PaymentTransaction, txn.id)
    assert txn.status == S.DECLINE and count(Payment) == 0  # no money booked on its word
    # ... but money may have moved, so the invoice is locked for a clerk.
    assert db.session.get(Invoice, txn.invoice_id).corrective_action == ACTION_REQUIRED


def test_a_charge_a_clerk_finalized_keeps_the_clerks_record(
    client, stripe_gateway, make_invoice, run_for, make_user
):
    from portal.transactions import finalize

    txn = charged(make_invoice, run_for, stripe_gateway, "tok_timeout")
    outcome = finalize.refund_and_unlock(txn.id, make_user("clerk"))
    assert outcome.unlocked, outcome.problems
    body = event(intent=txn.provider_reference, key=txn.idempotency_key)
    assert post(client, stripe_gateway, body).status_code == 200
    row = db.session.scalars(select(WebhookEvent)).one()
    assert row.outcome == Outcome.NO_CHANGE and "Already finalized" in row.note
    db.session.expire_all()
    assert db.session.get(PaymentTransaction, txn.id).status == S.INDETERMINATE
    assert count(Payment) == 0


def test_a_charge_being_refunded_and_unlocked_is_not_changed_under_the_clerk(
    client, stripe_gateway, make_invoice, run_for, make_user
):
    from portal import clock

    txn = charged(make_invoice, run_for, stripe_gateway, "tok_timeout")
    clerk = make_user("clerk")
    txn.invoice.finalizing_by_id, txn.invoice.finalizing_at = clerk.id, clock.now()
    db.session.commit()
    body = event(intent=txn.provider_reference, key=txn.idempotency_key)
    assert post(client, stripe_gateway, body).status_code == 200
    assert db.session.scalars(select(WebhookEvent)).one().outcome == Outcome.FOR_A_CLERK
    assert count(Payment) == 0


def test_the_transaction_page_and_its_review_show_what_the_gateway_says(
    client, login, make_user, stripe_gateway, make_invoice, run_for
):
    txn = charged(make_invoice, run_for, stripe_gateway, "tok_timeout")
    body = event(intent=txn.provider_reference, key=txn.idempotency_key, event_id="evt_shown")
    post(client, stripe_gateway, body)
    login(make_user("auditor"))
    page = client.get(f"/transactions/{txn.id}").get_data(as_text=True)
    assert "The gateway says" in page and "evt_shown" in page and "settled" in page
    review = client.get(f"/transactions/{txn.id}/review").get_data(as_text=True)
    assert "The gateway says" in review and "evt_shown" in review
    gateways = client.get("/gateways/").get_data(as_text=True)
    assert f"/webhooks/{stripe_gateway.id}" in gateways and "webhook_secret=set" in gateways


def test_a_late_success_after_a_refund_went_through_books_nothing(
    client, stripe_gateway, make_invoice, run_for, make_user, monkeypatch
):
    """Refund & Unlock refunded the charge but could not unlock (another problem), so the charge
    is still Indeterminate and open; a retried "it succeeded" must not book the refunded money."""
    from portal.transactions import finalize, lookups

    txn = charged(make_invoice, run_for, stripe_gateway, "tok_timeout")
    monkeypatch.setattr(lookups, "find_unexplained", lambda undone, actor: ([], ["listing failed"]))
    outcome = finalize.refund_and_unlock(txn.id, make_user("clerk"))
    assert not outcome.unlocked and any("went through" in a for a in outcome.actions)
    body = event(intent=txn.provider_reference, key=txn.idempotency_key)
    assert post(client, stripe_gateway, body).status_code == 200
    row = db.session.scalars(select(WebhookEvent)).one()
    assert row.outcome == Outcome.FOR_A_CLERK and "refund #" in row.note
    db.session.expire_all()
    assert db.session.get(PaymentTransaction, txn.id).status == S.INDETERMINATE
    assert count(Payment) == 0
    assert db.session.get(Invoice, txn.invoice_id).corrective_action == ACTION_REQUIRED


def test_a_success_for_a_charge_unlocked_as_never_sent_books_the_payment_the_invoice_owes(
    client, stripe_gateway, make_invoice, run_for, make_user
):
    from portal.transactions import finalize

    txn = charged(make_invoice, run_for, stripe_gateway, "tok_refuse")  # a 401: System Fail
    txn.request_sent = False  # as when the connection was refused
    db.session.commit()
    finalize.unlock_unsent(txn.id, make_user("clerk"))
    assert db.session.get(Invoice, txn.invoice_id).corrective_action is None
    body = event(intent="pi_later", key=txn.idempotency_key)
    assert post(client, stripe_gateway, body).status_code == 200
    row = db.session.scalars(select(WebhookEvent)).one()
    assert row.outcome == Outcome.SETTLED
    db.session.expire_all()
    invoice = db.session.get(Invoice, txn.invoice_id)
    assert (invoice.corrective_action, invoice.balance) == (None, 0)
    assert count(Payment) == 1  # the money the gateway took, booked: no run charges it again
    assert "Unlocked: never sent" in db.session.get(PaymentTransaction, txn.id).reason


def test_marking_handled_needs_a_login_and_names_a_missing_event(client, login, make_user):
    anonymous = client.post("/webhooks/events/1/handled", data={"note": "x"})
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert client.get("/webhooks/").status_code == 302
    login(make_user("clerk"))
    page = client.post("/webhooks/events/424242/handled", data={"note": "x"},
                       follow_redirects=True)  # fmt: skip
    assert "Gateway event 424242 does not exist" in page.get_data(as_text=True)
    assert count(WebhookEvent) == 0
