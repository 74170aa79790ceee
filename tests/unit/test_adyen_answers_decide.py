"""An Adyen answer decides only what it tells, and only for the request it answers: a refusal
told by its text alone (an AUTHORISATION notification's reason) by Adyen's published refusal
reasons, a risk refusal never on the retry schedule, an error answer by its own error whatever
payment it carries, and a payment, cancel or refund answer only when it names this request.

Texts and numbers: docs.adyen.com/development-resources/refusal-reasons (refusalReasonCode and
refusalReason), codes 9 and above as the copies of that table agree (nayax, purse.tech, public
client code); answer shapes: Adyen/adyen-openapi@aa014f0 CheckoutService-v71.json."""

import json

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest
from portal.gateways.registry import plugin
from portal.money import Money
from portal.statuses import POLICY, GatewayStatus, MethodState

S = GatewayStatus
CREDS = {"api_key": "AQE_test", "merchant_account": "TestMerchant"}
URL = "https://checkout-test.adyen.com/v71"
TEN = Money.parse("10.00", "EUR")

# Adyen's published refusalReason texts, as the docs spell them, and their refusalReasonCode.
PUBLISHED = [
    ("Refused", 2), ("Referral", 3), ("Acquirer Error", 4), ("Blocked Card", 5),
    ("Expired Card", 6), ("Invalid Amount", 7), ("Invalid Card Number", 8),
    ("Issuer Unavailable", 9), ("Not supported", 10), ("3D Not Authenticated", 11),
    ("Not enough balance", 12), ("Acquirer Fraud", 14), ("Cancelled", 15),
    ("Shopper Cancelled", 16), ("Invalid Pin", 17), ("Pin tries exceeded", 18),
    ("Pin validation not possible", 19), ("FRAUD", 20), ("Not Submitted", 21),
    ("FRAUD-CANCELLED", 22), ("Transaction Not Permitted", 23), ("CVC Declined", 24),
    ("Restricted Card", 25), ("Revocation Of Auth", 26), ("Declined Non Generic", 27),
    ("Withdrawal amount exceeded", 28), ("Withdrawal count exceeded", 29),
    ("Issuer Suspected Fraud", 31), ("AVS Declined", 32), ("Card requires online pin", 33),
    ("No checking account available on Card", 34), ("No savings account available on Card", 35),
    ("Mobile pin required", 36), ("Contactless fallback", 37), ("Authentication required", 38),
    ("RReq not received from DS", 39), ("Current AID is in Penalty Box.", 40),
    ("CVM Required Restart Payment", 41), ("3DS Authentication Error", 42),
    ("Online PIN required", 43), ("Try another interface", 44), ("Chip downgrade mode", 45),
    ("Transaction blocked by Adyen to prevent excessive retry fees", 46),
]  # fmt: skip


@pytest.fixture
def adyen():
    return plugin("adyen", GatewayConfig(URL, CREDS))


def refused_notice(reason=None, **extra) -> bytes:
    item = {"pspReference": "7914073381342284", "merchantReference": "charge_key",
            "merchantAccountCode": "TestMerchant", "amount": {"currency": "EUR", "value": 1000},
            "eventCode": "AUTHORISATION", "success": "false", "paymentMethod": "visa", **extra}  # fmt: skip
    if reason is not None:
        item["reason"] = reason
    return json.dumps({"live": "false", "notificationItems": [
        {"NotificationRequestItem": item}]}).encode()  # fmt: skip


def told(adyen, reason):
    (notice,) = adyen.read_webhook(refused_notice(reason))
    return notice.result


# --- 1. A refusal told by its text alone -----------------------------------------------------


@pytest.mark.parametrize(("text", "number"), PUBLISHED)
def test_a_refused_authorisation_told_only_by_its_reason_text_is_read_by_that_reasons_line(
    adyen, text, number
):
    result = told(adyen, text)
    line = adyen.mapping.lookup(f"refusal.{number}")
    assert (result.code, result.status, result.unmapped) == (
        f"refusal.{number}",
        line.status,
        False,
    )
    assert result.message == text and result.reference == "7914073381342284"


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Not enough balance", S.DECLINE),
        ("CVC Declined", S.VALIDATION_ERROR),
        ("Expired Card", S.VALIDATION_ERROR),
        ("Blocked Card", S.PERMANENT_FAIL),
        ("Referral", S.REQUIRES_REVIEW),
        ("Invalid Amount", S.SYSTEM_FAIL),
    ],
)
def test_a_reason_text_gets_its_reasons_status_not_a_blanket_decline(adyen, text, status):
    assert told(adyen, text).status is status


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("cvc declined", "refusal.24"),
        ("  CVC   Declined ", "refusal.24"),
        ("NOT ENOUGH BALANCE", "refusal.12"),
        ("Current AID is in Penalty Box", "refusal.40"),  # the published text ends with a dot
        ("CVC Declined: N : CVC does not match", "refusal.24"),  # free text after a colon
        ("Refused : 05 : Do not honor", "refusal.2"),
    ],
)
def test_a_reason_text_is_matched_whatever_its_case_spacing_and_words_after_a_colon(
    adyen, text, code
):
    result = told(adyen, text)
    assert (result.code, result.unmapped) == (code, False)


def test_a_reason_text_adyen_does_not_publish_stays_a_decline_but_is_reported_unmapped(adyen):
    result = told(adyen, "Sandbox: a refusal reason no mapping knows")
    assert (result.status, result.unmapped) == (S.DECLINE, True)
    assert result.message == "Sandbox: a refusal reason no mapping knows"
    assert result.code.startswith("reason.") and len(result.code) <= 40  # provider_code column
    assert "AUTHORISATION.false" in result.rule and "unmapped" in result.rule
    assert "refusal" in result.guidance.lower()


def test_a_refused_authorisation_without_any_reason_is_still_a_mapped_decline(adyen):
    result = told(adyen, None)
    assert (result.code, result.status, result.unmapped) == (
        "AUTHORISATION.false",
        S.DECLINE,
        False,
    )


def test_a_refused_payment_answer_without_its_code_is_read_by_its_reason_text(adyen):
    body = {"pspReference": "8515131751004933", "resultCode": "Refused", "refusalReason": "FRAUD"}
    result = adyen.interpret(200, {}, json.dumps(body), "charge")
    assert (result.code, result.status) == ("refusal.20", S.PERMANENT_FAIL)
    unknown = {**body, "refusalReason": "Something new"}
    result = adyen.interpret(200, {}, json.dumps(unknown), "charge")
    assert (result.status, result.unmapped) == (S.DECLINE, True)
    assert "resultCode.Refused" in result.rule


# --- 2. A fraud tool's rejection is never retried on the schedule ----------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("20", "FRAUD"),
        ("22", "FRAUD-CANCELLED"),
        ("14", "Acquirer Fraud"),
        ("31", "Issuer Suspected Fraud"),
    ],
)
def test_a_risk_refusal_is_never_retried_and_asks_a_person_to_review_first(adyen, code, text):
    answer = {"pspReference": "P1", "resultCode": "Refused", "refusalReason": text,
              "refusalReasonCode": code}  # fmt: skip
    for result in (adyen.interpret(200, {}, json.dumps(answer), "charge"), told(adyen, text)):
        assert (result.code, result.status) == (f"refusal.{code}", S.PERMANENT_FAIL)
        assert POLICY[result.status].method_state is MethodState.INACTIVE  # off the schedule
        guidance = result.guidance.lower()
        assert "review" in guidance and "before charging" in guidance
        assert "wait for the next run" not in guidance


def test_a_fraud_cancelled_payment_answer_is_not_a_soft_decline(adyen):
    answer = {"pspReference": "P1", "resultCode": "Cancelled", "refusalReason": "FRAUD-CANCELLED",
              "refusalReasonCode": "22"}  # fmt: skip
    assert adyen.interpret(200, {}, json.dumps(answer), "charge").status is S.PERMANENT_FAIL


def test_adyens_block_against_excessive_retry_fees_is_not_retried_on_the_schedule(adyen):
    text = "Transaction blocked by Adyen to prevent excessive retry fees"
    answer = {"pspReference": "P1", "resultCode": "Refused", "refusalReason": text,
              "refusalReasonCode": "46"}  # fmt: skip
    for result in (adyen.interpret(200, {}, json.dumps(answer), "charge"), told(adyen, text)):
        assert result.status is not S.DECLINE
        assert result.status is S.PERMANENT_FAIL
        assert "wait for the next run" not in result.guidance.lower()


# --- 3. An error answer decides by its own error; an answer counts only for its request ------


ANOTHER_PAYMENT = {"pspReference": "OTHER00000000001", "resultCode": "Authorised",
                   "merchantReference": "earlier_key", "amount": {"value": 1000, "currency": "EUR"}}  # fmt: skip


@pytest.mark.parametrize("http", [200, 201])
@pytest.mark.parametrize("operation", ["charge", "refund", "void", "lookup"])
def test_an_error_envelope_in_a_2xx_answer_decides_by_its_error_not_the_payment_it_carries(
    adyen, http, operation
):
    body = {"errorCode": "010", "message": "Not allowed", "errorType": "security",
            **ANOTHER_PAYMENT, "status": "received"}  # fmt: skip
    result = adyen.interpret(http, {}, json.dumps(body), operation)
    assert result.status is not S.SUCCESS and not result.awaiting_confirmation
    assert (result.code, result.reference) == ("error.010", None)
    untyped = {"errorType": "validation", "message": "Something failed", **ANOTHER_PAYMENT,
               "status": "received"}  # fmt: skip
    result = adyen.interpret(http, {}, json.dumps(untyped), operation)
    assert result.status is S.INDETERMINATE and result.reference is None


@pytest.mark.parametrize("http", [400, 401, 403, 409, 422, 500, 503])
@pytest.mark.parametrize("operation", ["charge", "refund", "void", "lookup"])
def test_an_error_answer_carrying_another_payments_result_is_never_success(adyen, http, operation):
    for envelope in (
        {"status": http, "errorCode": "130", "message": "Reference Missing", "errorType": "validation"},
        {"status": http, "message": "Something failed", "errorType": "internal"},
        {},
    ):  # fmt: skip
        body = {**envelope, **ANOTHER_PAYMENT, "status": "received"}
        result = adyen.interpret(http, {}, json.dumps(body), operation)
        assert result.status is not S.SUCCESS and not result.awaiting_confirmation
        assert result.reference is None


class Answer:
    """What requests hands the plugin for one recorded Adyen answer."""

    def __init__(self, status: int, body: dict):
        self.status_code, self.body = status, json.dumps(body).encode()
        self.headers = {"Content-Type": "application/json"}
        self.encoding = "utf-8"

    def iter_content(self, chunk_size=1):
        yield self.body

    def close(self):
        pass


class Recorded:
    """A session that answers every request with one recorded answer."""

    def __init__(self, status: int, body: dict):
        self.answer = Answer(status, body)

    def request(self, method, url, **kwargs):
        return self.answer


def answering(status: int, body: dict):
    gateway = plugin("adyen", GatewayConfig(URL, CREDS))
    gateway.session = Recorded(status, body)
    return gateway


def follow_up(operation: str) -> GatewayRequest:
    return GatewayRequest(operation, f"{operation}_key", "INV-1",
                          TEN if operation == "refund" else None, reference="PAY1")  # fmt: skip


def received(operation: str, **changed) -> dict:
    """paymentscancels-success.json / paymentsrefunds-success.json, for this request."""
    body = {"merchantAccount": "TestMerchant", "paymentPspReference": "PAY1",
            "pspReference": "MOD1", "reference": f"{operation}_key", "status": "received"}  # fmt: skip
    if operation == "refund":
        body["amount"] = {"value": 1000, "currency": "EUR"}
    return {**body, **changed}


@pytest.mark.parametrize("operation", ["void", "refund", "lookup"])
def test_a_cancel_or_refund_answer_is_trusted_only_for_its_own_payment_and_key(operation):
    act = lambda gateway: getattr(gateway, operation)(follow_up(operation))  # noqa: E731
    mine = act(answering(201, received(operation)))
    assert (mine.status, mine.awaiting_confirmation, mine.reference) == (
        S.REQUIRES_REVIEW, True, "MOD1",
    )  # fmt: skip
    for other in (
        received(operation, paymentPspReference="PAY9"),
        received(operation, reference="someone_elses_key"),
        {k: v for k, v in received(operation).items() if k != "paymentPspReference"},
    ):
        result = act(answering(201, other))
        assert (result.status, result.awaiting_confirmation) == (S.INDETERMINATE, False)
        assert result.reference is None
    result = act(answering(201, received(operation, paymentPspReference="PAY9")))
    assert "PAY9" in result.reason


def test_a_refund_answer_for_another_amount_is_not_this_refunds():
    other = received("refund", amount={"value": 500, "currency": "EUR"})
    result = answering(201, other).refund(follow_up("refund"))
    assert (result.status, result.awaiting_confirmation) == (S.INDETERMINATE, False)


def test_a_payment_answer_for_another_merchant_reference_is_not_this_charge():
    request = GatewayRequest("charge", "charge_key", "INV-1", TEN, "shopper_1|tok")
    result = answering(200, ANOTHER_PAYMENT).charge(request)
    assert (result.status, result.reference) == (S.INDETERMINATE, None)
    assert "earlier_key" in result.reason
    refused = {"pspReference": "P9", "resultCode": "Refused", "refusalReasonCode": "12",
               "merchantReference": "earlier_key"}  # fmt: skip
    assert answering(200, refused).charge(request).status is S.INDETERMINATE
    mine = answering(200, {**ANOTHER_PAYMENT, "merchantReference": "charge_key"}).charge(request)
    assert (mine.status, mine.reference) == (S.SUCCESS, "OTHER00000000001")
