"""CyberSource, Payeezy, Payflow Pro and Authorize.Net: an answer decides only for the request it
answers, and a fraud tool's "no" is never left to the retry schedule.

- An error answer is decided by its own errors, and the reference Settle keeps is the one of a
  transaction this request made: never an id the answer merely echoes from the request (on a
  refund or void, the charge's own).
- A rejection by the merchant's own fraud tools (Decision Manager, Smart Authorization, the Fraud
  Detection Suite, FraudScreen, Fraud Protection Services) is never a Decline, which the next run
  would retry: it is final (Permanent Fail) or held for a person's review (Requires Review).

Payeezy bodies are shaped as Payeezy answers: it repeats the request's fields beside its own
(Active Merchant test/unit/gateways/payeezy_test.rb, failed_purchase_response and
failed_refund_response, repeat method, amount, currency and transaction_type), and a refund or
void names its charge by transaction_id (in the URL) and transaction_tag (in the body).
"""

import json
import re

import pytest

from portal.gateways.base import GatewayConfig
from portal.gateways.registry import plugin, shipped_mapping
from portal.statuses import GatewayStatus

S = GatewayStatus
CHARGE = {"transaction_id": "ET114541", "transaction_tag": "55083431"}  # what the refund names


@pytest.fixture
def payeezy():
    creds = {"api_key": "k", "api_secret": "s", "merchant_token": "t"}
    return plugin("payeezy", GatewayConfig("https://api-cert.payeezy.com", creds))


def follow_up_answer(operation: str, status: str, **fields) -> str:
    body = {"correlation_id": "228.1449520714925", "transaction_status": status,
            "validation_status": "success", "transaction_type": operation, "method": "token",
            "amount": "1230", "currency": "USD", **fields}  # fmt: skip
    return json.dumps(body)


# Payeezy ----------------------------------------------------------------------------------------


def test_a_refund_refused_with_an_error_keeps_no_reference_of_the_charge_it_echoes(payeezy):
    body = follow_up_answer(
        "refund", "Not Processed", **CHARGE,
        Error={"messages": [{"code": "server_error",
                             "description": "ProcessedBad Request (64) - Invalid Refund"}]},
    )  # fmt: skip
    result = payeezy.interpret(400, {}, body, operation="refund")
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "64")
    assert result.reference is None  # not "ET114541/55083431": that is the charge


def test_a_void_payeezy_did_not_process_keeps_no_reference_of_the_charge_it_echoes(payeezy):
    body = follow_up_answer(
        "void", "Not Processed", **CHARGE,
        gateway_resp_code="69", gateway_message="Invalid Transaction Tag",
    )  # fmt: skip
    result = payeezy.interpret(201, {}, body, operation="void")
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "69")
    assert result.reference is None


def test_a_declined_refund_keeps_no_reference_that_may_be_the_charges(payeezy):
    body = follow_up_answer(
        "refund", "declined", transaction_id="ET114541", transaction_tag="69607256",
        bank_resp_code="585", bank_message="No Original Authorization Found",
        gateway_resp_code="00", gateway_message="Transaction Normal",
    )  # fmt: skip
    result = payeezy.interpret(201, {}, body, operation="refund")
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "585")
    assert result.reference is None


def test_an_approved_refund_still_keeps_its_own_reference(payeezy):
    body = follow_up_answer(
        "refund", "approved", transaction_id="55084328", transaction_tag="55084328",
        bank_resp_code="100", bank_message="Approved",
        gateway_resp_code="00", gateway_message="Transaction Normal",
    )  # fmt: skip
    result = payeezy.interpret(201, {}, body, operation="refund")
    assert (result.status, result.reference) == (S.SUCCESS, "55084328/55084328")


# Fraud tools -------------------------------------------------------------------------------------

# What a code's description says when the merchant's own fraud tools decided it.
FRAUD_TOOL = re.compile(r"fraud|decision manager|smart authorization|filter", re.IGNORECASE)


@pytest.mark.parametrize("provider", ["cybersource", "payeezy", "payflow_pro", "authorize_net"])
def test_no_fraud_tools_rejection_is_left_to_the_retry_schedule(provider):
    mapping = shipped_mapping(provider)
    retried = [
        code
        for code, entry in mapping.codes.items()
        if FRAUD_TOOL.search(entry.description) and entry.status is S.DECLINE
    ]
    assert retried == []
