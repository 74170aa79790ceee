"""The Payflow Pro plugin: the exact requests it builds, and how it reads Payflow's answers (pure).

Where each recorded answer comes from:
- OMNIPAY_DECLINE: thephpleague/omnipay-payflow, tests/Mock/PurchaseDecline.txt (a Payflow HTTP
  response recorded with its headers, Content-type: text/namevalue).
- OMNIPAY_APPROVED: thephpleague/omnipay-payflow, tests/Mock/CreateCardSuccess.txt.
- OMNIPAY_AUTH_FAILED and OMNIPAY_APPROVED_CVV: Omnipay's Payflow ResponseTest
  (namespace Omnipay\\Billing\\Payflow, testConstructError and testConstructSuccess).
- OMNIPAY_TAGGED: thephpleague/omnipay-payflow, tests/Message/ResponseTest.php, testDecodeData.
- GUIDE_APPROVED: developer.paypal.com/api/nvp-soap/payflow/integration-guide/transaction-responses/
  ("The following is an example response string").
- GUIDE_PAYPAL_NVP: developer.paypal.com/api/nvp-soap/payflow/integration-guide/header-parameters
  (the length-tagged answer sent when PAYPAL-NVP: Y is declared).
- GUIDE_*_REQUEST: the Payflow Pro Developer's Guide example parameter strings (Submitting Void
  and Inquiry Transactions, PNREF and CUSTREF forms), for scrub().
- The seed example (RESULT 4, "Invalid amount format" -> System Fail): domain.md section 2.
No recorded Inquiry answer was found in public sources; INQUIRY_* are built from the guide's field
list (RESULT, PNREF, RESPMSG, ORIGRESULT, ORIGPNREF, TRANSSTATE, CUSTREF, AMT, TRANSTIME).
"""

import hashlib
from datetime import datetime

import pytest

from portal.gateways.base import CallNotMade, GatewayConfig, GatewayRequest, Settlement
from portal.gateways.payflow_pro.plugin import CLIENT_CERTIFICATION_ID, custref, parse_nvp
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

S = GatewayStatus
KEY = "0123456789abcdef0123456789abcdef"
CREDENTIALS = {"partner": "PayPal", "vendor": "acme", "user": "acmeapi", "password": "pw&d=1"}

OMNIPAY_DECLINE = "RESULT=12&PNREF=A10AA63244D1&RESPMSG=Declined"
OMNIPAY_APPROVED = "RESULT=0&PNREF=A10AA633AB30&RESPMSG=Approved"
OMNIPAY_AUTH_FAILED = "RESULT=1&RESPMSG=User authentication failed"
OMNIPAY_APPROVED_CVV = "RESULT=0&PNREF=V19R3EF62FBE&RESPMSG=Approved&AUTHCODE=048747&CVV2MATCH=Y"
OMNIPAY_TAGGED = "BILLTOFIRSTNAME=Adrian&BILLTOLASTNAME[6]=&= Foo&TEST=Hi"
GUIDE_APPROVED = (
    "RESULT=0&PNREF=EFHP0D426A53&RESPMSG=APPROVED&AUTHCODE=25TEST&AVSADDR=Y&AVSZIP=N&CVV2MATCH=Y"
)
GUIDE_PAYPAL_NVP = (
    "RESULT=0&RESPMSG=Approved&TOKEN[20]=EC-97J718043X120051H&TIMESTAMP[20]=2012-10-11T15:19:37Z"
    "&CORRELATIONID[13]=274f8d4493dbe&ACK[7]=Success&VERSION[4]=92.0&BUILD[7]=3893058"
)
GUIDE_VOID_REQUEST = "TRXTYPE=V&TENDER=C&PARTNER=PayPal&VENDOR=SuperMerchant&USER=SuperMerchant&PWD=x1y2z3&ORIGID=VPNE12564395"
GUIDE_INQUIRY_REQUEST = "TRXTYPE=I&TENDER=C&PARTNER=PayPal&VENDOR=SuperMerchant&USER=SuperMerchant&PWD=x1y2z3&CUSTREF=Inv00012345"
INQUIRY_SETTLED = (
    "RESULT=0&PNREF=E1D5F772341A&RESPMSG=Approved&ORIGRESULT=0&ORIGPNREF=A10AA633AB30"
    "&TRANSSTATE=8&CUSTREF=0123456789ab&AMT=12.30&TRANSTIME=2026-01-02 03:04:05"
)


@pytest.fixture
def payflow():
    return plugin("payflow_pro", GatewayConfig("https://pilot.example/", CREDENTIALS, timeout=45))


def request(operation="charge", **kw):
    fields = dict(operation=operation, idempotency_key=KEY, order_id="INV-7",
                  amount=Money.parse("12.30", "USD"), token="A10AA633AB30")  # fmt: skip
    fields.update(kw)
    return GatewayRequest(**fields)


# The registry ---------------------------------------------------------------------------------


def test_the_sandbox_takes_the_plugin_with_exactly_its_test_credentials(plugin_at_sandbox):
    ready = plugin_at_sandbox("payflow_pro")
    assert ready.config.base_url.endswith("/payflow_pro")
    assert ready.config.credentials == sandbox_credentials("payflow_pro")
    assert set(ready.config.credentials) == set(ready.required_credentials)


def test_the_seed_example_payflow_4_invalid_amount_format_is_a_system_fail(payflow):
    result = payflow.interpret(200, {}, "RESULT=4&RESPMSG=Invalid amount format")
    assert (result.status, result.code, result.unmapped) == (S.SYSTEM_FAIL, "4", False)
    assert result.message == "Invalid amount format"


# Requests, field by field -------------------------------------------------------------------


def test_a_charge_is_a_reference_sale_on_the_stored_pnref_with_the_key_as_request_id(payflow):
    call = payflow.build("charge", request())
    assert (call.method, call.url) == ("POST", "https://pilot.example/")
    assert call.headers == {
        "Content-Type": "text/namevalue",
        "X-VPS-REQUEST-ID": KEY,
        "X-VPS-CLIENT-TIMEOUT": "45",
        "X-VPS-VIT-CLIENT-CERTIFICATION-ID": CLIENT_CERTIFICATION_ID,
        "X-VPS-VIT-INTEGRATION-PRODUCT": "Settle",
        "X-VPS-VIT-INTEGRATION-VERSION": "1.0",
    }
    # Not URL-encoded; the password holding & and = goes with its length tag.
    assert call.body == (
        b"TRXTYPE=S&TENDER=C&PARTNER=PayPal&VENDOR=acme&USER=acmeapi&PWD[6]=pw&d=1"
        b"&ORIGID=A10AA633AB30&AMT=12.30&CURRENCY=USD&CUSTREF=0123456789ab"
        b"&INVNUM=INV-7&COMMENT1=INV-7"
    )


def test_a_refund_is_a_credit_on_the_charge_pnref_with_its_own_custref(payflow):
    call = payflow.build("refund", request("refund", reference="A10AA63244D1", token=None))
    assert parse_nvp(call.body.decode()) == {
        "TRXTYPE": "C", "TENDER": "C", "PARTNER": "PayPal", "VENDOR": "acme", "USER": "acmeapi",
        "PWD": "pw&d=1", "ORIGID": "A10AA63244D1", "AMT": "12.30", "CUSTREF": "0123456789ab",
        "COMMENT1": "INV-7",
    }  # fmt: skip
    assert call.headers["X-VPS-REQUEST-ID"] == KEY


def test_a_void_names_only_the_charge_pnref(payflow):
    call = payflow.build("void", request("void", reference="A10AA63244D1", token=None))
    assert call.body == (
        b"TRXTYPE=V&TENDER=C&PARTNER=PayPal&VENDOR=acme&USER=acmeapi&PWD[6]=pw&d=1"
        b"&ORIGID=A10AA63244D1"
    )


def test_a_lookup_with_a_reference_is_an_inquiry_by_origid(payflow):
    call = payflow.build("lookup", request("lookup", reference="A10AA63244D1", amount=None))
    fields = parse_nvp(call.body.decode())
    assert (fields["TRXTYPE"], fields["VERBOSITY"]) == ("I", "HIGH")
    assert fields["ORIGID"] == "A10AA63244D1"
    assert "CUSTREF" not in fields


def test_a_lookup_without_a_reference_is_an_inquiry_by_the_charge_custref(payflow):
    original = "fedcba9876543210fedcba9876543210"
    call = payflow.build("lookup", request("lookup", amount=None, original_key=original))
    fields = parse_nvp(call.body.decode())
    assert (fields["TRXTYPE"], fields["CUSTREF"]) == ("I", "fedcba987654")
    assert "ORIGID" not in fields
    assert call.headers["X-VPS-REQUEST-ID"] == KEY  # the lookup's own key, not the charge's


def test_the_custref_of_a_key_that_is_not_settles_shape_is_a_stable_hash():
    assert custref("abc-1") == hashlib.sha256(b"abc-1").hexdigest()[:12]
    assert custref("abc-1") == custref("abc-1")


def test_a_request_id_longer_than_payflow_allows_is_hashed_to_32_characters(payflow):
    call = payflow.build("charge", request(idempotency_key="k" * 40))
    assert call.headers["X-VPS-REQUEST-ID"] == hashlib.sha256(b"k" * 40).hexdigest()[:32]


def test_a_zero_decimal_currency_is_still_sent_with_two_decimals(payflow):
    call = payflow.build("charge", request(amount=Money.parse("1000", "JPY")))
    assert parse_nvp(call.body.decode())["AMT"] == "1000.00"


@pytest.mark.parametrize(
    ("operation", "changes", "reason"),
    [
        ("charge", {"token": None}, "a charge needs an amount and a payment method token"),
        ("charge", {"amount": Money.parse("1.000", "KWD")}, "two decimals"),
        ("refund", {"reference": None}, "needs the PNREF"),
        ("lookup", {"reference": None, "original_key": None}, "PNREF or its idempotency key"),
    ],
)
def test_a_request_that_cannot_be_built_is_a_system_fail_and_nothing_is_sent(
    payflow, operation, changes, reason
):
    result = getattr(payflow, operation)(request(operation, **changes))
    assert result.status is S.SYSTEM_FAIL
    assert "Request not sent" in result.reason and reason in result.reason


def test_an_operation_payflow_is_not_asked_for_is_refused(payflow):
    with pytest.raises(CallNotMade, match="unknown operation 'capture'"):
        payflow.build("capture", request("capture"))


def test_a_missing_credential_is_a_system_fail_and_nothing_is_sent():
    bare = plugin("payflow_pro", GatewayConfig("http://127.0.0.1:1", {"partner": "PayPal"}))
    result = bare.charge(request())
    assert result.status is S.SYSTEM_FAIL
    assert "missing credential vendor, user, password" in result.message


# Recorded answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "message", "reference"),
    [
        (OMNIPAY_DECLINE, S.DECLINE, "12", "Declined", "A10AA63244D1"),
        (OMNIPAY_APPROVED, S.SUCCESS, "0", "Approved", "A10AA633AB30"),
        (OMNIPAY_AUTH_FAILED, S.SYSTEM_FAIL, "1", "User authentication failed", None),
        (OMNIPAY_APPROVED_CVV, S.SUCCESS, "0", "Approved", "V19R3EF62FBE"),
        (GUIDE_APPROVED, S.SUCCESS, "0", "APPROVED", "EFHP0D426A53"),
        (GUIDE_PAYPAL_NVP, S.SUCCESS, "0", "Approved", None),
    ],
)
def test_recorded_payflow_answers_read_as_their_code_decides(
    payflow, body, status, code, message, reference
):
    result = payflow.interpret(200, {"Content-type": "text/namevalue"}, body)
    assert (result.status, result.code, result.message, result.reference) == (
        status, code, message, reference,
    )  # fmt: skip
    assert result.unmapped is False


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0", S.SUCCESS), ("1", S.SYSTEM_FAIL), ("4", S.SYSTEM_FAIL), ("12", S.DECLINE),
        ("13", S.REQUIRES_REVIEW), ("23", S.PERMANENT_FAIL), ("24", S.VALIDATION_ERROR),
        ("30", S.INDETERMINATE), ("50", S.DECLINE), ("104", S.INDETERMINATE),
        ("112", S.VALIDATION_ERROR), ("114", S.VALIDATION_ERROR), ("126", S.REQUIRES_REVIEW),
        ("-12", S.INDETERMINATE), ("-1", S.SYSTEM_FAIL),
    ],
)  # fmt: skip
def test_each_result_decides_its_status_through_the_mapping(payflow, code, status):
    result = payflow.interpret(200, {}, f"RESULT={code}&PNREF=A10AA63244D1&RESPMSG=x")
    assert (result.status, result.code, result.unmapped) == (status, code, False)
    assert result.guidance


@pytest.mark.parametrize(
    ("body", "status"),
    [
        # Fraud Protection Services answers, as its guide shows them (PREFPSMSG names the filter).
        ("RESULT=125&PNREF=V53A0A30B542&RESPMSG=Declined by Fraud Service"
         "&PREFPSMSG=Reject Total Purchase Price Ceiling", S.PERMANENT_FAIL),
        ("RESULT=128&PNREF=V53A0A30B543&RESPMSG=Declined by merchant after being flagged for review"
         " by filters", S.PERMANENT_FAIL),
        ("RESULT=126&PNREF=V53A0A30B544&RESPMSG=Under review by Fraud Service"
         "&PREFPSMSG=Review: More than one rule was triggered for Review", S.REQUIRES_REVIEW),
    ],
)  # fmt: skip
def test_a_fraud_filters_rejection_is_never_retried_and_a_person_reviews_it_first(
    payflow, body, status
):
    result = payflow.interpret(200, {"Content-type": "text/namevalue"}, body)
    assert result.status is status  # never Decline, which the retry schedule retries
    assert "PayPal Manager's fraud" in result.guidance
    assert "before the customer is charged again" in result.guidance


def test_the_length_tag_form_keeps_ampersands_and_equals_in_values():
    assert parse_nvp(OMNIPAY_TAGGED) == {
        "BILLTOFIRSTNAME": "Adrian", "BILLTOLASTNAME": "&= Foo", "TEST": "Hi",
    }  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        "RESPMSG=Declined&PNREF=A10AA63244D1&RESULT=12",  # another order
        "RESULT=12&PNREF=A10AA63244D1&RESPMSG=Declined\r\n",  # a line end
        "\ufeffRESULT=12&PNREF=A10AA63244D1&RESPMSG=Declined",  # a BOM
        "\u00ef\u00bb\u00bfRESULT=12&PNREF=A10AA63244D1&RESPMSG=Declined",  # the BOM as Latin-1
        "RESULT=12&PNREF=A10AA63244D1&HOSTCODE=05&PROCAVS=Y&IAVS=N&RESPMSG=Declined&PPREF=x",
        "RESULT[2]=12&PNREF[12]=A10AA63244D1&RESPMSG[8]=Declined",  # every value length-tagged
        "result=12&pnref=A10AA63244D1&respmsg=Declined",  # lower-case names
        "RESULT=12&&PNREF=A10AA63244D1&RESPMSG=Declined&",  # empty pairs
    ],
)
def test_an_answer_in_another_shape_reads_the_same(payflow, body):
    result = payflow.interpret(200, {}, body)
    assert (result.status, result.code, result.message, result.reference) == (
        S.DECLINE, "12", "Declined", "A10AA63244D1",
    )  # fmt: skip


def test_a_duplicate_answer_keeps_the_first_result_and_says_nothing_was_charged_again(payflow):
    result = payflow.interpret(200, {}, OMNIPAY_APPROVED + "&DUPLICATE=1")
    assert (result.status, result.code, result.reference) == (S.SUCCESS, "0", "A10AA633AB30")
    assert "DUPLICATE=1" in result.message and "nothing was charged again" in result.message


def test_an_unknown_result_falls_back_to_system_fail_and_is_marked_unmapped(payflow):
    result = payflow.interpret(200, {}, "RESULT=9999&PNREF=A10AA63244D1&RESPMSG=Something new")
    assert (result.status, result.code, result.unmapped) == (S.SYSTEM_FAIL, "9999", True)
    assert result.message == "Something new"
    assert "codes.yaml" in result.guidance


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        (500, '<html lang="en"><head><title>Internal Server Error</title></head></html>'),
        (503, "Service Unavailable"),
        (200, ""),
        (200, "  \r\n"),
        (200, "RESPMSG=Approved&PNREF=A10AA633AB30"),  # no RESULT
        (200, "RESULT=OK&RESPMSG=Approved"),  # not a number
        (200, "RESULT[5]=0&RESPMSG=Approved"),  # a length tag past its value
        (200, '{"RESULT": 0}'),
    ],
)
def test_an_unreadable_answer_or_error_page_is_indeterminate_with_the_reason(
    payflow, http_status, body
):
    result = payflow.interpret(http_status, {}, body)
    assert result.status is S.INDETERMINATE
    assert result.reason.startswith("Unreadable answer")
    assert result.code is None


# Inquiries (lookups) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transstate", "origresult", "state"),
    [
        ("6", "0", Settlement.UNSETTLED),
        ("3", "0", Settlement.UNSETTLED),
        ("8", "0", Settlement.SETTLED),
        ("7", "0", Settlement.SETTLED),
        ("1", "0", Settlement.VOIDED),
        ("1", "12", Settlement.DECLINED),
        ("11", "0", Settlement.DECLINED),
    ],
)
def test_an_inquiry_says_what_the_gateway_holds(payflow, transstate, origresult, state):
    body = INQUIRY_SETTLED.replace("TRANSSTATE=8", f"TRANSSTATE={transstate}").replace(
        "ORIGRESULT=0", f"ORIGRESULT={origresult}"
    )
    result = payflow.interpret(200, {}, body, operation="lookup")
    assert (result.status, result.code, result.reference) == (S.SUCCESS, "0", "A10AA633AB30")
    (finding,) = result.findings
    assert finding.state is state
    assert finding.amount == Money.parse("12.30", "USD")
    assert finding.reference == "A10AA633AB30"
    assert finding.at == datetime(2026, 1, 2, 3, 4, 5)
    assert finding.code == origresult


def test_an_inquiry_in_another_currency_reads_its_currency(payflow):
    body = INQUIRY_SETTLED + "&CURRENCY=EUR"
    (finding,) = payflow.interpret(200, {}, body, operation="lookup").findings
    assert finding.amount == Money.parse("12.30", "EUR")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("RESULT=19&RESPMSG=Original transaction ID not found", "I19"),
        ("RESULT=20&RESPMSG=Cannot find the customer reference number", "I20"),
    ],
)
def test_an_inquiry_that_finds_nothing_is_a_successful_lookup_with_no_findings(payflow, body, code):
    result = payflow.interpret(200, {}, body, operation="lookup")
    assert (result.status, result.code, result.findings, result.unmapped) == (
        S.SUCCESS, code, (), False,
    )  # fmt: skip


def test_the_same_not_found_result_on_a_void_is_our_error(payflow):
    result = payflow.interpret(
        200, {}, "RESULT=19&RESPMSG=Original transaction ID not found", "void"
    )
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "19")


def test_a_rejected_login_on_an_inquiry_is_still_a_system_fail(payflow):
    result = payflow.interpret(200, {}, OMNIPAY_AUTH_FAILED, operation="lookup")
    assert (result.status, result.code, result.findings) == (S.SYSTEM_FAIL, "1", ())


@pytest.mark.parametrize(
    "body",
    [
        "RESULT=0&PNREF=E1D5F772341A&RESPMSG=Approved",  # says nothing of the transaction
        INQUIRY_SETTLED.replace("TRANSSTATE=8", "TRANSSTATE=99"),  # a state Payflow never lists
        INQUIRY_SETTLED.replace("&AMT=12.30", ""),  # no amount to void or refund
        INQUIRY_SETTLED.replace("AMT=12.30", "AMT=12,30"),
    ],
)
def test_an_inquiry_answer_that_cannot_be_read_is_indeterminate(payflow, body):
    result = payflow.interpret(200, {}, body, operation="lookup")
    assert result.status is S.INDETERMINATE
    assert result.findings == ()


# What may be stored -------------------------------------------------------------------------


def test_scrub_removes_the_credentials_and_the_stored_card_reference_of_a_sale(payflow):
    raw = payflow.build("charge", request()).body.decode()
    assert payflow.scrub(raw) == (
        "TRXTYPE=S&TENDER=C&PARTNER=[FILTERED]&VENDOR=[FILTERED]&USER=[FILTERED]&PWD=[FILTERED]"
        "&ORIGID=[FILTERED]&AMT=12.30&CURRENCY=USD&CUSTREF=0123456789ab&INVNUM=INV-7&COMMENT1=INV-7"
    )


def test_scrub_keeps_the_pnref_a_void_or_inquiry_refers_to(payflow):
    assert payflow.scrub(GUIDE_VOID_REQUEST) == (
        "TRXTYPE=V&TENDER=C&PARTNER=[FILTERED]&VENDOR=[FILTERED]&USER=[FILTERED]&PWD=[FILTERED]"
        "&ORIGID=VPNE12564395"
    )
    assert payflow.scrub(GUIDE_INQUIRY_REQUEST) == (
        "TRXTYPE=I&TENDER=C&PARTNER=[FILTERED]&VENDOR=[FILTERED]&USER=[FILTERED]&PWD=[FILTERED]"
        "&CUSTREF=Inv00012345"
    )


def test_scrub_removes_card_data_and_a_length_tagged_secret_whole(payflow):
    # The guide's direct-card sale (Gateway Developer Guide, "Name-Value Pair Transaction
    # Request Body"), with a password that needs its length tag.
    raw = (
        "TRXTYPE[1]=S&ACCT[16]=5105105105105100&EXPDATE[4]=0109&TENDER[1]=C&INVNUM[8]=INV12345"
        "&AMT[5]=25.12&CVV2=123&USER[6]=jsmith&VENDOR[6]=jsmith&PARTNER[6]=PayPal&PWD[7]=te&st=1"
    )
    assert payflow.scrub(raw) == (
        "TRXTYPE[1]=S&ACCT=[FILTERED]&EXPDATE=[FILTERED]&TENDER[1]=C&INVNUM[8]=INV12345"
        "&AMT[5]=25.12&CVV2=[FILTERED]&USER=[FILTERED]&VENDOR=[FILTERED]&PARTNER=[FILTERED]"
        "&PWD=[FILTERED]"
    )


def test_scrub_leaves_an_answer_and_an_unreadable_page_as_they_are(payflow):
    assert payflow.scrub(GUIDE_APPROVED) == GUIDE_APPROVED
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    assert payflow.scrub(page) == page
