"""Payflow Pro against its emulation in the sandbox server, over real HTTP."""

import uuid

import pytest
import requests

from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration
S = GatewayStatus
PROVIDER = "payflow_pro"


def payflow(sandbox, timeout=0.5, credentials=None):
    creds = sandbox_credentials(PROVIDER) if credentials is None else credentials
    return plugin(PROVIDER, GatewayConfig(sandbox.url_for(PROVIDER), creds, timeout=timeout))


def charge(gateway, token="tok_approve", key=None, amount="10.00", invoice="INV-0001"):
    return gateway.charge(
        GatewayRequest(
            "charge", key or uuid.uuid4().hex, invoice, Money.parse(amount, "USD"), token
        )
    )


def follow_up(gateway, operation, reference, amount="10.00"):
    request = GatewayRequest(
        operation, uuid.uuid4().hex, "INV-0001", Money.parse(amount, "USD"), reference=reference
    )
    return getattr(gateway, operation)(request)


def lookup(gateway, reference=None, original_key=None):
    request = GatewayRequest(
        "lookup", uuid.uuid4().hex, "INV-0001", reference=reference, original_key=original_key
    )
    return gateway.lookup(request)


@pytest.mark.parametrize(
    ("token", "status", "code", "held"),
    [
        ("tok_approve", S.SUCCESS, "0", "unsettled"),
        ("tok_decline", S.DECLINE, "50", "declined"),
        ("tok_do_not_honor", S.DECLINE, "12", "declined"),
        ("tok_cvc", S.VALIDATION_ERROR, "114", "declined"),
        ("tok_address", S.VALIDATION_ERROR, "112", "declined"),
        ("tok_closed", S.PERMANENT_FAIL, "23", "declined"),
        ("tok_review", S.REQUIRES_REVIEW, "126", "unsettled"),
        ("tok_timeout", S.INDETERMINATE, "104", "unsettled"),
        ("tok_misconfigured", S.SYSTEM_FAIL, "5", "declined"),
    ],
)
def test_each_test_token_charges_with_its_payflow_result(sandbox, token, status, code, held):
    result = charge(payflow(sandbox), token)
    assert (result.status, result.code, result.unmapped) == (status, code, False)
    (kept,) = sandbox.ledger.all()
    assert (kept["id"], kept["state"], kept["code"]) == (result.reference, held, code)
    assert len(result.reference) == 12 and result.reference.isalnum()


def test_a_refused_token_gets_payflows_rejected_login_and_charges_nothing(sandbox):
    result = charge(payflow(sandbox), "tok_refuse")
    assert (result.status, result.code, result.message) == (
        S.SYSTEM_FAIL, "1", "User authentication failed",
    )  # fmt: skip
    assert sandbox.ledger.all() == []


def test_a_result_no_mapping_knows_is_a_system_fail_marked_unmapped(sandbox):
    result = charge(payflow(sandbox), "tok_unknown")
    assert (result.status, result.code, result.unmapped) == (S.SYSTEM_FAIL, "9999", True)


def test_bad_credentials_are_a_system_fail_with_payflows_code(sandbox):
    wrong = {**sandbox_credentials(PROVIDER), "password": "not-the-password"}
    result = charge(payflow(sandbox, credentials=wrong))
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "1")
    assert sandbox.ledger.all() == []


def test_the_emulation_answers_like_payflow_in_text_namevalue_with_http_200(sandbox):
    response = requests.post(
        sandbox.url_for(PROVIDER) + "/",
        data=b"TRXTYPE=S&TENDER=C&PARTNER=PayPal&VENDOR=x&USER=x&PWD=x&AMT=1.00",
        headers={"Content-Type": "text/namevalue", "X-VPS-REQUEST-ID": uuid.uuid4().hex},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/namevalue"
    assert response.text == "RESULT=1&RESPMSG=User authentication failed"


def test_a_re_sent_charge_with_the_same_key_never_charges_twice(sandbox):
    gateway = payflow(sandbox)
    first = charge(gateway, key="a" * 32)
    again = charge(gateway, key="a" * 32, amount="99.00")  # new data is ignored, as at Payflow
    assert (again.status, again.reference) == (S.SUCCESS, first.reference)
    assert "DUPLICATE=1" in again.message
    (kept,) = sandbox.ledger.all()
    assert kept["amount"] == "10.00"


def test_a_re_sent_timed_out_charge_gets_the_first_answer(sandbox):
    timed_out = charge(payflow(sandbox, timeout=0.3), "tok_hang", key="b" * 32)
    assert timed_out.status is S.INDETERMINATE
    again = charge(payflow(sandbox, timeout=5), "tok_hang", key="b" * 32)
    assert (again.status, again.code) == (S.SUCCESS, "0")
    assert len(sandbox.ledger.all()) == 1


def test_no_answer_within_the_timeout_is_indeterminate_and_the_charge_is_held(sandbox):
    result = charge(payflow(sandbox, timeout=0.3), "tok_hang")
    assert result.status is S.INDETERMINATE
    assert "no answer within" in result.reason
    (held,) = sandbox.ledger.all()
    assert held["state"] == "unsettled"


def test_a_dropped_connection_is_indeterminate(sandbox):
    result = charge(payflow(sandbox), "tok_drop")
    assert result.status is S.INDETERMINATE
    assert "dropped after the request was sent" in result.reason


def test_a_garbage_answer_is_indeterminate_and_stored_as_received(sandbox):
    result = charge(payflow(sandbox), "tok_garbage")
    assert result.status is S.INDETERMINATE
    assert "not Payflow name-value pairs" in result.reason
    assert result.raw["response"]["body"].startswith("<html>")


def test_void_of_an_unsettled_charge_succeeds_and_the_ledger_shows_it_voided(sandbox):
    gateway = payflow(sandbox)
    charged = charge(gateway)
    voided = follow_up(gateway, "void", charged.reference)
    assert (voided.status, voided.code) == (S.SUCCESS, "0")
    assert voided.reference != charged.reference  # the Void is a transaction of its own
    assert sandbox.ledger.charge(PROVIDER, charged.reference)["state"] == "voided"


def test_refund_of_a_settled_charge_succeeds_and_the_ledger_shows_it_refunded(sandbox):
    gateway = payflow(sandbox)
    charged = charge(gateway)
    sandbox.ledger.settle()
    refunded = follow_up(gateway, "refund", charged.reference)
    assert (refunded.status, refunded.code) == (S.SUCCESS, "0")
    assert sandbox.ledger.charge(PROVIDER, charged.reference)["state"] == "refunded"


def test_a_sale_is_credited_in_parts_and_its_inquiry_tells_nothing_of_the_credits(sandbox):
    """Each Credit is a transaction of its own PNREF, up to the sale's amount. An Inquiry of the
    sale tells its TRANSSTATE, never its Credits: the lookup says nothing of refunds."""
    gateway = payflow(sandbox)
    charged = charge(gateway)
    sandbox.ledger.settle()
    credits = [follow_up(gateway, "refund", charged.reference, a)
               for a in ("4.00", "6.01", "6.00", "0.01")]  # fmt: skip
    assert [(c.status, c.code) for c in credits] == [
        (S.SUCCESS, "0"), (S.SYSTEM_FAIL, "105"), (S.SUCCESS, "0"), (S.SYSTEM_FAIL, "105"),
    ]  # fmt: skip
    kept = sandbox.ledger.refunds(PROVIDER, charged.reference)
    assert [(c["id"], c["amount"]) for c in kept] == [
        (credits[0].reference, "4.00"), (credits[2].reference, "6.00"),
    ]  # fmt: skip
    (finding,) = lookup(gateway, reference=charged.reference).findings
    assert (finding.state, finding.refunded) == (Settlement.SETTLED, None)
    assert not finding.partly_refunded


def test_a_settled_charge_cannot_be_voided_and_an_unsettled_one_cannot_be_refunded(sandbox):
    gateway = payflow(sandbox)
    unsettled = charge(gateway)
    refund = follow_up(gateway, "refund", unsettled.reference)
    assert (refund.status, refund.code) == (S.SYSTEM_FAIL, "105")
    sandbox.ledger.settle()
    void = follow_up(gateway, "void", unsettled.reference)
    assert (void.status, void.code) == (S.SYSTEM_FAIL, "108")
    assert sandbox.ledger.charge(PROVIDER, unsettled.reference)["state"] == "settled"


def test_a_follow_up_on_an_unknown_pnref_is_a_system_fail(sandbox):
    result = follow_up(payflow(sandbox), "void", "EXXXXXXXXXXX")
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "19")


def test_a_lookup_by_the_charge_key_finds_it_unsettled_then_settled(sandbox):
    gateway = payflow(sandbox)
    key = uuid.uuid4().hex
    charged = charge(gateway, key=key, amount="12.30")
    found = lookup(gateway, original_key=key)
    assert (found.status, found.reference) == (S.SUCCESS, charged.reference)
    (finding,) = found.findings
    assert (finding.state, finding.amount, finding.code) == (
        Settlement.UNSETTLED, Money.parse("12.30", "USD"), "0",
    )  # fmt: skip
    sandbox.ledger.settle()
    (finding,) = lookup(gateway, original_key=key).findings
    assert finding.state is Settlement.SETTLED


def test_a_lookup_by_pnref_finds_a_voided_charge(sandbox):
    gateway = payflow(sandbox)
    charged = charge(gateway)
    follow_up(gateway, "void", charged.reference)
    (finding,) = lookup(gateway, reference=charged.reference).findings
    assert (finding.state, finding.reference) == (Settlement.VOIDED, charged.reference)


def test_a_lookup_finds_a_declined_charge_with_its_result(sandbox):
    gateway = payflow(sandbox)
    key = uuid.uuid4().hex
    charge(gateway, "tok_decline", key=key)
    (finding,) = lookup(gateway, original_key=key).findings
    assert (finding.state, finding.code) == (Settlement.DECLINED, "50")


def test_a_lookup_for_a_charge_that_never_arrived_finds_nothing(sandbox):
    gateway = payflow(sandbox)
    charge(gateway)  # another attempt, with another key
    result = lookup(gateway, original_key=uuid.uuid4().hex)
    assert (result.status, result.code, result.findings) == (S.SUCCESS, "I20", ())
    result = lookup(gateway, reference="EXXXXXXXXXXX")
    assert (result.status, result.code, result.findings) == (S.SUCCESS, "I19", ())


def test_a_timed_out_charge_is_found_by_lookup_although_its_pnref_never_arrived(sandbox):
    gateway = payflow(sandbox, timeout=0.3)
    key = uuid.uuid4().hex
    assert charge(gateway, "tok_hang", key=key).reference is None
    (finding,) = lookup(payflow(sandbox), original_key=key).findings
    assert finding.state is Settlement.UNSETTLED


def test_nothing_stored_of_the_wire_holds_the_credentials_or_the_token(sandbox):
    gateway = payflow(sandbox)
    key = uuid.uuid4().hex
    results = [charge(gateway, "tok_approve", key=key)]
    results.append(lookup(gateway, original_key=key))
    results.append(follow_up(gateway, "void", results[0].reference))
    stored = " ".join(str(r.raw) for r in results)
    assert "tok_approve" not in stored
    for secret in sandbox_credentials(PROVIDER).values():
        assert secret not in stored
    assert "PWD=[FILTERED]" in stored
