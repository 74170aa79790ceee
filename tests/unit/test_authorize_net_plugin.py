"""The Authorize.Net plugin: the exact requests it builds and how it reads real answers (pure).

Where each recorded answer comes from:
- AIM   stymiee/authnetjson@217fc52 tests/AuthnetJsonAimTest.php (the JSON client's fixtures,
        cited in gateways.md section 1): approved charge, duplicate (11), void, void error (16),
        refund.
- RPT   stymiee/authnetjson tests/Authnetjson/AuthnetJsonReportingTest.php: getUnsettled-
        TransactionList, getTransactionDetails (responseCode as a number), "No records found."
- REF   Authorize.Net API reference, developer.authorize.net/api/reference (index copy
        25541640194): "Charge a Customer Profile", "Credit" (error 54), "Get Unsettled
        Transaction List", "Get Transaction Details" (wrapped in its XML root with -xmlns keys),
        and the request shapes of refund and void.
- LIVE  apitest.authorize.net, recorded live (index file 57932768623): a rejected login, HTTP 200,
        E00007, body starting with a UTF-8 byte-order mark.
"""

import json
from datetime import datetime
from decimal import Decimal

import pytest

from portal.gateways.authorize_net.plugin import STATES
from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin, shipped_mapping
from portal.money import Money
from portal.statuses import GatewayStatus

S = GatewayStatus
BOM = "\ufeff"
KEY = "4f9c1d2e8a7b6c5d4e3f2a1b0c9d8e7f"
# The API reference's own sample credentials.
CREDENTIALS = {"api_login_id": "5KP3u95bQpv", "transaction_key": "346HZ32z3fP4hTG2"}


@pytest.fixture
def anet():
    return plugin("authorize_net", GatewayConfig("https://apitest.authorize.net", CREDENTIALS))


def request(operation="charge", **kw):
    fields = dict(operation=operation, idempotency_key=KEY, order_id="INV-7",
                  amount=Money.parse("12.30", "USD"), token="40338125/1000177237")  # fmt: skip
    fields.update(kw)
    return GatewayRequest(**fields)


def sent(call):
    return json.loads(call.body)


# AIM testCreateTransactionRequestAuthCaptureSuccess
APPROVED = """{
   "transactionResponse":{
      "responseCode":"1","authCode":"QWX20S","avsResultCode":"Y","cvvResultCode":"P",
      "cavvResultCode":"2","transId":"2228446239","refTransID":"",
      "transHash":"56B2D50D73CAB8C6EDE7A92B9BB235BD","testRequest":"0",
      "accountNumber":"XXXX1111","accountType":"Visa",
      "messages":[{"code":"1","description":"This transaction has been approved."}],
      "userFields":[{"name":"favorite_color","value":"blue"}]
   },
   "refId":"94564789",
   "messages":{"resultCode":"Ok","message":[{"code":"I00001","text":"Successful."}]}
}"""
# REF "Charge a Customer Profile"
PROFILE_CHARGE = (
    '{ "transactionResponse": { "responseCode": "1", "authCode": "4JYKA2", "avsResultCode": "Y", '
    '"cvvResultCode": "P", "cavvResultCode": "2", "transId": "2157786076", "refTransID": "", '
    '"transHash": "", "testRequest": "0", "accountNumber": "XXXX2222", "accountType": "Visa", '
    '"messages": [ { "code": "1", "description": "This transaction has been approved." } ], '
    '"transHashSha2": "", "profile": { "customerProfileId": "40338125", '
    '"customerPaymentProfileId": "1000177237" }, "SupplementalDataQualificationIndicator": 0, '
    '"networkTransId": "6PUPU4XXWSO7CCQL0YJNYY7" }, "refId": "123456", "messages": { '
    '"resultCode": "Ok", "message": [ { "code": "I00001", "text": "Successful." } ] } }'
)
# AIM testCreateTransactionRequestAuthOnlyError
DUPLICATE = """{
   "transactionResponse":{
      "responseCode":"3","authCode":"","avsResultCode":"P","cvvResultCode":"","cavvResultCode":"",
      "transId":"0","refTransID":"","transHash":"9F18DE7ABDD09076F9BADB594EFC4611",
      "testRequest":"0","accountNumber":"XXXX0015","accountType":"MasterCard",
      "errors":[{"errorCode":"11","errorText":"A duplicate transaction has been submitted."}],
      "userFields":[{"name":"favorite_color","value":"blue"}]
   },
   "refId":"14290435",
   "messages":{"resultCode":"Error","message":[{"code":"E00027","text":"The transaction was unsuccessful."}]}
}"""
# AIM testCreateTransactionRequestVoid
VOIDED = """{
   "transactionResponse":{
      "responseCode":"1","authCode":"QCG7TB","avsResultCode":"P","cvvResultCode":"",
      "cavvResultCode":"","transId":"2230581408","refTransID":"2230581408",
      "transHash":"39C62AE0EC82B749CC6D3324BE263CC6","testRequest":"0",
      "accountNumber":"XXXX1111","accountType":"Visa",
      "messages":[{"code":"1","description":"This transaction has been approved."}]
   },
   "refId":"35481415",
   "messages":{"resultCode":"Ok","message":[{"code":"I00001","text":"Successful."}]}
}"""
# AIM testCreateTransactionRequestVoidError
VOID_NOT_FOUND = """{
   "transactionResponse":{
      "responseCode":"3","authCode":"","avsResultCode":"P","cvvResultCode":"","cavvResultCode":"",
      "transId":"0","refTransID":"2165665483","transHash":"06D737C28ECD531129DC59EF0548D7FA",
      "testRequest":"0","accountNumber":"","accountType":"MasterCard",
      "errors":[{"errorCode":"16","errorText":"The transaction cannot be found."}]
   },
   "refId":"23039947",
   "messages":{"resultCode":"Error","message":[{"code":"E00027","text":"The transaction was unsuccessful."}]}
}"""
# AIM testCreateTransactionRequestRefund
REFUNDED = """{
   "transactionResponse":{
      "responseCode":"1","authCode":"","avsResultCode":"P","cvvResultCode":"","cavvResultCode":"",
      "transId":"2230581367","refTransID":"","transHash":"E659A47D6DCC71D618533E17A80E818A",
      "testRequest":"0","accountNumber":"XXXX1111","accountType":"Visa",
      "messages":[{"code":"1","description":"This transaction has been approved."}]
   },
   "refId":"95063294",
   "messages":{"resultCode":"Ok","message":[{"code":"I00001","text":"Successful."}]}
}"""
# REF "Credit" (a refund of a transaction that does not qualify)
NOT_REFUNDABLE = (
    '{ "transactionResponse": { "responseCode": "3", "transId": "0", "refTransID": "2149186775", '
    '"transHash": "D6C9036F443BADE785D57DA2B44CD190", "accountType": "PayPal", "errors": [ { '
    '"errorCode": "54", "errorText": "The referenced transaction does not meet the criteria for '
    'issuing a credit." } ] }, "refId": "123456", "messages": { "resultCode": "Error", "message": '
    '[ { "code": "E00027", "text": "The transaction was unsuccessful." } ] } }'
)
# LIVE: a rejected login, exactly as apitest.authorize.net sends it (HTTP 200, BOM first).
REJECTED = (
    BOM + '{"messages":{"resultCode":"Error","message":[{"code":"E00007",'
    '"text":"User authentication failed due to invalid authentication values."}]}}'
)


@pytest.mark.parametrize(
    ("body", "status", "code", "message", "reference"),
    [
        (APPROVED, S.SUCCESS, "1", "This transaction has been approved.", "2228446239"),
        (PROFILE_CHARGE, S.SUCCESS, "1", "This transaction has been approved.", "2157786076"),
        (DUPLICATE, S.INDETERMINATE, "11", "A duplicate transaction has been submitted.", None),
        (VOIDED, S.SUCCESS, "1", "This transaction has been approved.", "2230581408"),
        (VOID_NOT_FOUND, S.SYSTEM_FAIL, "16", "The transaction cannot be found.", None),
        (REFUNDED, S.SUCCESS, "1", "This transaction has been approved.", "2230581367"),
        (NOT_REFUNDABLE, S.SYSTEM_FAIL, "54", "The referenced transaction does not meet the criteria for issuing a credit.", None),
        (REJECTED, S.SYSTEM_FAIL, "E00007", "User authentication failed due to invalid authentication values.", None),
    ],
)  # fmt: skip
def test_recorded_answers_decide_status_code_message_and_reference(
    anet, body, status, code, message, reference
):
    result = anet.interpret(200, {"Content-Type": "application/json; charset=utf-8"}, body)
    assert (result.status, result.code, result.message) == (status, code, message)
    assert result.reference == reference
    assert result.unmapped is False
    assert result.guidance


def test_the_seed_example_E00057_is_a_system_fail(anet):
    assert shipped_mapping("authorize_net").lookup("E00057").status is S.SYSTEM_FAIL
    body = (
        '{"messages":{"resultCode":"Error","message":[{"code":"E00057","text":'
        '"The user does not have permissions to submit requests from a mobile device."}]}}'
    )
    result = anet.interpret(200, {}, body)
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "E00057")


@pytest.mark.parametrize(
    ("reason", "status"),
    [("2", S.DECLINE), ("3", S.REQUIRES_REVIEW), ("4", S.PERMANENT_FAIL), ("6", S.PERMANENT_FAIL),
     ("8", S.VALIDATION_ERROR), ("27", S.VALIDATION_ERROR), ("44", S.VALIDATION_ERROR),
     ("19", S.DECLINE), ("120", S.INDETERMINATE), ("152", S.INDETERMINATE),
     ("253", S.REQUIRES_REVIEW), ("310", S.SUCCESS), ("250", S.SYSTEM_FAIL), ("13", S.SYSTEM_FAIL)],
)  # fmt: skip
def test_the_reason_code_keys_the_mapping_whatever_the_wrapper_says(anet, reason, status):
    # The shape of the AIM error fixture, with another reason code of responseCodes.json.
    body = json.loads(DUPLICATE)
    body["transactionResponse"]["errors"][0]["errorCode"] = reason
    assert anet.interpret(200, {}, json.dumps(body)).status is status


# A Fraud Detection Suite decline: responseCode 2 with the FDS reason code, the shape of AIM's
# declined answers (the transaction is recorded as declined, so it has a transId of its own).
FDS_DECLINED = """{
   "transactionResponse":{
      "responseCode":"2","authCode":"","avsResultCode":"Y","cvvResultCode":"P","cavvResultCode":"",
      "transId":"60115595702","refTransID":"","transHash":"","testRequest":"0",
      "accountNumber":"XXXX1111","accountType":"Visa",
      "errors":[{"errorCode":"251","errorText":"This transaction has been declined."}]
   },
   "refId":"4f9c1d2e8a7b6c5d4e3f",
   "messages":{"resultCode":"Error","message":[{"code":"E00027","text":"The transaction was unsuccessful."}]}
}"""


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("41", S.PERMANENT_FAIL),  # FraudScreen.Net score above the merchant's threshold
        ("141", S.PERMANENT_FAIL),  # FraudScreen rejection whose automatic void failed
        ("251", S.PERMANENT_FAIL),  # a Fraud Detection Suite filter set to decline
        ("254", S.PERMANENT_FAIL),  # declined after the merchant's manual review
        ("250", S.SYSTEM_FAIL),  # FDS blocks the IP address Settle sends from
        ("252", S.REQUIRES_REVIEW),  # held for the merchant's review: may still complete
        ("253", S.REQUIRES_REVIEW),
    ],
)
def test_a_fraud_filters_rejection_is_never_retried_and_a_person_reviews_it_first(
    anet, reason, status
):
    body = json.loads(FDS_DECLINED)
    body["transactionResponse"]["errors"][0]["errorCode"] = reason
    result = anet.interpret(200, {}, json.dumps(body))
    assert (result.status, result.code) == (status, reason)
    assert result.status is not S.DECLINE  # the retry schedule retries only Decline
    assert "fraud tools" in result.guidance
    assert "before the customer is charged again" in result.guidance


def test_a_held_for_review_answer_is_keyed_by_its_message_code(anet):
    body = json.loads(APPROVED)
    body["transactionResponse"]["responseCode"] = "4"
    body["transactionResponse"]["messages"] = [
        {"code": "253", "description": "Your order has been received. Thank you for your business!"}
    ]
    result = anet.interpret(200, {}, json.dumps(body))
    assert (result.status, result.code, result.reference) == (
        S.REQUIRES_REVIEW,
        "253",
        "2228446239",
    )


def test_an_error_with_an_empty_transaction_response_falls_back_to_the_message_code(anet):
    body = (
        '{"transactionResponse": {"responseCode": "3", "transId": "0"}, "messages": {"resultCode":'
        ' "Error", "message": [{"code": "E00003", "text": "An error occurred while parsing the XML request."}]}}'
    )
    result = anet.interpret(200, {}, body)
    assert (result.status, result.code, result.reference) == (S.SYSTEM_FAIL, "E00003", None)


def test_fields_in_any_order_with_whitespace_extras_and_a_numeric_response_code_read_the_same(anet):
    body = (
        '\n  { "messages" : {"message": [{"text": "Successful.", "code": "I00001"}], "resultCode": "Ok"},'
        '\n    "somethingNew": {"nested": [1, 2.5]},\n    "transactionResponse": {\n'
        '      "messages": [{"description": "This transaction has been approved.", "code": 1}],\n'
        '      "transId": "2228446239", "responseCode": 1 } }\n'
    )
    result = anet.interpret(200, {}, body)
    assert (result.status, result.code, result.reference) == (S.SUCCESS, "1", "2228446239")


def test_the_byte_order_mark_and_an_encoded_body_are_accepted(anet):
    assert anet.interpret(200, {}, BOM + APPROVED).status is S.SUCCESS
    assert anet.interpret(200, {}, (BOM + APPROVED).encode("utf-8")).status is S.SUCCESS


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        (500, "<!DOCTYPE html><html><head><title>Service Unavailable</title></head></html>"),
        (200, ""),
        (200, "[1, 2]"),
        (200, "{}"),
        (200, '{"transactionResponse": {"responseCode": "1", "transId": "9"}}'),
        # An Ok answer without a transactionResponse is not a completed transaction
        # (AuthorizeNet/sample-code-python PaymentTransactions/charge-credit-card.py).
        (200, '{"messages": {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]}}'),
        (200, '{"transactionResponse": {"responseCode": "1", "transId": "9"},'
              ' "messages": {"resultCode": "Ok", "message": []}}'),
    ],
)  # fmt: skip
def test_an_unreadable_answer_or_an_error_page_is_indeterminate(anet, http_status, body):
    result = anet.interpret(http_status, {}, body)
    assert result.status is S.INDETERMINATE
    assert result.reason.startswith("Unreadable answer")


@pytest.mark.parametrize(
    "body",
    [
        '{"messages":{"resultCode":"Error","message":[{"code":"E00114","text":"Invalid OTS Token."}]}}',
        DUPLICATE.replace('"errorCode":"11"', '"errorCode":"9999"'),
    ],
)
def test_an_unknown_code_falls_back_to_the_default_and_is_marked_unmapped(anet, body):
    result = anet.interpret(200, {}, body)
    assert result.status is shipped_mapping("authorize_net").default is S.SYSTEM_FAIL
    assert result.unmapped is True
    assert result.code in ("E00114", "9999")


# Requests --------------------------------------------------------------------------------------


def test_a_charge_is_an_auth_capture_of_the_stored_customer_profile(anet):
    call = anet.build("charge", request())
    assert (call.method, call.url) == ("POST", "https://apitest.authorize.net/xml/v1/request.api")
    assert call.headers == {"Content-Type": "application/json", "Accept": "application/json"}
    assert sent(call) == {
        "createTransactionRequest": {
            "merchantAuthentication": {"name": "5KP3u95bQpv", "transactionKey": "346HZ32z3fP4hTG2"},
            "refId": KEY[:20],
            "transactionRequest": {
                "transactionType": "authCaptureTransaction",
                "amount": "12.30",
                "currencyCode": "USD",
                "profile": {"customerProfileId": "40338125", "paymentProfile": {"paymentProfileId": "1000177237"}},
                "order": {"invoiceNumber": "INV-7", "description": f"Invoice INV-7 (Settle {KEY})"},
                "transactionSettings": {"setting": [{"settingName": "duplicateWindow", "settingValue": "600"}]},
            },
        }
    }  # fmt: skip


def test_the_elements_are_sent_in_the_schemas_order(anet):
    body = sent(anet.build("charge", request()))["createTransactionRequest"]
    assert list(body) == ["merchantAuthentication", "refId", "transactionRequest"]
    assert list(body["transactionRequest"]) == [
        "transactionType", "amount", "currencyCode", "profile", "order", "transactionSettings",
    ]  # fmt: skip


def test_the_duplicate_window_comes_from_the_mapping(anet):
    window = shipped_mapping("authorize_net").retry.duplicate_window_seconds
    setting = sent(anet.build("charge", request()))["createTransactionRequest"][
        "transactionRequest"
    ]["transactionSettings"]["setting"][0]
    assert setting == {"settingName": "duplicateWindow", "settingValue": str(window)}


def test_the_key_and_a_long_invoice_number_are_cut_to_the_20_characters_the_schema_allows(anet):
    body = sent(anet.build("charge", request(order_id="INV-2026-000000123456789")))
    assert body["createTransactionRequest"]["refId"] == "4f9c1d2e8a7b6c5d4e3f"
    order = body["createTransactionRequest"]["transactionRequest"]["order"]
    assert order["invoiceNumber"] == "INV-2026-00000012345"


def test_a_refund_names_the_charge_and_its_profile_instead_of_card_digits(anet):
    call = anet.build("refund", request("refund", reference="2230581367"))
    assert sent(call)["createTransactionRequest"] == {
        "merchantAuthentication": {"name": "5KP3u95bQpv", "transactionKey": "346HZ32z3fP4hTG2"},
        "refId": KEY[:20],
        "transactionRequest": {
            "transactionType": "refundTransaction",
            "amount": "12.30",
            "profile": {"customerProfileId": "40338125", "paymentProfile": {"paymentProfileId": "1000177237"}},
            "refTransId": "2230581367",
            "order": {"invoiceNumber": "INV-7"},
            "transactionSettings": {"setting": [{"settingName": "duplicateWindow", "settingValue": "600"}]},
        },
    }  # fmt: skip


def test_a_void_names_only_the_charge(anet):
    call = anet.build("void", request("void", reference="2230581408", token=None))
    assert sent(call)["createTransactionRequest"] == {
        "merchantAuthentication": {"name": "5KP3u95bQpv", "transactionKey": "346HZ32z3fP4hTG2"},
        "refId": KEY[:20],
        "transactionRequest": {"transactionType": "voidTransaction", "refTransId": "2230581408"},
    }


def test_a_lookup_with_a_trans_id_asks_for_the_transaction_details(anet):
    call = anet.build("lookup", request("lookup", reference="2162566217", amount=None, token=None))
    assert sent(call) == {
        "getTransactionDetailsRequest": {
            "merchantAuthentication": {"name": "5KP3u95bQpv", "transactionKey": "346HZ32z3fP4hTG2"},
            "transId": "2162566217",
        }
    }


@pytest.mark.parametrize("reference", [None, "0"])
def test_a_lookup_without_a_trans_id_lists_unsettled_transactions_and_sends_the_invoice_as_ref_id(
    anet, reference
):
    lookup = request("lookup", reference=reference, amount=None, token=None, original_key=KEY)
    assert sent(anet.build("lookup", lookup)) == {
        "getUnsettledTransactionListRequest": {
            "merchantAuthentication": {"name": "5KP3u95bQpv", "transactionKey": "346HZ32z3fP4hTG2"},
            "refId": "INV-7",
            "sorting": {"orderBy": "submitTimeUTC", "orderDescending": True},
            "paging": {"limit": "1000", "offset": "1"},
        }
    }


@pytest.mark.parametrize(
    ("operation", "fields", "why"),
    [
        ("charge", {"token": None}, "customerProfileId/paymentProfileId"),
        ("charge", {"token": "40338125"}, "customerProfileId/paymentProfileId"),
        ("charge", {"amount": Money.parse("0", "USD")}, "positive amount"),
        ("refund", {"reference": "2230581367", "token": None}, "customerProfileId/paymentProfileId"),
        ("refund", {"reference": None}, "transId of the charge"),
        ("void", {"reference": "0"}, "transId of the charge"),
        ("lookup", {"reference": None, "order_id": ""}, "needs the invoice number"),
    ],
)  # fmt: skip
def test_a_request_that_cannot_be_built_is_a_system_fail_and_is_not_sent(
    anet, operation, fields, why
):
    result = getattr(anet, operation)(request(operation, **fields))
    assert result.status is S.SYSTEM_FAIL
    assert result.reason.startswith("Request not sent") and why in result.reason


def test_a_missing_credential_is_a_system_fail_and_nothing_is_sent():
    bare = plugin("authorize_net", GatewayConfig("http://127.0.0.1:1", {"api_login_id": "x"}))
    result = bare.charge(request())
    assert result.status is S.SYSTEM_FAIL
    assert "missing credential transaction_key" in result.message


def test_the_sandbox_fixture_points_the_plugin_at_its_emulation(plugin_at_sandbox):
    ready = plugin_at_sandbox("authorize_net")
    assert ready.config.base_url.endswith("/authorize_net")
    assert set(ready.config.credentials) == {"api_login_id", "transaction_key"}


# Lookups ---------------------------------------------------------------------------------------

# RPT testGetTransactionDetailsRequestSuccess (responseCode and amounts as JSON numbers)
DETAILS = """{
   "transaction":{
      "transId":"2162566217","submitTimeUTC":"2011-09-01T16:30:49.39Z",
      "submitTimeLocal":"2011-09-01T10:30:49.39","transactionType":"authCaptureTransaction",
      "transactionStatus":"settledSuccessfully","responseCode":1,"responseReasonCode":1,
      "responseReasonDescription":"Approval","authCode":"JPG9DJ","AVSResponse":"Y",
      "batch":{"batchId":"1221577","settlementTimeUTC":"2011-09-01T16:38:54.52Z",
               "settlementTimeUTCSpecified":true,"settlementState":"settledSuccessfully"},
      "order":{"invoiceNumber":"60","description":"Auto-charge for Invoice #60"},
      "requestedAmountSpecified":false,"authAmount":1018.88,"settleAmount":1018.88,
      "payment":{"creditCard":{"cardNumber":"XXXX4444","expirationDate":"XXXX","cardType":"MasterCard"}},
      "customer":{"typeSpecified":false,"id":"4"},
      "recurringBilling":false,"product":"Card Not Present","marketType":"eCommerce"
   },
   "messages":{"resultCode":"Ok","message":[{"code":"I00001","text":"Successful."}]}
}"""
# REF "Get Transaction Details": the answer wrapped in its XML root, message as one object.
WRAPPED_DETAILS = (
    '{ "getTransactionDetailsResponse": { "-xmlns": "AnetApi/xml/v1/schema/AnetApiSchema.xsd", '
    '"-xmlns:xsd": "https://www.w3.org/2001/XMLSchema", "-xmlns:xsi": '
    '"https://www.w3.org/2001/XMLSchema-instance", "messages": { "resultCode": "Ok", "message": { '
    '"code": "I00001", "text": "Successful." } }, "transaction": { "transId": "12345", '
    '"refTransId": "12345", "submitTimeUTC": "2010-08-30T17:49:20.757Z", "submitTimeLocal": '
    '"2010-08-30T13:49:20.757", "transactionType": "authOnlyTransaction", "transactionStatus": '
    '"settledSuccessfully", "responseCode": "1", "responseReasonCode": "1", '
    '"responseReasonDescription": "Approval", "authCode": "000000", "order": { "invoiceNumber": '
    '"INV00001", "description": "some description" }, "requestedAmount": "5.00", "authAmount": '
    '"2.00", "settleAmount": "2.00", "payment": { "creditCard": { "cardNumber": "XXXX1111", '
    '"expirationDate": "XXXX", "cardType": "Visa" } }, "profile": { "customerProfileId": '
    '"1806660050", "customerPaymentProfileId": "1805324550" } } } }'
)
# RPT testGetUnsettledTransactionListRequestSuccess, with the refId echo Authorize.Net adds when
# the request carries one (the plugin sends the invoice number there).
UNSETTLED = """{
   "transactions":[
      {"transId":"2228546083","submitTimeUTC":"2015-02-16T03:31:42Z","submitTimeLocal":"2015-02-15T20:31:42",
       "transactionStatus":"authorizedPendingCapture","invoiceNumber":"1324567890","firstName":"Ellen",
       "lastName":"Johnson","accountType":"MasterCard","accountNumber":"XXXX0015","settleAmount":5.00,
       "marketType":"eCommerce","product":"Card Not Present","hasReturnedItemsSpecified":false},
      {"transId":"2228546203","submitTimeUTC":"2015-02-16T03:34:43Z","submitTimeLocal":"2015-02-15T20:34:43",
       "transactionStatus":"authorizedPendingCapture","invoiceNumber":"1324567890","firstName":"Ellen",
       "lastName":"Johnson","accountType":"MasterCard","accountNumber":"XXXX0015","settleAmount":5.00,
       "marketType":"eCommerce","product":"Card Not Present","hasReturnedItemsSpecified":false},
      {"transId":"2149186959","submitTimeUTC":"2017-06-16T06:34:57Z","submitTimeLocal":"2017-06-16T04:04:57",
       "transactionStatus":"voided","invoiceNumber":"none","accountType":"Visa",
       "accountNumber":"XXXX1111","settleAmount":0,"marketType":"eCommerce","product":"Card Not Present"}
   ],
   "refId":"1324567890",
   "messages":{"resultCode":"Ok","message":[{"code":"I00001","text":"Successful."}]}
}"""


def test_a_details_lookup_finds_a_settled_charge_with_amount_time_and_code(anet):
    result = anet.interpret(200, {}, DETAILS, operation="lookup")
    assert (result.status, result.code, result.reference) == (S.SUCCESS, "I00001", "2162566217")
    (finding,) = result.findings
    assert finding.state is Settlement.SETTLED
    assert finding.amount == Money(Decimal("1018.88"), "USD")
    assert finding.at == datetime(2011, 9, 1, 16, 30, 49, 390000)
    assert (finding.reference, finding.code) == ("2162566217", "1")


def test_an_answer_wrapped_in_its_xml_root_with_xmlns_keys_reads_the_same(anet):
    result = anet.interpret(200, {}, WRAPPED_DETAILS, operation="lookup")
    (finding,) = result.findings
    assert (result.status, finding.state, finding.amount) == (
        S.SUCCESS,
        Settlement.SETTLED,
        Money.parse("2.00", "USD"),
    )


def test_a_list_lookup_keeps_the_invoices_transactions_newest_first(anet):
    result = anet.interpret(200, {}, UNSETTLED, operation="lookup")
    assert result.status is S.SUCCESS
    assert [f.reference for f in result.findings] == ["2228546203", "2228546083"]
    assert {f.state for f in result.findings} == {Settlement.UNSETTLED}
    assert result.findings[0].amount == Money.parse("5.00", "USD")
    assert result.reference == "2228546203"


def test_a_list_lookup_without_the_invoice_holds_nothing(anet):
    body = UNSETTLED.replace('"refId":"1324567890"', '"refId":"INV-404"')
    result = anet.interpret(200, {}, body, operation="lookup")
    assert (result.status, result.findings, result.reference) == (S.SUCCESS, (), None)
    assert "No unsettled transaction for invoice INV-404" in result.message


def test_no_records_found_is_a_lookup_that_holds_nothing(anet):
    # RPT testGetSettledBatchListRequestNoRecords, with the refId echo.
    body = '{"refId":"INV-7","messages":{"resultCode":"Ok","message":[{"code":"I00004","text":"No records found."}]}}'
    result = anet.interpret(200, {}, body, operation="lookup")
    assert (result.status, result.code, result.findings) == (S.SUCCESS, "I00004", ())


def test_a_list_that_does_not_echo_the_invoice_cannot_be_matched(anet):
    body = UNSETTLED.replace('"refId":"1324567890",', "")
    assert anet.interpret(200, {}, body, operation="lookup").status is S.INDETERMINATE


def test_a_full_page_without_the_invoice_cannot_tell(anet):
    body = json.loads(UNSETTLED, parse_float=Decimal)
    body |= {"refId": "INV-7", "totalNumInResultSet": 4000}
    result = anet.interpret(200, {}, json.dumps(body, default=str), operation="lookup")
    assert result.status is S.INDETERMINATE
    assert "newest 3 of 4000" in result.reason


def test_a_lookup_of_an_unknown_trans_id_is_the_providers_record_not_found(anet):
    body = '{"messages":{"resultCode":"Error","message":[{"code":"E00040","text":"The record cannot be found."}]}}'
    result = anet.interpret(200, {}, body, operation="lookup")
    assert (result.status, result.code, result.findings) == (S.SYSTEM_FAIL, "E00040", ())


def test_a_transaction_status_settle_cannot_read_safely_makes_the_lookup_indeterminate(anet):
    body = DETAILS.replace("settledSuccessfully", "settlementError", 1)
    assert anet.interpret(200, {}, body, operation="lookup").status is S.INDETERMINATE


@pytest.mark.parametrize(
    ("status", "state"),
    [("capturedPendingSettlement", Settlement.UNSETTLED), ("FDSPendingReview", Settlement.UNSETTLED),
     ("settledSuccessfully", Settlement.SETTLED), ("voided", Settlement.VOIDED),
     ("declined", Settlement.DECLINED), ("expired", Settlement.DECLINED),
     ("refundPendingSettlement", Settlement.REFUNDED)],
)  # fmt: skip
def test_each_transaction_status_says_what_the_gateway_holds(status, state):
    assert STATES[status] is state


def test_the_mapping_lists_the_whole_public_code_table_as_text_keys():
    codes = shipped_mapping("authorize_net").codes
    assert len(codes) >= 400
    assert {"I00001", "I00004", "E00007", "E00027", "E00057", "0", "1", "11", "253", "2109"} <= set(
        codes
    )
    assert all(isinstance(c, str) for c in codes)


# Scrubbing -------------------------------------------------------------------------------------


def test_scrub_removes_credentials_profile_ids_card_data_and_signatures(anet):
    raw = (
        '{"createTransactionRequest": {"merchantAuthentication": {"name": "5KP3u95bQpv", '
        '"transactionKey": "346HZ32z3fP4hTG2"}, "refId": "4f9c1d2e8a7b6c5d4e3f", '
        '"transactionRequest": {"transactionType": "authCaptureTransaction", "amount": "12.30", '
        '"profile": {"customerProfileId": "40338125", "paymentProfile": {"paymentProfileId": '
        '"1000177237"}}, "payment": {"creditCard": {"cardNumber": "4111111111111111", '
        '"expirationDate": "2025-12", "cardCode": "999"}}, "order": {"invoiceNumber": "INV-7"}}}}'
    )
    assert anet.scrub(raw) == (
        '{"createTransactionRequest": {"merchantAuthentication": {"name": "[FILTERED]", '
        '"transactionKey": "[FILTERED]"}, "refId": "4f9c1d2e8a7b6c5d4e3f", '
        '"transactionRequest": {"transactionType": "authCaptureTransaction", "amount": "12.30", '
        '"profile": {"customerProfileId": "[FILTERED]", "paymentProfile": {"paymentProfileId": '
        '"[FILTERED]"}}, "payment": {"creditCard": {"cardNumber": "[FILTERED]", '
        '"expirationDate": "[FILTERED]", "cardCode": "[FILTERED]"}}, "order": {"invoiceNumber": "INV-7"}}}}'
    )


def test_scrub_of_an_answer_removes_profile_ids_hashes_and_keeps_the_rest(anet):
    scrubbed = anet.scrub(BOM + PROFILE_CHARGE)
    assert "40338125" not in scrubbed and "1000177237" not in scrubbed
    assert '"transHash": "[FILTERED]"' in scrubbed
    assert '"transHashSha2": "[FILTERED]"' in scrubbed
    assert '"transId": "2157786076"' in scrubbed and scrubbed.startswith(BOM)


def test_scrub_leaves_a_page_that_is_not_json_as_it_came(anet):
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    assert anet.scrub(page) == page


def test_the_period_listing_asks_settled_batches_within_31_days_and_pages_by_a_thousand():
    from datetime import datetime

    from portal.gateways.authorize_net import listing

    root, body = listing.batches_request(datetime(2026, 11, 1), datetime(2026, 12, 20))
    assert root == "getSettledBatchListRequest"
    assert (body["firstSettlementDate"], body["lastSettlementDate"]) == (
        "2026-11-01T00:00:00Z", "2026-12-02T00:00:00Z")  # fmt: skip
    root, body = listing.transactions_request("b:123:2")
    assert (root, body["batchId"], body["paging"]) == (
        "getTransactionListRequest", "123", {"limit": "1000", "offset": "2"})  # fmt: skip
    assert listing.transactions_request("u:1")[0] == "getUnsettledTransactionListRequest"
    assert listing.next_page("u:1", 1000, 2500) == "u:2"
    assert listing.next_page("b:9:3", 500, 2500) is None
    assert listing.next_page("u:1", 0, 0) is None


def test_a_charge_carries_its_own_reference_in_invoice_number_and_its_invoice_in_the_description(
    anet,
):
    # order.invoiceNumber (20 characters) cannot tell two invoices whose numbers share their
    # first 20 characters apart: it carries the charge's own reference, kept on the charge.
    reference = type(anet).order_reference(KEY)
    assert reference == KEY[:20]
    body = sent(anet.build("charge", request(order_id="INV-2026-000000123456789",
                                             order_reference=reference)))  # fmt: skip
    order = body["createTransactionRequest"]["transactionRequest"]["order"]
    assert order == {
        "invoiceNumber": KEY[:20],
        "description": f"Invoice INV-2026-000000123456789 (Settle {KEY})",
    }
    lookup = sent(anet.build("lookup", request("lookup", amount=None, order_reference=reference)))
    assert lookup["getUnsettledTransactionListRequest"]["refId"] == KEY[:20]
