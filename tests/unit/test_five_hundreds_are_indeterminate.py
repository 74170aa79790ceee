"""A 5xx answer came from the gateway after the request reached it: an error envelope that the
mapping does not decide (untyped, or a code it does not list) cannot say the money did not move,
so it is Indeterminate for every provider and every operation (domain.md section 2), never the
mapping's default System Fail. A code the mapping lists still decides."""

import json

import pytest

from portal.gateways.base import GatewayConfig
from portal.gateways.registry import names, plugin
from portal.statuses import GatewayStatus as S

CREDENTIALS = {
    "api_key": "k", "merchant_account": "m", "api_login_id": "l", "transaction_key": "t",
    "merchant_id": "m", "public_key": "p", "private_key": "s", "api_secret": "s",
    "merchant_token": "t", "partner": "p", "vendor": "v", "user": "u", "password": "p",
    "secret_key": "sk_test",
}  # fmt: skip

# Each provider's own error envelope, as its 5xx answers carry it: typed with a code the mapping
# lists as a failure, or untyped.
ENVELOPES = {
    "stripe": [
        {"error": {"type": "api_error", "message": "An unknown error occurred"}},
        {"error": {"type": "unheard_of_error", "message": "Something new"}},
        {"error": {"message": "Something went wrong"}},
    ],
    "authorize_net": [
        {"messages": {"resultCode": "Error",
                      "message": [{"code": "E00001", "text": "An error occurred during processing."}]}},
        {"messages": {"resultCode": "Error",
                      "message": [{"code": "E99999", "text": "Something new."}]}},
    ],
    "braintree": [
        {"errors": [{"message": "An unexpected error occurred", "extensions": {"errorClass": "INTERNAL"}}]},
        {"errors": [{"message": "Validation error", "extensions": {"errorClass": "VALIDATION",
                                                               "legacyCode": "81503"}}]},
    ],
    "adyen": [
        {"status": 500, "errorCode": "905", "message": "Payment details are not supported",
         "errorType": "configuration"},
        {"status": 500, "message": "Internal error"},
    ],
    "payeezy": [
        {"transaction_status": "Not Processed", "validation_status": "failed",
         "Error": {"messages": [{"code": "server_error", "description": "Internal error"}]}},
        {"code": "500", "message": "Internal Server Error"},
    ],
    "sandbox": [
        {"error": {"code": "zz_never_heard_of", "message": "Declined"}},
        {"error": {"message": "boom"}},
    ],
}  # fmt: skip


def soap(inner: str) -> str:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f"{inner}</soap:Body></soap:Envelope>"
    )


CASES = [(name, json.dumps(body)) for name, bodies in ENVELOPES.items() for body in bodies] + [
    ("payflow_pro", "RESULT=99999&RESPMSG=Something new"),
    ("payflow_pro", "RESPMSG=Internal error"),
    (
        "cybersource",
        soap(
            '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.109">'
            "<c:decision>REJECT</c:decision><c:reasonCode>999</c:reasonCode></c:replyMessage>"
        ),
    ),
    (
        "cybersource",
        soap(
            "<soap:Fault><faultcode>soap:Server</faultcode><faultstring>Internal</faultstring>"
            "</soap:Fault>"
        ),
    ),
]


def test_every_provider_is_covered():
    assert {name for name, _ in CASES} == set(names())


@pytest.mark.parametrize("operation", ["charge", "refund", "void"])
@pytest.mark.parametrize("http_status", [500, 502, 503])
@pytest.mark.parametrize(("provider", "body"), CASES)
def test_a_gateway_that_fails_on_its_side_leaves_the_charge_indeterminate(
    provider, body, http_status, operation
):
    gateway = plugin(provider, GatewayConfig("http://127.0.0.1:9", CREDENTIALS))
    result = gateway.answer(http_status, {"Content-Type": "application/json"}, body, operation)
    assert result.status is S.INDETERMINATE, (provider, body, result)


def test_a_code_the_mapping_lists_still_decides_a_5xx():
    # CyberSource answers every SOAP fault with HTTP 500: a refused login never reached the
    # money, and its mapping line says so.
    cybersource = plugin("cybersource", GatewayConfig("http://127.0.0.1:9", CREDENTIALS))
    refused = soap(
        '<soap:Fault xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-'
        'wssecurity-secext-1.0.xsd"><faultcode>wsse:FailedCheck</faultcode>'
        "<faultstring>Security Data : UsernameToken authentication failed.</faultstring>"
        "</soap:Fault>"
    )
    assert cybersource.answer(500, {}, refused, "charge").status is S.SYSTEM_FAIL


def test_a_4xx_decline_stays_a_decline():
    # Only the gateway's own failures are in doubt: a 402 card error is the issuer's word.
    stripe = plugin("stripe", GatewayConfig("http://127.0.0.1:9", CREDENTIALS))
    body = json.dumps({"error": {"type": "card_error", "code": "card_declined",
                                 "decline_code": "do_not_honor"}})  # fmt: skip
    assert stripe.answer(402, {}, body, "charge").status is S.DECLINE
