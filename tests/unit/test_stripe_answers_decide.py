"""What decides a Stripe answer's status: an error's decline code, else its code, else what a card
error is at all; every code on Stripe's published decline-code list has its own line; and an
error answer's own error decides it, never the payment intent it carries when that intent is not
this request's (docs.stripe.com/declines/codes, /error-codes, /api/errors)."""

import json

import pytest

from portal.gateways.base import GatewayConfig
from portal.gateways.registry import plugin
from portal.statuses import GatewayStatus

S = GatewayStatus


@pytest.fixture
def stripe():
    return plugin("stripe", GatewayConfig("https://api.stripe.com", {"secret_key": "sk_test_x"}))


def card_error(**fields):
    return json.dumps({"error": {"type": "card_error", "message": "Your card was declined.",
                                 **fields}})  # fmt: skip


# docs.stripe.com/declines/codes, "Card decline codes": every code the page lists.
PUBLISHED_DECLINE_CODES = (
    "authentication_required", "approve_with_id", "call_issuer", "card_not_supported",
    "card_velocity_exceeded", "currency_not_supported", "do_not_honor", "do_not_try_again",
    "duplicate_transaction", "expired_card", "fraudulent", "generic_decline", "incorrect_number",
    "incorrect_cvc", "incorrect_pin", "incorrect_zip", "insufficient_funds", "invalid_account",
    "invalid_amount", "invalid_cvc", "invalid_expiry_month", "invalid_expiry_year",
    "invalid_number", "invalid_pin", "issuer_not_available", "lost_card", "merchant_blacklist",
    "new_account_information_available", "no_action_taken", "not_permitted",
    "offline_pin_required", "online_or_offline_pin_required", "pickup_card", "pin_try_exceeded",
    "processing_error", "reenter_transaction", "restricted_card",
    "revocation_of_all_authorizations", "revocation_of_authorization", "security_violation",
    "service_not_allowed", "stolen_card", "stop_payment_order", "testmode_decline",
    "transaction_not_allowed", "try_again_later", "withdrawal_count_limit_exceeded",
)  # fmt: skip
# docs.stripe.com/error-codes: the error codes a card error carries, read when its decline code
# is missing or unlisted.
CARD_ERROR_CODES = (
    "card_declined", "expired_card", "incorrect_cvc", "incorrect_number", "incorrect_zip",
    "incorrect_address", "invalid_cvc", "invalid_number", "invalid_expiry_month",
    "invalid_expiry_year", "processing_error", "authentication_required", "insufficient_funds",
    "card_decline_rate_limit_exceeded",
)  # fmt: skip


# 1. A decline code Settle does not know is read through the error's code, still marked unmapped.


def test_an_unlisted_decline_code_on_a_declined_card_is_a_decline_marked_unmapped(stripe):
    result = stripe.interpret(402, {}, card_error(code="card_declined", decline_code="zz_new"))
    assert (result.status, result.code, result.unmapped) == (S.DECLINE, "zz_new", True)
    assert "card_declined" in result.rule and "unmapped" in result.rule
    assert "zz_new" in result.guidance


def test_an_unlisted_decline_code_on_an_expired_card_asks_for_the_method_to_be_updated(stripe):
    result = stripe.interpret(402, {}, card_error(code="expired_card", decline_code="zz_new"))
    assert (result.status, result.code, result.unmapped) == (S.VALIDATION_ERROR, "zz_new", True)


def test_a_card_error_without_a_decline_code_is_read_by_its_code(stripe):
    result = stripe.interpret(402, {}, card_error(code="incorrect_zip"))
    assert (result.status, result.code, result.unmapped) == (S.VALIDATION_ERROR, "incorrect_zip", False)  # fmt: skip


def test_a_card_error_whose_codes_are_all_unlisted_is_a_decline_marked_unmapped(stripe):
    result = stripe.interpret(402, {}, card_error(code="zz_code", decline_code="zz_decline"))
    assert (result.status, result.code, result.unmapped) == (S.DECLINE, "zz_decline", True)
    only_code = stripe.interpret(402, {}, card_error(code="zz_code"))
    assert (only_code.status, only_code.code, only_code.unmapped) == (S.DECLINE, "zz_code", True)


def test_a_card_error_with_no_code_at_all_is_a_decline_marked_unmapped(stripe):
    result = stripe.interpret(402, {}, card_error())
    assert (result.status, result.code, result.unmapped) == (S.DECLINE, "card_error_402", True)
    assert result.message == "Your card was declined."


def test_an_unlisted_code_of_another_error_is_read_by_its_type_and_still_marked(stripe):
    body = json.dumps({"error": {"type": "invalid_request_error", "code": "zz_new_request"}})
    result = stripe.interpret(401, {}, body)
    assert (result.status, result.code, result.unmapped) == (S.SYSTEM_FAIL, "zz_new_request", True)
    assert "(invalid_request_error_401): zz_new_request unmapped" in result.rule


# 2. Every published decline code, and every card error code read in its place, has a line.


@pytest.mark.parametrize("code", PUBLISHED_DECLINE_CODES + CARD_ERROR_CODES)
def test_every_published_stripe_card_code_has_its_own_line(stripe, code):
    entry = stripe.mapping.codes.get(code)
    assert entry is not None, f"{code} is not in stripe/codes.yaml"
    assert entry.description and entry.guidance


@pytest.mark.parametrize(
    "code",
    ["fraudulent", "stolen_card", "lost_card", "pickup_card", "merchant_blacklist",
     "stop_payment_order", "revocation_of_authorization", "revocation_of_all_authorizations",
     "security_violation", "do_not_try_again", "invalid_account", "testmode_decline"],
)  # fmt: skip
def test_a_card_that_must_never_be_charged_again_is_a_permanent_fail(stripe, code):
    result = stripe.interpret(402, {}, card_error(code="card_declined", decline_code=code))
    assert (result.status, result.unmapped) == (S.PERMANENT_FAIL, False)


@pytest.mark.parametrize(
    ("code", "status"),
    [("approve_with_id", S.DECLINE), ("reenter_transaction", S.DECLINE),
     ("no_action_taken", S.DECLINE), ("withdrawal_count_limit_exceeded", S.DECLINE),
     ("new_account_information_available", S.VALIDATION_ERROR),
     ("incorrect_address", S.VALIDATION_ERROR),
     ("duplicate_transaction", S.INDETERMINATE)],
)  # fmt: skip
def test_soft_declines_retry_wrong_data_asks_for_an_update_and_a_duplicate_is_looked_up(
    stripe, code, status
):
    result = stripe.interpret(402, {}, card_error(code="card_declined", decline_code=code))
    assert (result.status, result.unmapped) == (status, False)


# 5. An error answer's own error decides it; the intent it carries counts only when it is this
#    request's own.

SUCCEEDED_INTENT = {"id": "pi_3MtwBw", "object": "payment_intent", "amount": 2000,
                    "currency": "usd", "status": "succeeded"}  # fmt: skip


@pytest.mark.parametrize(
    ("http", "error"),
    [(400, {"type": "invalid_request_error", "code": "charge_disputed",
            "message": "Charge ch_1 has been charged back; cannot issue a refund."}),
     (400, {"type": "invalid_request_error", "code": "zz_refund_trouble"}),
     (400, {"type": "invalid_request_error"}),
     (402, {"type": "card_error", "code": "card_declined", "decline_code": "zz_new"})],
)  # fmt: skip
def test_a_failed_refund_carrying_the_succeeded_charge_is_never_a_successful_refund(
    stripe, http, error
):
    body = json.dumps({"error": {**error, "payment_intent": SUCCEEDED_INTENT}})
    result = stripe.interpret(http, {}, body, "refund")
    assert result.status is not S.SUCCESS
    # The intent is the charge being refunded, not this refund: its id is not the refund's.
    assert result.reference is None


def test_a_declined_charge_still_names_the_intent_it_created(stripe):
    declined = {**SUCCEEDED_INTENT, "status": "requires_payment_method"}
    body = card_error(code="card_declined", decline_code="zz_new", payment_intent=declined)
    result = stripe.interpret(402, {}, body, "charge")
    assert (result.status, result.reference) == (S.DECLINE, "pi_3MtwBw")


def test_a_charge_error_is_decided_by_its_error_even_if_the_intent_it_carries_says_succeeded(
    stripe,
):
    body = card_error(code="card_declined", decline_code="do_not_honor",
                      payment_intent=SUCCEEDED_INTENT)  # fmt: skip
    assert stripe.interpret(402, {}, body, "charge").status is S.DECLINE
