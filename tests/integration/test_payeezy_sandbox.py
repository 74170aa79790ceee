"""The Payeezy plugin against the sandbox's Payeezy emulation, over real HTTP on loopback."""

import time
import uuid
from datetime import datetime

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration
S = GatewayStatus
TEN = Money.parse("10.00", "USD")


def payeezy(sandbox, timeout=0.5, **credentials):
    creds = sandbox_credentials("payeezy") | credentials
    return plugin("payeezy", GatewayConfig(sandbox.url_for("payeezy"), creds, timeout=timeout))


def charge(gateway, token="tok_approve", key=None, amount=TEN):
    key = key or uuid.uuid4().hex
    return gateway.charge(
        GatewayRequest("charge", key, "INV-1", amount, f"{token}/Visa/1299/Jane Doe")
    )


def follow_up(gateway, operation, reference, amount=TEN):
    request = GatewayRequest(operation, uuid.uuid4().hex, "INV-1", amount, reference=reference)
    return getattr(gateway, operation)(request)


def lookup(gateway, original_key):
    request = GatewayRequest("lookup", uuid.uuid4().hex, "INV-1", original_key=original_key)
    return gateway.lookup(request)


def only_charge(sandbox):
    (held,) = sandbox.ledger.all()
    assert held["id"].startswith("ET")
    return held


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("tok_approve", S.SUCCESS, "100"),
        ("tok_decline", S.DECLINE, "302"),
        ("tok_do_not_honor", S.DECLINE, "530"),
        ("tok_cvc", S.VALIDATION_ERROR, "531"),
        ("tok_address", S.VALIDATION_ERROR, "260"),
        ("tok_closed", S.PERMANENT_FAIL, "550"),
        ("tok_review", S.REQUIRES_REVIEW, "401"),
        ("tok_timeout", S.INDETERMINATE, "internal_server_error"),
        ("tok_misconfigured", S.SYSTEM_FAIL, "833"),
        ("tok_refuse", S.SYSTEM_FAIL, "http_401"),
        ("tok_unknown", S.SYSTEM_FAIL, "999"),
    ],
)
def test_a_charge_with_each_outcome_token_gets_its_status(sandbox, token, status, code):
    result = charge(payeezy(sandbox), token)
    assert (result.status, result.code) == (status, code)
    assert result.unmapped is (token == "tok_unknown")
    assert result.message


def test_an_approved_charge_is_held_under_payeezys_own_ids(sandbox):
    result = charge(payeezy(sandbox))
    held = only_charge(sandbox)
    transaction_id, tag = result.reference.split("/")
    assert (held["id"], held["state"], held["amount"]) == (transaction_id, "unsettled", "10.00")
    assert tag.isdigit() and len(tag) == 10


def test_a_bare_token_is_charged_too(sandbox):
    gateway = payeezy(sandbox)
    result = gateway.charge(GatewayRequest("charge", uuid.uuid4().hex, "INV-1", TEN, "tok_decline"))
    assert (result.status, result.code) == (S.DECLINE, "302")


def test_an_expired_card_is_refused_before_processing(sandbox):
    gateway = payeezy(sandbox)
    result = gateway.charge(
        GatewayRequest("charge", uuid.uuid4().hex, "INV-1", TEN, "tok_approve/Visa/0120/Jane Doe")
    )
    assert (result.status, result.code) == (S.VALIDATION_ERROR, "card_expired")
    assert sandbox.ledger.all() == []


@pytest.mark.parametrize(
    ("wrong", "code"),
    [
        ({"api_secret": "not-the-secret"}, "http_403"),
        ({"api_key": "not-the-key"}, "oauth.v2.InvalidApiKey"),
        ({"merchant_token": "fdoa-not-the-token"}, "http_401"),
    ],
)
def test_bad_credentials_are_system_fail_with_payeezys_code(sandbox, wrong, code):
    result = charge(payeezy(sandbox, **wrong))
    assert (result.status, result.code, result.unmapped) == (S.SYSTEM_FAIL, code, False)
    assert sandbox.ledger.all() == []


def test_a_signature_older_than_five_minutes_is_refused(sandbox):
    gateway = payeezy(sandbox)
    gateway.now_ms = lambda: time.time_ns() // 1_000_000 - 10 * 60 * 1000
    result = charge(gateway)
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "http_403")
    assert sandbox.ledger.all() == []


def test_a_settled_charge_is_refunded(sandbox):
    gateway = payeezy(sandbox)
    charged = charge(gateway)
    sandbox.ledger.settle()
    refund = follow_up(gateway, "refund", charged.reference)
    assert (refund.status, refund.code) == (S.SUCCESS, "100")
    assert refund.reference and refund.reference != charged.reference
    assert only_charge(sandbox)["state"] == "refunded"


def test_a_settled_charge_is_refunded_in_parts_up_to_its_amount(sandbox):
    """Each refund is a transaction of its own. Settle cannot ask what was refunded: Payeezy has
    no transaction query (Settle's lookup is a reversal) and no listing."""
    gateway = payeezy(sandbox)
    charged = charge(gateway)
    sandbox.ledger.settle()
    refunds = [follow_up(gateway, "refund", charged.reference, Money.parse(a, "USD"))
               for a in ("4.00", "6.01", "6.00", "0.01")]  # fmt: skip
    assert [(r.status, r.code) for r in refunds] == [
        (S.SUCCESS, "100"), (S.SYSTEM_FAIL, "64"), (S.SUCCESS, "100"), (S.SYSTEM_FAIL, "64"),
    ]  # fmt: skip
    assert refunds[0].reference != refunds[2].reference
    kept = sandbox.ledger.refunds("payeezy", only_charge(sandbox)["id"])
    assert [r["amount"] for r in kept] == ["4.00", "6.00"]
    assert only_charge(sandbox)["refunded"] == "10.00"
    assert gateway.holdings(datetime.now(), datetime.now()).problem == gateway.not_reconcilable


def test_an_unsettled_charge_is_voided(sandbox):
    gateway = payeezy(sandbox)
    charged = charge(gateway)
    void = follow_up(gateway, "void", charged.reference)
    assert (void.status, void.code) == (S.SUCCESS, "100")
    assert only_charge(sandbox)["state"] == "voided"


def test_a_second_void_answers_already_reversed_and_is_success(sandbox):
    gateway = payeezy(sandbox)
    charged = charge(gateway)
    follow_up(gateway, "void", charged.reference)
    again = follow_up(gateway, "void", charged.reference)
    assert (again.status, again.code) == (S.SUCCESS, "305")
    assert only_charge(sandbox)["state"] == "voided"


def test_a_settled_charge_cannot_be_voided_and_an_unsettled_one_cannot_be_refunded(sandbox):
    gateway = payeezy(sandbox)
    unsettled = charge(gateway)
    refund = follow_up(gateway, "refund", unsettled.reference)
    assert (refund.status, refund.code) == (S.SYSTEM_FAIL, "64")
    sandbox.ledger.settle()
    void = follow_up(gateway, "void", unsettled.reference)
    assert (void.status, void.code) == (S.SYSTEM_FAIL, "581")
    assert only_charge(sandbox)["state"] == "settled"


def test_a_refund_with_a_wrong_tag_is_refused_as_invalid_transaction_tag(sandbox):
    gateway = payeezy(sandbox)
    transaction_id = charge(gateway).reference.split("/")[0]
    sandbox.ledger.settle()
    refund = follow_up(gateway, "refund", f"{transaction_id}/1234567890")
    assert (refund.status, refund.code) == (S.SYSTEM_FAIL, "69")
    assert only_charge(sandbox)["state"] == "settled"


def test_a_lookup_of_an_unsettled_charge_reverses_it_and_finds_it_voided(sandbox):
    gateway = payeezy(sandbox)
    key = uuid.uuid4().hex
    charge(gateway, key=key)
    result = lookup(gateway, key)
    assert (result.status, result.code) == (S.SUCCESS, "reversal:100")
    (finding,) = result.findings
    assert (finding.state, finding.amount) == (Settlement.VOIDED, TEN)
    assert finding.at is not None
    assert only_charge(sandbox)["state"] == "voided"


def test_a_lookup_of_a_timed_out_charge_finds_it_and_gives_the_money_back(sandbox):
    key = uuid.uuid4().hex
    timed_out = charge(payeezy(sandbox, timeout=0.3), "tok_hang", key=key)
    assert timed_out.status is S.INDETERMINATE
    assert only_charge(sandbox)["state"] == "unsettled"
    result = lookup(payeezy(sandbox), key)
    assert [f.state for f in result.findings] == [Settlement.VOIDED]
    assert only_charge(sandbox)["state"] == "voided"


def test_a_lookup_of_a_settled_charge_cannot_reverse_it_and_stays_indeterminate(sandbox):
    gateway = payeezy(sandbox)
    key = uuid.uuid4().hex
    charge(gateway, key=key)
    sandbox.ledger.settle()
    result = lookup(gateway, key)
    assert (result.status, result.code, result.findings) == (S.INDETERMINATE, "reversal:581", ())
    assert "Payeezy portal" in result.guidance
    assert only_charge(sandbox)["state"] == "settled"


def test_a_lookup_of_a_charge_that_never_arrived_finds_nothing(sandbox):
    result = lookup(payeezy(sandbox), uuid.uuid4().hex)
    assert (result.status, result.code, result.findings) == (S.SUCCESS, "reversal:585", ())


def test_a_lookup_of_a_declined_charge_finds_nothing_held(sandbox):
    gateway = payeezy(sandbox)
    key = uuid.uuid4().hex
    charge(gateway, "tok_decline", key=key)
    result = lookup(gateway, key)
    assert (result.status, result.findings) == (S.SUCCESS, ())
    assert only_charge(sandbox)["state"] == "declined"


def test_a_re_sent_charge_with_the_same_key_is_refused_as_a_duplicate_and_never_charged_twice(
    sandbox,
):
    gateway = payeezy(sandbox)
    key = uuid.uuid4().hex
    first = charge(gateway, key=key)
    second = charge(gateway, key=key)
    assert first.status is S.SUCCESS
    assert (second.status, second.code) == (S.INDETERMINATE, "63")
    assert only_charge(sandbox)["state"] == "unsettled"


def test_a_re_sent_timed_out_charge_is_refused_as_a_duplicate(sandbox):
    key = uuid.uuid4().hex
    charge(payeezy(sandbox, timeout=0.3), "tok_hang", key=key)
    again = charge(payeezy(sandbox, timeout=5), "tok_hang", key=key)
    assert (again.status, again.code) == (S.INDETERMINATE, "63")
    assert len(sandbox.ledger.all()) == 1


def test_no_answer_within_the_timeout_is_indeterminate_and_the_charge_is_held(sandbox):
    result = charge(payeezy(sandbox, timeout=0.3), "tok_hang")
    assert result.status is S.INDETERMINATE
    assert "no answer within" in result.reason
    assert only_charge(sandbox)["state"] == "unsettled"


def test_a_connection_dropped_after_sending_is_indeterminate(sandbox):
    result = charge(payeezy(sandbox), "tok_drop")
    assert result.status is S.INDETERMINATE
    assert "dropped after the request was sent" in result.reason


def test_a_garbage_answer_is_indeterminate_and_kept_for_the_record(sandbox):
    result = charge(payeezy(sandbox), "tok_garbage")
    assert result.status is S.INDETERMINATE
    assert "not JSON" in result.reason
    assert result.raw["response"]["body"].startswith("<html>")


def test_nothing_stored_holds_the_credentials_the_token_or_the_signature(sandbox):
    gateway = payeezy(sandbox)
    key = uuid.uuid4().hex
    charged = charge(gateway, key=key)
    void = follow_up(gateway, "void", charged.reference)
    looked_up = lookup(gateway, key)
    stored = str([charged.raw, void.raw, looked_up.raw])
    assert '"[FILTERED]"' in str(charged.raw["request"]["body"])
    for secret in [*sandbox_credentials("payeezy").values(), "tok_approve", "Jane Doe"]:
        assert secret not in stored
