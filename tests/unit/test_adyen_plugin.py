"""The Adyen plugin reads Adyen's answers: bodies from the official library's fixtures and the
OpenAPI examples (Adyen/adyen-python-api-library@b6f4979 test/mocks/checkout, Adyen/adyen-openapi
@aa014f0 CheckoutService-v71.json), and verifies notifications against the HMAC vectors published
in the official libraries' tests (adyen-python-api-library test/UtilTest.py and
test/mocks/util/*_notification.json, adyen-node-api-library hmacValidator.spec.ts,
adyen-java-api-library HMACValidatorTest.java)."""

import base64
import json

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.gateways.webhooks import UnreadableWebhook
from portal.money import Money
from portal.statuses import GatewayStatus

S = GatewayStatus
CREDS = {"api_key": "AQE_test", "merchant_account": "TestMerchant"}


@pytest.fixture
def adyen():
    return plugin("adyen", GatewayConfig("https://checkout-test.adyen.com/v71", CREDS))


# OpenAPI example post-payments-card-direct-200, and refusals as docs.adyen.com shows them.
AUTHORISED = {"additionalData": {"authCode": "044925", "refusalReasonRaw": "AUTHORISED"},
              "pspReference": "993617895204576J", "resultCode": "Authorised",
              "merchantReference": "string"}  # fmt: skip


def refused(code, reason, result="Refused"):
    return {"pspReference": "8515131751004933", "resultCode": result,
            "refusalReason": reason, "refusalReasonCode": code}  # fmt: skip


@pytest.mark.parametrize(
    ("http", "body", "status", "code"),
    [
        (200, AUTHORISED, S.SUCCESS, "resultCode.Authorised"),
        (200, {"pspReference": "P1", "resultCode": "Pending"}, S.REQUIRES_REVIEW, "resultCode.Pending"),
        (200, {"pspReference": "P1", "resultCode": "RedirectShopper"}, S.REQUIRES_REVIEW,
         "resultCode.RedirectShopper"),
        (200, refused("2", "Refused"), S.DECLINE, "refusal.2"),
        (200, refused("12", "Not enough balance"), S.DECLINE, "refusal.12"),
        (200, refused("24", "CVC Declined"), S.VALIDATION_ERROR, "refusal.24"),
        (200, refused("6", "Expired Card"), S.VALIDATION_ERROR, "refusal.6"),
        (200, refused("5", "Blocked Card"), S.PERMANENT_FAIL, "refusal.5"),
        (200, refused("3", "Referral"), S.REQUIRES_REVIEW, "refusal.3"),
        (200, refused("4", "Acquirer Error", "Error"), S.DECLINE, "refusal.4"),
        (200, refused("22", "FRAUD-CANCELLED", "Cancelled"), S.PERMANENT_FAIL, "refusal.22"),
        # payments-error-invalid-data-422.json, paymentmethods-error-forbidden-403.json,
        # authorise-error-010.json, the OpenAPI 401 example.
        (422, {"status": 422, "errorCode": "130", "message": "Reference Missing",
               "errorType": "validation"}, S.SYSTEM_FAIL, "error.130"),
        (422, {"status": 422, "errorCode": "101", "message": "Invalid card number",
               "errorType": "validation"}, S.PERMANENT_FAIL, "error.101"),
        (403, {"status": 403, "errorCode": "901", "message": "Invalid Merchant Account",
               "errorType": "security"}, S.SYSTEM_FAIL, "error.901"),
        (403, {"status": 403, "errorCode": "010", "message": "Not allowed",
               "errorType": "security", "pspReference": "8514836072314693"}, S.SYSTEM_FAIL,
         "error.010"),
        (401, {"status": 401, "errorCode": "000", "message": "HTTP Status Response - Unauthorized",
               "errorType": "security"}, S.SYSTEM_FAIL, "error.000"),
        (500, {"status": 500, "errorCode": "905", "message": "Internal error",
               "errorType": "internal"}, S.INDETERMINATE, "http_500"),
        (502, {}, S.INDETERMINATE, "http_502"),
    ],
)  # fmt: skip
def test_a_payment_answer_takes_its_status_from_the_mapping(adyen, http, body, status, code):
    result = adyen.interpret(http, {}, json.dumps(body), "charge")
    assert (result.status, result.code) == (status, code)
    assert not result.unmapped


def test_an_unknown_refusal_code_falls_back_to_the_default_and_is_marked(adyen):
    result = adyen.interpret(200, {}, json.dumps(refused("77", "New reason")), "charge")
    assert (result.status, result.unmapped) == (S.SYSTEM_FAIL, True)
    assert adyen.interpret(200, {}, "<html>", "charge").status is S.INDETERMINATE
    assert adyen.interpret(200, {}, "{}", "charge").status is S.INDETERMINATE


def test_a_modification_is_asked_not_done(adyen):
    # paymentscancels-success.json
    body = {"merchantAccount": "YOUR_MERCHANT_ACCOUNT", "paymentPspReference": "8836183819713023",
            "pspReference": "8412534564722331", "reference": "Cancel123", "status": "received"}  # fmt: skip
    for operation in ("void", "refund", "lookup"):
        result = adyen.interpret(201, {}, json.dumps(body), operation)
        assert (result.status, result.code) == (S.REQUIRES_REVIEW, f"{operation}.received")
        assert result.awaiting_confirmation and result.reference == "8412534564722331"
        assert "waiting for Adyen's confirmation" in result.message
    assert adyen.interpret(201, {}, "{}", "void").status is S.INDETERMINATE


def test_a_payment_is_a_stored_card_mit_with_settles_key_twice(adyen):
    request = GatewayRequest("charge", "key-1", "INV-9", Money.parse("1234", "JPY"), "shop_9|M5N7")
    call = adyen.build("charge", request)
    body = json.loads(call.body)
    assert call.url == "https://checkout-test.adyen.com/v71/payments"
    assert (call.headers["X-API-Key"], call.headers["Idempotency-Key"]) == ("AQE_test", "key-1")
    assert body["amount"] == {"value": 1234, "currency": "JPY"}  # JPY has no minor unit
    assert body["paymentMethod"] == {"type": "scheme", "storedPaymentMethodId": "M5N7"}
    assert (body["shopperReference"], body["reference"], body["shopperInteraction"],
            body["recurringProcessingModel"]) == ("shop_9", "key-1", "ContAuth",
                                                  "UnscheduledCardOnFile")  # fmt: skip
    assert body["returnUrl"] and body["merchantAccount"] == "TestMerchant"
    stored = adyen.scrub(call.body)
    assert "M5N7" not in stored and "shop_9" not in stored
    alone = GatewayRequest("charge", "k", "INV-9", Money.parse("1", "USD"), "M5N7")
    assert adyen.charge(alone).sent is False  # no shopper reference: never sent
    reversal = adyen.build("lookup", GatewayRequest("lookup", "k3", "INV-9", reference="PSP/1"))
    assert reversal.url.endswith("/payments/PSP%2F1/reversals")
    assert json.loads(reversal.body) == {"merchantAccount": "TestMerchant", "reference": "k3"}


def test_without_a_psp_reference_adyen_cannot_be_asked(adyen):
    result = adyen.lookup(GatewayRequest("lookup", "k", "INV-1"))
    assert (result.status, result.sent) == (S.SYSTEM_FAIL, False)
    assert "AUTHORISATION webhook" in result.message


# --- Webhooks: the published HMAC vectors ----------------------------------------------------

VECTOR_A = (  # UtilTest.py test_notification_request_item_hmac
    "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
    {"pspReference": "7914073381342284", "merchantReference": "TestPayment-1407325143704",
     "merchantAccountCode": "TestMerchant", "amount": {"currency": "EUR", "value": 1130},
     "eventCode": "AUTHORISATION", "success": "true", "eventDate": "2019-05-06T17:15:34.121+02:00",
     "operations": ["CANCEL", "CAPTURE", "REFUND"], "paymentMethod": "visa",
     "additionalData": {"hmacSignature": "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="}},
)  # fmt: skip
VECTOR_MIXED = (  # test/mocks/util/mixed_notification.json: ':' and '\\' are signed unescaped
    "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174",
    {"amount": {"currency": "EUR", "value": 1000}, "eventCode": "AUTHORISATION",
     "eventDate": "2023-01-10T13:42:29+01:00", "merchantAccountCode": "AntoniStroinski",
     "merchantReference": "\\:/\\/slashes are fun", "paymentMethod": "visa",
     "pspReference": "ZVWN7D3WSMK2WN82", "reason": "052095:1111:03/2030", "success": "true",
     "additionalData": {"hmacSignature": "CZErGCNQaSsxbaQfZaJlakqo7KPP+mIa8a+wx3yNs9A="}},
)  # fmt: skip
VECTOR_NODE = (  # hmacValidator.spec.ts
    "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00",
    {"pspReference": "pspReference", "originalReference": "originalReference",
     "merchantAccountCode": "merchantAccount", "merchantReference": "reference",
     "amount": {"currency": "EUR", "value": 1000}, "eventCode": "REPORT_AVAILABLE",
     "success": "true",
     "additionalData": {"hmacSignature": "ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE="}},
)  # fmt: skip
VECTOR_JAVA = (  # HMACValidatorTest.java testValidateHMAC: the amount's value sent as a string
    "9064450A8892A093D9E97EFCC9639DE31B74F3A7803135555A3C96F5A57915D6",
    {"additionalData": {"hmacSignature": "NuEkADFmlCC6VgX+wcoPAegIWxVPNBPCuKlM4Hzo5qc="},
     "amount": {"currency": "EUR", "value": "0"}, "eventCode": "REPORT_AVAILABLE",
     "eventDate": "2019-11-20T14:35:36+01:00", "merchantAccountCode": "Magento2Rik",
     "merchantReference": "testMerchantRef1", "pspReference": "test_REPORT_AVAILABLE",
     "reason": "will contain the url to the report", "success": "true"},
)  # fmt: skip


def delivery(*items) -> bytes:
    return json.dumps({"live": "false", "notificationItems": [
        {"NotificationRequestItem": item} for item in items]}).encode()  # fmt: skip


@pytest.mark.parametrize("vector", [VECTOR_A, VECTOR_MIXED, VECTOR_NODE, VECTOR_JAVA])
def test_the_published_hmac_vectors_verify_and_tampered_copies_do_not(adyen, vector):
    key, item = vector
    creds = {"hmac_key": key}
    assert adyen.verify_webhook({}, delivery(item), creds)
    assert not adyen.verify_webhook({}, delivery({**item, "success": "false"}), creds)
    assert not adyen.verify_webhook({}, delivery({**item, "pspReference": "X"}), creds)
    assert not adyen.verify_webhook({}, delivery(item), {"hmac_key": "00" + key[2:]})
    # Every item of a delivery is verified: one good item does not carry a forged one.
    forged = {**item, "amount": {"currency": "EUR", "value": 999999}}
    assert not adyen.verify_webhook({}, delivery(item, forged), creds)


def test_a_webhook_without_key_signature_or_basic_auth_is_refused(adyen):
    key, item = VECTOR_A
    body = delivery(item)
    assert not adyen.verify_webhook({}, body, {})
    assert not adyen.verify_webhook({}, body, {"hmac_key": "not hex"})
    unsigned = {k: v for k, v in item.items() if k != "additionalData"}
    assert not adyen.verify_webhook({}, delivery(unsigned), {"hmac_key": key})
    assert not adyen.verify_webhook({}, b"not json", {"hmac_key": key})
    creds = {"hmac_key": key, "webhook_username": "adyen", "webhook_password": "s3cret"}
    good = {"Authorization": "Basic " + base64.b64encode(b"adyen:s3cret").decode()}
    assert adyen.verify_webhook(good, body, creds)
    assert not adyen.verify_webhook({}, body, creds)
    wrong = {"Authorization": "Basic " + base64.b64encode(b"adyen:guess").decode()}
    assert not adyen.verify_webhook(wrong, body, creds)
    assert not adyen.verify_webhook({"Authorization": "Basic é"}, body, creds)


def test_an_authorisation_settles_and_an_undo_is_confirmed_with_what_it_did(adyen):
    (notice,) = adyen.read_webhook(delivery(VECTOR_A[1]))
    assert (notice.event_id, notice.operation, notice.final) == (
        "AUTHORISATION/7914073381342284/true", "charge", True,
    )  # fmt: skip
    assert (notice.key, notice.amount) == ("TestPayment-1407325143704", Money.parse("11.30", "EUR"))
    assert notice.result.status is S.SUCCESS
    failed = {**VECTOR_A[1], "success": "false", "reason": "Refused"}
    (notice,) = adyen.read_webhook(delivery(failed))
    assert (notice.result.status, notice.result.message) == (S.DECLINE, "Refused")
    reversal = {"pspReference": "MOD1", "originalReference": "PAY1", "eventCode": "CANCEL_OR_REFUND",
                "success": "true", "amount": {"currency": "EUR", "value": 500},
                "merchantReference": "k", "additionalData": {"modification.action": "cancel"}}  # fmt: skip
    (notice,) = adyen.read_webhook(delivery(reversal))
    assert (notice.operation, notice.reference, notice.result.status) == ("void", "MOD1", S.SUCCESS)
    (found,) = notice.result.findings
    assert (found.state, found.reference) == (Settlement.VOIDED, "PAY1")
    refunded = {**reversal, "additionalData": {"modification.action": "refund"}}
    (notice,) = adyen.read_webhook(delivery(refunded))
    assert notice.result.findings[0].state is Settlement.REFUNDED
    (notice,) = adyen.read_webhook(delivery({**reversal, "success": "false"}))
    assert (notice.result.status, notice.result.findings) == (S.DECLINE, ())
    (notice,) = adyen.read_webhook(delivery({**reversal, "eventCode": "REFUND_FAILED"}))
    assert (notice.operation, notice.result.status) == ("refund", S.DECLINE)


def test_other_events_are_kept_not_acted_on_and_garbage_is_refused(adyen):
    (notice,) = adyen.read_webhook(delivery(VECTOR_NODE[1]))
    assert (notice.operation, notice.final, notice.event_type) == (None, False, "REPORT_AVAILABLE")
    for body in (b"", b"{}", b'{"notificationItems": []}', delivery({"eventCode": "X"})):
        with pytest.raises(UnreadableWebhook):
            adyen.read_webhook(body)
    stored = adyen.scrub(delivery(VECTOR_A[1]).decode())
    assert "coqCmt" not in stored
