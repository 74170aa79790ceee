"""The Stripe plugin against the sandbox's Stripe emulation, over real HTTP on loopback."""

import uuid
from datetime import timedelta
from urllib.parse import parse_qs

import pytest

from portal import clock
from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration
S = GatewayStatus
TEN = Money.parse("10.00", "USD")


def stripe(sandbox, timeout=0.5, **credentials):
    creds = sandbox_credentials("stripe") | credentials
    return plugin("stripe", GatewayConfig(sandbox.url_for("stripe"), creds, timeout=timeout))


def charge(gateway, token="tok_approve", key=None, amount=TEN):
    key = key or uuid.uuid4().hex
    return gateway.charge(GatewayRequest("charge", key, "INV-1", amount, token))


def follow_up(gateway, operation, reference, amount=TEN):
    request = GatewayRequest(operation, uuid.uuid4().hex, "INV-1", amount, reference=reference)
    return getattr(gateway, operation)(request)


def lookup(gateway, *, reference=None, key=None, sent_at=None):
    request = GatewayRequest("lookup", uuid.uuid4().hex, "INV-1", reference=reference,
                             original_key=key, original_at=sent_at)  # fmt: skip
    return gateway.lookup(request)


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("tok_approve", S.SUCCESS, "charge.succeeded"),
        ("cus_123|tok_approve", S.SUCCESS, "charge.succeeded"),
        ("tok_decline", S.DECLINE, "insufficient_funds"),
        ("tok_do_not_honor", S.DECLINE, "do_not_honor"),
        ("tok_cvc", S.VALIDATION_ERROR, "incorrect_cvc"),
        ("tok_address", S.VALIDATION_ERROR, "incorrect_zip"),
        ("tok_closed", S.PERMANENT_FAIL, "do_not_try_again"),
        ("tok_review", S.REQUIRES_REVIEW, "charge.requires_action"),
        ("tok_timeout", S.INDETERMINATE, "api_error_500"),
        ("tok_misconfigured", S.SYSTEM_FAIL, "invalid_request_error_403"),
        ("tok_refuse", S.SYSTEM_FAIL, "invalid_request_error_401"),
        ("tok_unknown", S.DECLINE, "sandbox_unlisted_decline"),  # read as card_declined
    ],
)
def test_each_outcome_takes_its_status_from_stripes_code(sandbox, token, status, code):
    result = charge(stripe(sandbox), token)
    assert (result.status, result.code) == (status, code)
    assert result.unmapped is (token == "tok_unknown")
    assert result.rule.startswith("stripe/codes.yaml")


def test_a_charge_is_form_encoded_in_minor_units_with_settles_key_twice(sandbox):
    key = uuid.uuid4().hex
    gateway = stripe(sandbox)
    call = gateway.build("charge", GatewayRequest("charge", key, "INV-9", Money.parse("1234", "JPY"),
                                                  "cus_9|pm_card_visa"))  # fmt: skip
    form = {k: v[0] for k, v in parse_qs(call.body).items()}
    assert call.headers["Idempotency-Key"] == key
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert (form["amount"], form["currency"]) == ("1234", "jpy")  # JPY has no minor unit
    assert (form["customer"], form["payment_method"]) == ("cus_9", "pm_card_visa")
    assert (form["confirm"], form["off_session"], form["metadata[settle_key]"]) == (
        "true",
        "true",
        key,
    )
    stored = gateway.scrub(call.body)
    assert "pm_card_visa" not in stored and "cus_9" not in stored


def test_a_repeated_key_answers_the_first_answer_even_a_500_and_charges_once(sandbox):
    gateway, key = stripe(sandbox), uuid.uuid4().hex
    first = charge(gateway, "tok_timeout", key=key)
    again = charge(gateway, "tok_timeout", key=key)
    assert first.status is again.status is S.INDETERMINATE
    assert len(sandbox.ledger.all()) == 1
    found = lookup(gateway, key=key, sent_at=clock.now() - timedelta(hours=2))
    assert found.findings[0].state is Settlement.SETTLED  # the money was taken before the 500
    assert found.findings[0].key == key


def test_a_timed_out_charge_resent_with_its_key_learns_the_first_answer(sandbox):
    key = uuid.uuid4().hex
    assert charge(stripe(sandbox, timeout=0.3), "tok_hang", key=key).status is S.INDETERMINATE
    again = charge(stripe(sandbox, timeout=5), "tok_hang", key=key)
    assert (again.status, again.code) == (S.SUCCESS, "charge.succeeded")
    assert len(sandbox.ledger.all()) == 1


def test_a_succeeded_intent_is_refunded_not_voided_and_a_review_hold_is_voided(sandbox):
    gateway = stripe(sandbox)
    paid = charge(gateway)
    refused = follow_up(gateway, "void", paid.reference)
    assert (refused.status, refused.code) == (S.SYSTEM_FAIL, "payment_intent_unexpected_state")
    refunded = follow_up(gateway, "refund", paid.reference)
    assert (refunded.status, refunded.code) == (S.SUCCESS, "refund.succeeded")
    assert refunded.reference.startswith("re_")
    twice = follow_up(gateway, "refund", paid.reference)
    assert (twice.status, twice.code) == (S.SUCCESS, "charge_already_refunded")
    assert lookup(gateway, reference=paid.reference).findings[0].state is Settlement.REFUNDED
    held = charge(gateway, "tok_review")
    assert lookup(gateway, reference=held.reference).findings[0].state is Settlement.UNSETTLED
    voided = follow_up(gateway, "void", held.reference)
    assert (voided.status, voided.code) == (S.SUCCESS, "void.canceled")
    assert lookup(gateway, reference=held.reference).findings[0].state is Settlement.VOIDED


def test_a_partly_refunded_charge_is_looked_up_as_refunded_x_of_y_until_all_went_back(sandbox):
    gateway = stripe(sandbox)
    paid = charge(gateway)
    four, six = Money.parse("4.00", "USD"), Money.parse("6.00", "USD")
    part = follow_up(gateway, "refund", paid.reference, amount=four)
    assert (part.status, part.code) == (S.SUCCESS, "refund.succeeded")
    (found,) = lookup(gateway, reference=paid.reference).findings
    assert (found.state, found.amount, found.refunded) == (Settlement.SETTLED, TEN, four)
    assert found.held == six
    too_much = follow_up(gateway, "refund", paid.reference, amount=Money.parse("6.01", "USD"))
    assert (too_much.status, too_much.code) == (S.SYSTEM_FAIL, "amount_too_large")
    rest = follow_up(gateway, "refund", paid.reference, amount=six)
    assert rest.status is S.SUCCESS and rest.reference != part.reference
    (found,) = lookup(gateway, reference=paid.reference).findings
    assert (found.state, found.refunded, found.held) == (Settlement.REFUNDED, TEN, None)
    again = follow_up(gateway, "refund", paid.reference, amount=four)
    assert (again.status, again.code) == (S.SUCCESS, "charge_already_refunded")


def test_a_lookup_by_id_finds_the_intent_and_a_search_lists_the_invoice(sandbox):
    gateway = stripe(sandbox)
    paid = charge(gateway)
    declined = charge(gateway, "tok_decline")
    by_id = lookup(gateway, reference=paid.reference)
    assert (by_id.status, by_id.code) == (S.SUCCESS, "lookup.found")
    (found,) = by_id.findings
    assert (found.state, found.amount, found.order_id) == (Settlement.SETTLED, TEN, "INV-1")
    listed = lookup(gateway)  # no key: every intent of the invoice
    assert {f.state for f in listed.findings} == {Settlement.SETTLED, Settlement.DECLINED}
    assert declined.reference in {f.reference for f in listed.findings}
    assert gateway.interpret_finding(found).status is S.SUCCESS


def test_nothing_found_by_search_within_its_lag_is_no_proof_of_a_charge_never_sent(sandbox):
    gateway = stripe(sandbox)
    key = uuid.uuid4().hex
    soon = lookup(gateway, key=key, sent_at=clock.now() - timedelta(minutes=5))
    assert soon.status is S.INDETERMINATE and "lag" in soon.reason
    late = lookup(gateway, key=key, sent_at=clock.now() - timedelta(hours=2))
    assert (late.status, late.findings) == (S.SUCCESS, ())


def test_a_wrong_key_is_a_system_fail_and_no_secret_is_stored(sandbox):
    result = charge(stripe(sandbox, secret_key="sk_test_wrong"))
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "invalid_request_error_401")
    stored = str(result.raw)
    assert "sk_test_wrong" not in stored and "tok_approve" not in stored


def test_holdings_lists_the_intents_of_a_period_for_reconciliation(sandbox):
    gateway = stripe(sandbox)
    keys = [uuid.uuid4().hex for _ in range(3)]
    for key in keys:
        charge(gateway, key=key)
    since = clock.now() - timedelta(minutes=1)
    held = gateway.holdings(since, clock.now() + timedelta(minutes=1))
    assert held.problem is None
    assert sorted(f.key for f in held.findings) == sorted(keys)
    assert {f.state for f in held.findings} == {Settlement.SETTLED}
    assert gateway.holdings(since - timedelta(days=1), since).findings == ()
