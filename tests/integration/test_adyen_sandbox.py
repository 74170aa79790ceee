"""The Adyen plugin against the sandbox's Adyen emulation, over real HTTP on loopback."""

import uuid
from datetime import datetime

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest, Holdings
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration
S = GatewayStatus
TEN = Money.parse("10.00", "USD")


def adyen(sandbox, timeout=0.5, **credentials):
    creds = sandbox_credentials("adyen") | credentials
    return plugin("adyen", GatewayConfig(sandbox.url_for("adyen"), creds, timeout=timeout))


def charge(gateway, token="tok_approve", key=None, amount=TEN):
    key = key or uuid.uuid4().hex
    return gateway.charge(GatewayRequest("charge", key, "INV-1", amount, f"shopper_1|{token}"))


def follow_up(gateway, operation, reference, amount=TEN):
    request = GatewayRequest(operation, uuid.uuid4().hex, "INV-1", amount, reference=reference)
    return getattr(gateway, operation)(request)


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("tok_approve", S.SUCCESS, "resultCode.Authorised"),
        ("tok_decline", S.DECLINE, "refusal.12"),
        ("tok_do_not_honor", S.DECLINE, "refusal.2"),
        ("tok_cvc", S.VALIDATION_ERROR, "refusal.24"),
        ("tok_address", S.VALIDATION_ERROR, "refusal.32"),
        ("tok_closed", S.PERMANENT_FAIL, "refusal.5"),
        ("tok_review", S.REQUIRES_REVIEW, "resultCode.Pending"),
        ("tok_timeout", S.INDETERMINATE, "http_500"),
        ("tok_misconfigured", S.SYSTEM_FAIL, "error.010"),
        ("tok_refuse", S.SYSTEM_FAIL, "error.000"),
        ("tok_unknown", S.SYSTEM_FAIL, "refusal.99"),
    ],
)
def test_each_outcome_takes_its_status_from_adyens_code(sandbox, token, status, code):
    result = charge(adyen(sandbox), token)
    assert (result.status, result.code) == (status, code)
    assert result.unmapped is (token == "tok_unknown")
    assert result.rule.startswith("adyen/codes.yaml")


def test_a_repeated_idempotency_key_answers_the_first_answer_even_a_500(sandbox):
    gateway, key = adyen(sandbox), uuid.uuid4().hex
    first = charge(gateway, "tok_timeout", key=key)
    again = charge(gateway, "tok_timeout", key=key)
    assert first.status is again.status is S.INDETERMINATE
    assert len(sandbox.ledger.all()) == 1
    paid, repeat = charge(gateway, key=(key2 := uuid.uuid4().hex)), charge(gateway, key=key2)
    assert paid.reference == repeat.reference and len(sandbox.ledger.all()) == 2


def test_modifications_are_received_and_happen_at_once_without_a_webhook(sandbox):
    gateway = adyen(sandbox)
    paid = charge(gateway)
    asked = follow_up(gateway, "lookup", paid.reference)  # Settle's lookup is a reversal
    assert (asked.status, asked.code, asked.awaiting_confirmation) == (
        S.REQUIRES_REVIEW, "lookup.received", True,
    )  # fmt: skip
    assert sandbox.ledger.charge("adyen", paid.reference)["state"] == "voided"
    unknown = follow_up(gateway, "void", "NOSUCHPSP0000000")
    assert (unknown.status, unknown.code) == (S.SYSTEM_FAIL, "error.167")


def test_a_payment_is_refunded_in_parts_up_to_what_was_captured(sandbox):
    """Adyen refunds a payment in parts, each refund a modification of its own. Settle cannot ask
    what was refunded: Adyen has no lookup (Settle's is a reversal) and no listing it reads."""
    gateway = adyen(sandbox)
    paid = charge(gateway)
    sandbox.ledger.settle()
    refunded = [follow_up(gateway, "refund", paid.reference, Money.parse(a, "USD"))
                for a in ("4.00", "6.01", "6.00")]  # fmt: skip
    # Each is received (Adyen tells the outcome by webhook); the 6.01 failed: 6.00 was left.
    assert [(r.status, r.code) for r in refunded] == [(S.REQUIRES_REVIEW, "refund.received")] * 3
    assert [r["amount"] for r in sandbox.ledger.refunds("adyen", paid.reference)] == [
        "4.00", "6.00",
    ]  # fmt: skip
    assert sandbox.ledger.charge("adyen", paid.reference)["refunded"] == "10.00"
    again = follow_up(gateway, "refund", paid.reference, Money.parse("0.01", "USD"))
    assert again.status is S.REQUIRES_REVIEW and len(sandbox.ledger.refunds("adyen")) == 2
    assert gateway.holdings(datetime.now(), datetime.now()) == Holdings(
        (), gateway.not_reconcilable
    )


def test_wrong_key_or_merchant_account_is_a_system_fail_and_no_secret_is_stored(sandbox):
    result = charge(adyen(sandbox, api_key="AQE_wrong"))
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "error.000")
    assert "AQE_wrong" not in str(result.raw) and "tok_approve" not in str(result.raw)
    assert charge(adyen(sandbox, merchant_account="Other")).code == "error.901"
