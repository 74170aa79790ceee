"""The Stripe plugin reads Stripe's answers: bodies shaped as Stripe's API reference shows them
(docs.stripe.com/api/errors, /api/payment_intents/object, /api/refunds/object,
/api/payment_intents/search), with the ids shortened."""

import json
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.statuses import GatewayStatus

S = GatewayStatus


@pytest.fixture
def stripe():
    return plugin("stripe", GatewayConfig("https://api.stripe.com", {"secret_key": "sk_test_x"}))


def intent(status="succeeded", **extra):
    return {"id": "pi_3MtwBw", "object": "payment_intent", "amount": 2000, "currency": "usd",
            "status": status, "created": 1680800504,
            "metadata": {"invoice": "INV-1", "settle_key": "k1"}, **extra}  # fmt: skip


# docs.stripe.com/declines/codes and /api/errors: a card error with its decline code and intent.
CARD_DECLINED = {
    "error": {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        "message": "Your card has insufficient funds.",
        "payment_intent": {"id": "pi_3MtwBw", "object": "payment_intent", "status": "requires_payment_method"},
        "type": "card_error",
    }
}  # fmt: skip


@pytest.mark.parametrize(
    ("http", "body", "status", "code"),
    [
        (200, intent(), S.SUCCESS, "charge.succeeded"),
        (200, intent("requires_action"), S.REQUIRES_REVIEW, "charge.requires_action"),
        (200, intent("processing"), S.REQUIRES_REVIEW, "charge.processing"),
        (200, intent("requires_capture"), S.REQUIRES_REVIEW, "charge.requires_capture"),
        (402, CARD_DECLINED, S.DECLINE, "insufficient_funds"),
        (402, {"error": {"type": "card_error", "code": "expired_card", "message": "Your card has expired."}},
         S.VALIDATION_ERROR, "expired_card"),
        (402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": "stolen_card"}},
         S.PERMANENT_FAIL, "stolen_card"),
        (402, {"error": {"type": "card_error", "code": "authentication_required"}},
         S.REQUIRES_REVIEW, "authentication_required"),
        (401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****x"}},
         S.SYSTEM_FAIL, "invalid_request_error_401"),
        (409, {"error": {"type": "idempotency_error", "code": "idempotency_key_in_use"}},
         S.INDETERMINATE, "idempotency_key_in_use"),
        (429, {"error": {"type": "invalid_request_error", "code": "rate_limit"}},
         S.SYSTEM_FAIL, "rate_limit"),
        (500, {"error": {"type": "api_error", "message": "An unknown error occurred"}},
         S.INDETERMINATE, "api_error_500"),
        (502, {}, S.INDETERMINATE, "http_502"),
    ],
)  # fmt: skip
def test_a_charge_answer_takes_its_status_from_the_mapping(stripe, http, body, status, code):
    result = stripe.interpret(http, {}, json.dumps(body), "charge")
    assert (result.status, result.code) == (status, code)
    assert not result.unmapped


def test_a_card_error_names_the_intent_it_left(stripe):
    assert stripe.interpret(402, {}, json.dumps(CARD_DECLINED)).reference == "pi_3MtwBw"


def test_an_unknown_code_falls_back_to_the_default_and_is_marked(stripe):
    body = {"error": {"type": "new_error_type", "code": "new_code_2027"}}
    result = stripe.interpret(400, {}, json.dumps(body))
    assert (result.status, result.unmapped) == (S.SYSTEM_FAIL, True)
    assert result.rule == "stripe/codes.yaml: unmapped, default System Fail"


def test_follow_ups_read_their_own_objects(stripe):
    canceled = stripe.interpret(200, {}, json.dumps(intent("canceled")), "void")
    assert (canceled.status, canceled.code) == (S.SUCCESS, "void.canceled")
    refund = {"id": "re_3Mtw", "object": "refund", "amount": 1000, "currency": "usd",
              "payment_intent": "pi_3MtwBw", "status": "pending"}  # fmt: skip
    pending = stripe.interpret(200, {}, json.dumps(refund), "refund")
    assert (pending.status, pending.reference) == (S.REQUIRES_REVIEW, "re_3Mtw")
    # A refund answered with an intent is not read as a refund.
    assert stripe.interpret(200, {}, json.dumps(intent()), "refund").status is S.INDETERMINATE


def test_a_lookup_reads_what_stripe_holds_of_each_intent(stripe):
    refunded = intent(latest_charge={"id": "ch_1", "object": "charge", "refunded": True})
    body = {"object": "search_result", "url": "/v1/payment_intents/search", "has_more": False,
            "data": [intent(), refunded, intent("requires_capture"), intent("canceled"),
                     intent("requires_payment_method")]}  # fmt: skip
    result = stripe.interpret(200, {}, json.dumps(body), "lookup")
    assert result.status is S.SUCCESS
    states = [f.state for f in result.findings]
    assert states == [Settlement.SETTLED, Settlement.REFUNDED, Settlement.UNSETTLED,
                      Settlement.VOIDED, Settlement.DECLINED]  # fmt: skip
    first = result.findings[0]
    assert (first.amount, first.key, first.order_id) == (Money.parse("20.00", "USD"), "k1", "INV-1")
    assert stripe.interpret_finding(first).code == "charge.succeeded"
    broken = stripe.interpret(
        200, {}, json.dumps({"object": "search_result", "data": [{"id": 1}]}), "lookup"
    )
    assert broken.status is S.INDETERMINATE


def charge_of(amount=2000, refunded_minor=0, **extra):
    return {"id": "ch_3MtwBw", "object": "charge", "amount": amount, "amount_captured": amount,
            "amount_refunded": refunded_minor, "currency": "usd",
            "refunded": refunded_minor == amount, **extra}  # fmt: skip


def found_in(stripe, body):
    (found,) = stripe.interpret(200, {}, json.dumps(body), "lookup").findings
    return found


def test_a_lookup_of_a_partly_refunded_charge_says_how_much_went_back(stripe):
    found = found_in(stripe, intent(latest_charge=charge_of(refunded_minor=500)))
    assert (found.state, found.amount) == (Settlement.SETTLED, Money.parse("20.00", "USD"))
    assert found.refunded == Money.parse("5.00", "USD")
    assert found.partly_refunded and found.held == Money.parse("15.00", "USD")


def test_a_lookup_of_a_wholly_refunded_charge_says_refunded_with_the_whole_amount(stripe):
    found = found_in(stripe, intent(latest_charge=charge_of(refunded_minor=2000)))
    assert (found.state, found.refunded) == (Settlement.REFUNDED, Money.parse("20.00", "USD"))
    assert found.held is None


def test_a_lookup_reads_the_refunds_list_where_the_amount_refunded_is_not_told(stripe):
    refunds = {"object": "list", "has_more": False, "data": [
        {"id": "re_1", "object": "refund", "amount": 300, "currency": "usd", "status": "succeeded"},
        {"id": "re_2", "object": "refund", "amount": 700, "currency": "usd", "status": "failed"},
    ]}  # fmt: skip
    latest = {"id": "ch_1", "object": "charge", "refunded": False, "refunds": refunds}
    found = found_in(stripe, intent(latest_charge=latest))
    assert (found.state, found.refunded) == (Settlement.SETTLED, Money.parse("3.00", "USD"))


def test_a_lookup_that_tells_nothing_of_refunds_leaves_refunded_unknown(stripe):
    found = found_in(stripe, intent(latest_charge="ch_1"))
    assert (found.state, found.refunded) == (Settlement.SETTLED, None)


def test_every_request_is_pinned_to_one_stripe_api_version(stripe):
    ten = Money.parse("10.00", "USD")
    period = (datetime(2026, 1, 1), datetime(2026, 1, 2))
    requests = [
        ("charge", GatewayRequest("charge", "k", "INV-1", ten, "pm_1")),
        ("refund", GatewayRequest("refund", "k", "INV-1", ten, reference="pi_1")),
        ("void", GatewayRequest("void", "k", "INV-1", reference="pi_1")),
        ("lookup", GatewayRequest("lookup", "k", "INV-1", reference="pi_1")),
        ("lookup", GatewayRequest("lookup", "k", "INV-1", original_key="k0")),
        ("list", GatewayRequest("list", "", "", period=period)),
    ]
    for operation, request in requests:
        assert stripe.build(operation, request).headers["Stripe-Version"] == "2024-06-20"


def test_a_lookup_asks_by_id_when_it_knows_it_and_searches_with_a_quoted_value_when_not(stripe):
    by_id = stripe.build("lookup", GatewayRequest("lookup", "k", "INV-1", reference="pi_1"))
    assert urlsplit(by_id.url).path == "/v1/payment_intents/pi_1" and by_id.method == "GET"
    searched = stripe.build("lookup", GatewayRequest("lookup", "k", "INV-1", original_key="it's"))
    query = parse_qs(urlsplit(searched.url).query)["query"][0]
    assert query == "metadata['settle_key']:'it\\'s'"
    assert "Idempotency-Key" not in searched.headers  # a GET changes nothing


def test_a_zero_decimal_currency_is_sent_in_whole_units(stripe):
    call = stripe.build(
        "charge", GatewayRequest("charge", "k", "INV-1", Money.parse("15000", "JPY"), "pm_1")
    )
    form = parse_qs(call.body)
    assert (form["amount"], form["currency"]) == (["15000"], ["jpy"])


def _signed(secret: str, body: bytes, at: int) -> dict:
    import hashlib
    import hmac

    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={at},v1={digest},v0=ignored"}


def test_a_webhook_is_verified_by_its_signed_timestamp_and_body(stripe):
    import time

    secret = "whsec_test_secret"
    body = b'{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}'
    now = int(time.time())
    creds = {"webhook_secret": secret}
    assert stripe.verify_webhook(_signed(secret, body, now), body, creds)
    lower = {k.lower(): v for k, v in _signed(secret, body, now).items()}
    assert stripe.verify_webhook(lower, body, creds)  # header names are case-insensitive
    # Tampered copies: another body, another secret, an old timestamp, no signature, no secret.
    assert not stripe.verify_webhook(_signed(secret, body, now), body + b" ", creds)
    assert not stripe.verify_webhook(_signed("whsec_other", body, now), body, creds)
    assert not stripe.verify_webhook(_signed(secret, body, now - 301), body, creds)
    assert not stripe.verify_webhook({"Stripe-Signature": f"t={now}"}, body, creds)
    assert not stripe.verify_webhook({}, body, creds)
    assert not stripe.verify_webhook(_signed("", body, now), body, {})
    header = _signed(secret, body, now)["Stripe-Signature"]
    swapped = {"Stripe-Signature": header.replace(f"t={now}", f"t={now + 1}")}
    assert not stripe.verify_webhook(swapped, body, creds)  # the timestamp is signed too
    # Text a forger may send that is not ASCII is refused, not a crash.
    assert not stripe.verify_webhook({"Stripe-Signature": f"t={now},v1=é"}, body, creds)
    assert not stripe.verify_webhook({"Stripe-Signature": "t=١٧٠٠,v1=ab"}, body, creds)
    assert not stripe.verify_webhook({"Stripe-Signature": f"t=x,{header}"}, body, creds)


def test_other_providers_verify_no_webhook_yet():
    other = plugin("sandbox", GatewayConfig("http://127.0.0.1:9", {"api_key": "k"}))
    assert other.verify_webhook({"Stripe-Signature": "t=1,v1=0"}, b"{}", {}) is False


def _event(kind, thing, event_id="evt_1NG8Du"):
    # docs.stripe.com/api/events/object: the object as it stands after the event, in data.object.
    return json.dumps({"id": event_id, "object": "event", "api_version": "2024-06-20",
                       "created": 1680800600, "type": kind, "data": {"object": thing}}).encode()  # fmt: skip


def test_an_intents_outcome_events_are_final_and_mapped_like_its_answers(stripe):
    (notice,) = stripe.read_webhook(_event("payment_intent.succeeded", intent()))
    assert (notice.operation, notice.final, notice.reference, notice.key) == (
        "charge", True, "pi_3MtwBw", "k1",
    )  # fmt: skip
    assert notice.amount == Money.parse("20.00", "USD") and notice.order_id == "INV-1"
    assert (notice.result.status, notice.result.code, notice.result.event) == (
        S.SUCCESS, "charge.succeeded", "evt_1NG8Du",
    )  # fmt: skip
    error = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
             "message": "Your card has insufficient funds."}  # fmt: skip
    failed = intent("requires_payment_method", last_payment_error=error)
    (notice,) = stripe.read_webhook(_event("payment_intent.payment_failed", failed))
    assert notice.final and (notice.result.status, notice.result.code) == (
        S.DECLINE, "insufficient_funds",
    )  # fmt: skip
    (notice,) = stripe.read_webhook(_event("payment_intent.canceled", intent("canceled")))
    assert (notice.operation, notice.final, notice.result.status) == ("void", True, S.SUCCESS)


def test_progress_events_are_not_final_and_other_events_are_not_acted_on(stripe):
    for kind, status in [("payment_intent.created", "requires_confirmation"),
                         ("payment_intent.processing", "processing"),
                         ("payment_intent.requires_action", "requires_action")]:  # fmt: skip
        (notice,) = stripe.read_webhook(_event(kind, intent(status)))
        assert notice.operation == "charge" and not notice.final
    (notice,) = stripe.read_webhook(
        _event("customer.created", {"id": "cus_1", "object": "customer"})
    )
    assert (notice.operation, notice.result) == (None, None)


def test_a_refund_event_is_final_once_the_refund_is_decided(stripe):
    refund = {"id": "re_1", "object": "refund", "amount": 2000, "currency": "usd",
              "payment_intent": "pi_3MtwBw", "status": "pending", "metadata": {"settle_key": "k2"}}  # fmt: skip
    (pending,) = stripe.read_webhook(_event("refund.created", refund))
    (done,) = stripe.read_webhook(_event("refund.updated", {**refund, "status": "succeeded"}))
    assert (pending.operation, pending.final, done.final) == ("refund", False, True)
    assert (done.reference, done.key, done.result.status) == ("re_1", "k2", S.SUCCESS)


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"object": "event"}', b'{"id": "e", "object": "list",'
             b' "type": "x", "created": 1, "data": {"object": {}}}'],
)  # fmt: skip
def test_a_body_that_is_not_a_stripe_event_is_unreadable(stripe, body):
    from portal.gateways.webhooks import UnreadableWebhook

    with pytest.raises(UnreadableWebhook):
        stripe.read_webhook(body)
