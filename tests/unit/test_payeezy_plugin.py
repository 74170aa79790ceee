"""The Payeezy plugin: the exact signed requests it builds, and how it reads Payeezy's answers (pure).

Where the recorded answers come from:
- AM = Active Merchant, test/unit/gateways/payeezy_test.rb: answers recorded from Payeezy's cert
  sandbox (successful_purchase_response, failed_purchase_response_for_insufficient_funds, ...);
  the YAML-wrapped error answers are copied out of their `body:` field.
- AM remote = test/remote/gateways/remote_payeezy_test.rb (test_trans_error asserts the code and
  message of the HTTP 500 answer; the body here holds exactly those, in the Error envelope).
- The signature's worked example was computed with `openssl dgst -sha256 -hmac`, independently of
  the plugin, from the construction in payeezy/payeezy_direct_API payeezy_node/example/lib/util.js
  and the Java SDK's PayeezyAbstractClient (base64 of the hex digest).
- Lookup (timeout reversal) answers have Payeezy's transaction shape (AM successful_void_response);
  their codes are the First Data table's (305, 581, 585). Payeezy publishes no recorded reversal.
"""

import base64
import json
from datetime import datetime

import pytest

from portal.gateways.base import CallNotMade, GatewayConfig, GatewayRequest, Settlement
from portal.gateways.payeezy.plugin import signature
from portal.gateways.registry import plugin
from portal.money import Money
from portal.statuses import GatewayStatus

S = GatewayStatus
CREDS = {
    "api_key": "apikey-settle-test",
    "api_secret": "secret-settle-test",
    "merchant_token": "fdoa-merchant-token-test",
}
NONCE, TIMESTAMP = "1234567890", 1700000000000


@pytest.fixture
def payeezy():
    gateway = plugin("payeezy", GatewayConfig("https://api-cert.payeezy.com/", CREDS, timeout=5))
    gateway.nonce = lambda: NONCE
    gateway.now_ms = lambda: TIMESTAMP
    return gateway


def request(operation="charge", **kw):
    fields = dict(operation=operation, idempotency_key="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                  order_id="INV-7", amount=Money.parse("12.30", "USD"),
                  token="2537446225198291/Visa/1230/Jane Doe")  # fmt: skip
    fields.update(kw)
    return GatewayRequest(**fields)


# Recorded answers ---------------------------------------------------------------------------------

# AM successful_purchase_response
PURCHASE_APPROVED = '{"method":"credit_card","amount":"1","currency":"USD","avs":"4","card":{"type":"Visa","cardholder_name":"Bobsen 995","card_number":"4242","exp_date":"0816"},"token":{"token_type":"transarmor","token_data":{"value":"0152552999534242"}},"transaction_status":"approved","validation_status":"success","transaction_type":"purchase","transaction_id":"ET114541","transaction_tag":"55083431","bank_resp_code":"100","bank_message":"Approved","gateway_resp_code":"00","gateway_message":"Transaction Normal","correlation_id":"124.1433862672836"}'
# AM successful_purchase_stored_credentials_response
PURCHASE_STORED_CREDENTIALS = '{"correlation_id":"228.4479800174823","transaction_status":"approved","validation_status":"success","transaction_type":"purchase","transaction_id":"ET117353","transaction_tag":"2309866208","method":"credit_card","amount":"100","currency":"USD","avs":"4","cvv2":"M","token":{"token_type":"FDToken","token_data":{"value":"9091469151414242"}},"card":{"type":"Visa","cardholder_name":"Longbob Longsen","card_number":"4242","exp_date":"0919"},"bank_resp_code":"100","bank_message":"Approved","gateway_resp_code":"00","gateway_message":"Transaction Normal","stored_credentials":{"cardbrand_original_transaction_id":"706838021010062"}}'
# AM failed_purchase_response_for_insufficient_funds (amount 5302.00 in the cert sandbox)
PURCHASE_INSUFFICIENT_FUNDS = '{"correlation_id":"124.1342365067332","transaction_status":"declined","validation_status":"success","transaction_type":"purchase","transaction_tag":"4611610442","method":"credit_card","amount":"530200","currency":"USD","avs":"4","cvv2":"M","token":{"token_type":"FDToken", "token_data":{"value":"0788934280684242"}},"card":{"type":"Visa","cardholder_name":"Longbob Longsen","card_number":"4242","exp_date":"0922"},"bank_resp_code":"302","bank_message":"Insufficient Funds","gateway_resp_code":"00","gateway_message":"Transaction Normal"}'
# AM failed_authorize_response (amount 5013.00)
AUTHORIZE_NOT_APPROVED = '{"correlation_id":"228.1449522605561","transaction_status":"declined","validation_status":"success","transaction_type":"authorize","transaction_tag":"69607256","method":"credit_card","amount":"501300","currency":"USD","avs":"4","cvv2":"M","token":{"token_type":"FDToken","token_data":{"value":"0843687226934242"}},"card":{"type":"Visa","cardholder_name":"Longbob Longsen","card_number":"4242","exp_date":"0916"},"bank_resp_code":"013","bank_message":"Transaction not approved","gateway_resp_code":"00","gateway_message":"Transaction Normal"}'
# AM below_minimum_response: the gateway stopped it, no bank code
BELOW_MINIMUM = '{"correlation_id":"123.1234678982","transaction_status":"declined","validation_status":"success","transaction_type":"authorize","transaction_tag":"92384753","method":"credit_card","amount":"250","currency":"USD","card":{"type":"Mastercard","cardholder_name":"Omri Test","card_number":"[FILTERED]","exp_date":"0123"},"gateway_resp_code":"36","gateway_message":"Below Minimum Sale"}'
# AM failed_purchase_response (HTTP 400)
CARD_EXPIRED = '{"method":"credit_card","amount":"10000000","currency":"USD","card":{"type":"Visa","cvv":"000","cardholder_name":"Bobsen 5675","card_number":"4242","exp_date":"0810"},"transaction_status":"Not Processed","validation_status":"failed","transaction_type":"purchase","Error":{"messages":[{"code":"card_expired","description":"The card has expired"}]},"correlation_id":"124.1433864804381"}'
# AM failed_refund_response (HTTP 400)
MISSING_TAG = '{"correlation_id":"228.1449520714925","Error":{"messages":[{"code":"missing_transaction_tag","description":"The transaction tag is not provided"}]},"transaction_status":"Not Processed","validation_status":"failed","transaction_type":"refund","amount":"50","currency":"USD"}'
# AM failed_void_response (HTTP 400): two messages at once
MISSING_ID_AND_TAG = '{"correlation_id":"228.1449520846984","Error":{"messages":[{"code":"missing_transaction_id","description":"The transaction id is not provided"},{"code":"missing_transaction_tag","description":"The transaction tag is not provided"}]},"transaction_status":"Not Processed","validation_status":"failed","transaction_type":"void","amount":"0","currency":"USD"}'
# AM failed_capture_response (HTTP 400): the ETG code inside server_error's description
INVALID_TAG = '{"transaction_status":"Not Processed","Error":{"messages":[{"code":"server_error","description":"ProcessedBad Request (69) - Invalid Transaction Tag"}]},"correlation_id":"124.1433871231542"}'
# AM successful_refund_response and successful_void_response
REFUND_APPROVED = '{"method":"credit_card","amount":"1","currency":"USD","cvv2":"I","token":{"token_type":"transarmor","token_data":{"value":"9968749582724242"}},"transaction_status":"approved","validation_status":"success","transaction_type":"refund","transaction_id":"55084328","transaction_tag":"55084328","bank_resp_code":"100","bank_message":"Approved","gateway_resp_code":"00","gateway_message":"Transaction Normal","correlation_id":"124.1433864648126"}'
VOID_APPROVED = '{"method":"credit_card","amount":"1","currency":"USD","cvv2":"I","token":{"token_type":"transarmor","token_data":{"value":"9594258319174242"}},"transaction_status":"approved","validation_status":"success","transaction_type":"void","transaction_id":"ET196233","transaction_tag":"55083674","bank_resp_code":"100","bank_message":"Approved","gateway_resp_code":"00","gateway_message":"Transaction Normal","correlation_id":"124.1433863576596"}'
# AM invalid_token_response (401), invalid_token_response_integration (401), bad_credentials_response (403)
ACCESS_DENIED = '{"error":"Access denied"}'
INVALID_API_KEY = '{"fault":{"faultstring":"Invalid ApiKey for given resource","detail":{"errorcode":"oauth.v2.InvalidApiKeyForGivenResource"}}}'
HMAC_FAILURE = '{"code":"403", "message":"HMAC validation Failure"}'
# AM remote test_trans_error (amount 5000.42 asks for ETG 42): HTTP 500
INTERNAL_SERVER_ERROR = '{"Error":{"messages":[{"code":"internal_server_error","description":"Internal Server Error"}]},"transaction_status":"Not Processed"}'


@pytest.mark.parametrize(
    ("http_status", "body", "status", "code", "message", "reference"),
    [
        (201, PURCHASE_APPROVED, S.SUCCESS, "100", "Approved", "ET114541/55083431"),
        (201, PURCHASE_STORED_CREDENTIALS, S.SUCCESS, "100", "Approved", "ET117353/2309866208"),
        (201, PURCHASE_INSUFFICIENT_FUNDS, S.DECLINE, "302", "Insufficient Funds", None),
        (201, AUTHORIZE_NOT_APPROVED, S.DECLINE, "013", "Transaction not approved", None),
        (201, BELOW_MINIMUM, S.SYSTEM_FAIL, "36", "Below Minimum Sale", None),
        (400, CARD_EXPIRED, S.VALIDATION_ERROR, "card_expired", "The card has expired", None),
        (400, MISSING_TAG, S.SYSTEM_FAIL, "missing_transaction_tag", "The transaction tag is not provided", None),
        (400, MISSING_ID_AND_TAG, S.SYSTEM_FAIL, "missing_transaction_id", "The transaction id is not provided", None),
        (400, INVALID_TAG, S.SYSTEM_FAIL, "69", "ProcessedBad Request (69) - Invalid Transaction Tag", None),
        (201, REFUND_APPROVED, S.SUCCESS, "100", "Approved", "55084328/55084328"),
        (201, VOID_APPROVED, S.SUCCESS, "100", "Approved", "ET196233/55083674"),
        (401, ACCESS_DENIED, S.SYSTEM_FAIL, "http_401", "Access denied", None),
        (401, INVALID_API_KEY, S.SYSTEM_FAIL, "oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource", None),
        (403, HMAC_FAILURE, S.SYSTEM_FAIL, "http_403", "HMAC validation Failure", None),
        (500, INTERNAL_SERVER_ERROR, S.INDETERMINATE, "internal_server_error", "Internal Server Error", None),
    ],
)  # fmt: skip
def test_each_recorded_answer_decides_its_status_through_the_mapping(
    payeezy, http_status, body, status, code, message, reference
):
    result = payeezy.interpret(http_status, {}, body)
    assert (result.status, result.code, result.message) == (status, code, message)
    assert result.reference == reference
    assert result.unmapped is False
    assert result.guidance


def test_the_seed_example_payeezy_100_approved_is_success(payeezy):
    entry = payeezy.mapping.lookup("100")
    assert (entry.status, entry.description, entry.unmapped) == (S.SUCCESS, "Approved", False)


def test_fields_in_another_order_with_whitespace_extras_and_a_bom_read_the_same(payeezy):
    shuffled = dict(reversed(list(json.loads(PURCHASE_APPROVED).items())))
    shuffled["brand_new_field"] = {"nested": [1, 2]}
    body = "\ufeff\n" + json.dumps(shuffled, indent=4) + "\n"
    result = payeezy.interpret(201, {"X-Global-Transaction-ID": "74768541"}, body)
    assert (result.status, result.code, result.reference) == (S.SUCCESS, "100", "ET114541/55083431")


def test_a_gateway_code_other_than_00_outranks_the_bank_code(payeezy):
    body = json.loads(PURCHASE_INSUFFICIENT_FUNDS) | {"gateway_resp_code": "63",
                                                       "gateway_message": "Invalid Duplicate"}  # fmt: skip
    result = payeezy.interpret(201, {}, json.dumps(body))
    assert (result.status, result.code, result.message) == (
        S.INDETERMINATE,
        "63",
        "Invalid Duplicate",
    )


def test_transaction_normal_without_a_bank_answer_is_indeterminate(payeezy):
    body = {"transaction_status": "declined", "gateway_resp_code": "00",
            "gateway_message": "Transaction Normal"}  # fmt: skip
    result = payeezy.interpret(201, {}, json.dumps(body))
    assert (result.status, result.code) == (S.INDETERMINATE, "00")


def test_a_server_error_that_names_no_etg_code_is_indeterminate(payeezy):
    body = '{"Error":{"messages":[{"code":"server_error","description":"Something failed"}]}}'
    result = payeezy.interpret(400, {}, body)
    assert (result.status, result.code) == (S.INDETERMINATE, "server_error")


def test_an_unknown_code_falls_back_to_system_fail_and_is_marked_unmapped(payeezy):
    body = json.loads(PURCHASE_INSUFFICIENT_FUNDS) | {"bank_resp_code": "999", "bank_message": "?"}
    result = payeezy.interpret(201, {}, json.dumps(body))
    assert (result.status, result.code, result.unmapped) == (S.SYSTEM_FAIL, "999", True)
    assert "codes.yaml" in result.guidance


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        (503, "<!DOCTYPE html><html><head><title>Service Unavailable</title></head></html>"),
        (500, "Internal Server Error"),
        (201, ""),
        (201, "[1, 2]"),
        (201, "{}"),
        (201, '{"transaction_status": "approved"}'),
        (201, '{"transaction_status": "appro'),
    ],
)
def test_an_unreadable_answer_or_error_page_is_indeterminate_with_the_reason(
    payeezy, http_status, body
):
    result = payeezy.interpret(http_status, {}, body)
    assert result.status is S.INDETERMINATE
    assert result.code is None
    assert result.reason.startswith("Unreadable answer")


# Lookups: timeout reversals -------------------------------------------------------------------------


def reversal_answer(bank_code, bank_message, status="declined", **extra):
    body = {"correlation_id": "228.1449520846984", "transaction_status": status,
            "validation_status": "success", "transaction_type": "void", "transaction_tag": "69601979",
            "method": "token", "bank_resp_code": bank_code, "bank_message": bank_message,
            "gateway_resp_code": "00", "gateway_message": "Transaction Normal", **extra}  # fmt: skip
    return json.dumps(body)


def test_an_approved_reversal_finds_the_charge_voided(payeezy):
    body = reversal_answer("100", "Approved", "approved", transaction_id="ET196233",
                           amount="1230", currency="USD")  # fmt: skip
    headers = {"date": "Mon, 07 Dec 2015 21:29:08 GMT"}
    result = payeezy.interpret(201, headers, body, operation="lookup")
    assert (result.status, result.code) == (S.SUCCESS, "reversal:100")
    (finding,) = result.findings
    assert finding.state is Settlement.VOIDED
    assert finding.amount == Money.parse("12.30", "USD")
    assert finding.reference == "ET196233/69601979"
    assert finding.at == datetime(2015, 12, 7, 21, 29, 8)
    assert finding.code is None  # the reversal's "100" must never read as a paid charge


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("585", "No Original Authorization Found", S.SUCCESS),
        ("305", "Already Reversed", S.SUCCESS),
        ("581", "Unable to Void Transaction", S.INDETERMINATE),
    ],
)
def test_a_reversal_that_voids_nothing_finds_nothing(payeezy, code, message, status):
    result = payeezy.interpret(201, {}, reversal_answer(code, message), operation="lookup")
    assert (result.status, result.code, result.message) == (status, f"reversal:{code}", message)
    assert result.findings == ()


def test_a_lookup_refused_for_credentials_keeps_the_credential_code(payeezy):
    result = payeezy.interpret(403, {}, HMAC_FAILURE, operation="lookup")
    assert (result.status, result.code, result.findings) == (S.SYSTEM_FAIL, "http_403", ())


def test_a_reversal_with_an_unreadable_amount_is_indeterminate(payeezy):
    body = reversal_answer("100", "Approved", "approved", amount="12.30", currency="USD")
    result = payeezy.interpret(201, {}, body, operation="lookup")
    assert result.status is S.INDETERMINATE
    assert "amount" in result.reason


# Requests -------------------------------------------------------------------------------------


def test_the_signature_matches_a_worked_example_computed_with_openssl():
    body = '{"amount":"1230","currency_code":"USD"}'
    assert signature(CREDS["api_key"], CREDS["api_secret"], NONCE, str(TIMESTAMP),
                     CREDS["merchant_token"], body) == (
        "ZTFkOTI5ZDQ2MjA1ZDI1ZWExNzgzOWRlOWViNzljMGI2ZDg3MzU5YzlmYTU2NTI5NDMyMjkwMzA1OGYwNTNjNg=="
    )  # fmt: skip


def test_a_charge_is_a_signed_fdtoken_purchase_in_minor_units(payeezy):
    call = payeezy.build("charge", request())
    assert (call.method, call.url) == ("POST", "https://api-cert.payeezy.com/v1/transactions")
    assert json.loads(call.body) == {
        "transaction_type": "purchase",
        "method": "token",
        "amount": "1230",
        "currency_code": "USD",
        "merchant_ref": "INV-7",
        "reversal_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "token": {
            "token_type": "FDToken",
            "token_data": {"type": "Visa", "value": "2537446225198291",
                           "cardholder_name": "Jane Doe", "exp_date": "1230"},
        },
    }  # fmt: skip
    assert call.headers == {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "apikey": "apikey-settle-test",
        "token": "fdoa-merchant-token-test",
        "nonce": NONCE,
        "timestamp": str(TIMESTAMP),
        "Authorization": signature(CREDS["api_key"], CREDS["api_secret"], NONCE, str(TIMESTAMP),
                                   CREDS["merchant_token"], call.body),
    }  # fmt: skip
    hex_digest = base64.b64decode(call.headers["Authorization"]).decode()
    assert len(hex_digest) == 64 and hex_digest == hex_digest.lower()
    assert call.body.isascii()  # what is signed is byte for byte what is sent


@pytest.mark.parametrize(
    ("currency", "amount", "minor"),
    [("USD", "1234.50", "123450"), ("JPY", "1500", "1500"), ("KWD", "1.234", "1234")],
)
def test_the_amount_is_sent_in_the_currencys_minor_units(payeezy, currency, amount, minor):
    call = payeezy.build("charge", request(amount=Money.parse(amount, currency)))
    body = json.loads(call.body)
    assert (body["amount"], body["currency_code"]) == (minor, currency)


def test_a_bare_token_sends_only_the_fdtoken_value_and_a_name_may_hold_slashes(payeezy):
    bare = json.loads(payeezy.build("charge", request(token="tok_approve")).body)
    assert bare["token"]["token_data"] == {"value": "tok_approve"}
    named = json.loads(payeezy.build("charge", request(token="v1/Visa/0130/A/B Ltd")).body)
    assert named["token"]["token_data"]["cardholder_name"] == "A/B Ltd"


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"token": None}, "token"),
        ({"token": "/Visa/1230/Jane"}, "FDToken value"),
        ({"token": "v/Visa/1330/Jane"}, "MMYY"),
        ({"amount": None}, "amount"),
    ],
)
def test_a_charge_that_cannot_be_built_is_not_sent(payeezy, kw, reason):
    with pytest.raises(CallNotMade, match=reason):
        payeezy.build("charge", request(**kw))


@pytest.mark.parametrize("operation", ["refund", "void"])
def test_a_refund_or_void_names_the_charges_id_in_the_url_and_its_tag_in_the_body(
    payeezy, operation
):
    call = payeezy.build(operation, request(operation, token=None, reference="ET114541/55083431"))
    assert (call.method, call.url) == (
        "POST",
        "https://api-cert.payeezy.com/v1/transactions/ET114541",
    )
    assert json.loads(call.body) == {
        "transaction_type": operation,
        "method": "token",
        "transaction_tag": "55083431",
        "amount": "1230",
        "currency_code": "USD",
        "merchant_ref": "INV-7",
    }
    assert call.headers["Authorization"] == signature(
        CREDS["api_key"], CREDS["api_secret"], NONCE, str(TIMESTAMP), CREDS["merchant_token"],
        call.body,
    )  # fmt: skip


@pytest.mark.parametrize("reference", [None, "ET114541", "/55083431"])
def test_a_void_without_both_id_and_tag_is_not_sent(payeezy, reference):
    with pytest.raises(CallNotMade, match="transaction_id/transaction_tag"):
        payeezy.build("void", request("void", reference=reference))


def test_a_lookup_is_a_timeout_reversal_by_the_charges_key(payeezy):
    lookup = request("lookup", amount=None, token=None, original_key="a" * 32)
    call = payeezy.build("lookup", lookup)
    assert call.url == "https://api-cert.payeezy.com/v1/transactions"
    assert json.loads(call.body) == {
        "transaction_type": "void",
        "method": "token",
        "reversal_id": "a" * 32,
        "merchant_ref": "INV-7",
    }
    with_amount = json.loads(payeezy.build("lookup", request("lookup", original_key="k")).body)
    assert (with_amount["amount"], with_amount["currency_code"]) == ("1230", "USD")
    with pytest.raises(CallNotMade, match="reversal_id"):
        payeezy.build("lookup", request("lookup", original_key=None))


def test_a_missing_credential_is_a_system_fail_and_nothing_is_sent():
    bare = plugin("payeezy", GatewayConfig("http://127.0.0.1:1", {"api_key": "k"}))
    result = bare.charge(request())
    assert result.status is S.SYSTEM_FAIL
    assert "missing credential api_secret, merchant_token" in result.message


def test_the_sandbox_fixture_hands_out_payeezy_without_a_network_call(plugin_at_sandbox):
    ready = plugin_at_sandbox("payeezy")
    assert ready.config.base_url.endswith("/payeezy")
    assert ready.required_credentials == ("api_key", "api_secret", "merchant_token")
    assert set(ready.config.credentials) == set(ready.required_credentials)


# Scrubbing ------------------------------------------------------------------------------------


def test_scrub_removes_the_token_card_data_and_credentials(payeezy):
    raw = (
        '{"transaction_type":"purchase","method":"token","amount":"1230","merchant_ref":"INV-7",'
        '"token":{"token_type":"FDToken","token_data":{"type":"Visa","value":"2537446225198291",'
        '"cardholder_name":"Jane \\"JD\\" Doe","exp_date":"1230"}},'
        '"card":{"card_number": "4242", "cvv":569},"apikey":"apikey-settle-test"}'
    )
    assert payeezy.scrub(raw) == (
        '{"transaction_type":"purchase","method":"token","amount":"1230","merchant_ref":"INV-7",'
        '"token":{"token_type":"FDToken","token_data":{"type":"Visa","value":"[FILTERED]",'
        '"cardholder_name":"[FILTERED]","exp_date":"1230"}},'
        '"card":{"card_number": "[FILTERED]", "cvv":"[FILTERED]"},"apikey":"[FILTERED]"}'
    )


def test_scrub_leaves_an_answer_without_secrets_and_an_error_page_alone(payeezy):
    assert payeezy.scrub(MISSING_TAG) == MISSING_TAG
    assert payeezy.scrub("<html>502 Bad Gateway</html>") == "<html>502 Bad Gateway</html>"


def test_a_stored_request_holds_neither_the_token_nor_the_signature(payeezy):
    call = payeezy.build("charge", request())
    stored = payeezy.scrub(call.body)
    assert "2537446225198291" not in stored and "Jane Doe" not in stored
    assert call.headers["Authorization"] not in stored


# The mapping ----------------------------------------------------------------------------------


def test_every_code_the_emulation_answers_with_is_mapped_except_the_unknown_one(payeezy):
    from portal.sandbox.providers.payeezy import BANK_ANSWERS

    for kind, (code, _) in BANK_ANSWERS.items():
        assert payeezy.mapping.lookup(code).unmapped is (kind == "unknown"), kind
    for code in ("63", "64", "26", "305", "581", "card_expired", "internal_server_error",
                 "http_401", "http_403", "oauth.v2.InvalidApiKey", "reversal:100",
                 "reversal:305", "reversal:581", "reversal:585"):  # fmt: skip
        assert not payeezy.mapping.lookup(code).unmapped, code


def test_the_mapping_never_resends_blindly(payeezy):
    assert payeezy.mapping.retry.resend_after_timeout is False
    assert "reversal_id" in payeezy.mapping.retry.lookup
