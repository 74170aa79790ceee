"""The CyberSource plugin against its emulation in the sandbox server, over real HTTP."""

import uuid
from datetime import datetime

import pytest
import requests

from portal.gateways.base import GatewayConfig, GatewayRequest, Holdings, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.emulator import RECONCILIATION_TOKENS, TEST_TOKENS
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration
S = GatewayStatus
CREDENTIALS = sandbox_credentials("cybersource")


def cybersource(sandbox, timeout=0.5, **credentials):
    creds = {**CREDENTIALS, **credentials}
    return plugin(
        "cybersource", GatewayConfig(sandbox.url_for("cybersource"), creds, timeout=timeout)
    )


def charge(gateway, token="tok_approve", key=None, amount="10.00", invoice="INV-1"):
    request = GatewayRequest(
        "charge", key or uuid.uuid4().hex, invoice, Money.parse(amount, "USD"), token
    )
    return request, gateway.charge(request)


def follow_up(gateway, operation, charged, result):
    request = GatewayRequest(
        operation, uuid.uuid4().hex, charged.order_id, charged.amount,
        reference=result.reference, original_key=charged.idempotency_key,
    )  # fmt: skip
    return getattr(gateway, operation)(request)


def lookup(gateway, charged, reference=None):
    request = GatewayRequest(
        "lookup", uuid.uuid4().hex, charged.order_id,
        reference=reference, original_key=charged.idempotency_key,
    )  # fmt: skip
    return gateway.lookup(request)


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("tok_approve", S.SUCCESS, "100"),
        ("tok_decline", S.DECLINE, "204"),
        ("tok_do_not_honor", S.DECLINE, "203"),
        ("tok_cvc", S.VALIDATION_ERROR, "211"),
        ("tok_address", S.VALIDATION_ERROR, "200"),
        ("tok_closed", S.PERMANENT_FAIL, "231"),
        ("tok_review", S.REQUIRES_REVIEW, "480"),
        ("tok_timeout", S.INDETERMINATE, "151"),
        ("tok_misconfigured", S.SYSTEM_FAIL, "234"),
        ("tok_refuse", S.SYSTEM_FAIL, "fault:FailedCheck"),
        ("tok_unknown", S.SYSTEM_FAIL, "999"),
    ],
)
def test_each_outcome_token_gives_its_status_through_cybersources_codes(
    sandbox, token, status, code
):
    _, result = charge(cybersource(sandbox), token)
    assert (result.status, result.code) == (status, code)
    assert result.unmapped is (token == "tok_unknown")


def test_every_outcome_token_is_covered():
    covered = {"tok_approve", "tok_decline", "tok_do_not_honor", "tok_cvc", "tok_address",
               "tok_closed", "tok_review", "tok_timeout", "tok_misconfigured", "tok_refuse",
               "tok_unknown", "tok_hang", "tok_drop", "tok_garbage"}  # fmt: skip
    assert covered == set(TEST_TOKENS) - RECONCILIATION_TOKENS


def test_a_charge_is_kept_under_cybersources_request_id_with_the_invoice(sandbox):
    request, result = charge(cybersource(sandbox), invoice="INV-42")
    (held,) = sandbox.ledger.all()
    assert held["id"] == result.reference
    assert len(result.reference) == 22 and result.reference.isdigit()
    assert (held["idempotency_key"], held["order_id"], held["amount"], held["state"]) == (
        request.idempotency_key,
        "INV-42",
        "10.00",
        "unsettled",
    )


def test_bad_credentials_are_a_system_fail_with_cybersources_fault(sandbox):
    _, result = charge(cybersource(sandbox, transaction_key="not-the-key"))
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "fault:FailedCheck")
    assert result.message == "Security Data : UsernameToken authentication failed."
    assert result.raw["response"]["http_status"] == 500
    assert sandbox.ledger.all() == []


def test_a_wrong_merchant_id_is_rejected_too(sandbox):
    _, result = charge(cybersource(sandbox, merchant_id="someone_else"))
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "fault:FailedCheck")


def test_a_settled_charge_is_refunded(sandbox):
    gateway = cybersource(sandbox)
    charged, result = charge(gateway)
    sandbox.ledger.settle()
    refund = follow_up(gateway, "refund", charged, result)
    assert (refund.status, refund.code) == (S.SUCCESS, "100")
    assert sandbox.ledger.charge("cybersource", result.reference)["state"] == "refunded"


def test_an_unsettled_charge_is_voided(sandbox):
    gateway = cybersource(sandbox)
    charged, result = charge(gateway)
    void = follow_up(gateway, "void", charged, result)
    assert (void.status, void.code) == (S.SUCCESS, "100")
    assert sandbox.ledger.charge("cybersource", result.reference)["state"] == "voided"


def test_a_settled_charge_cannot_be_voided_it_must_be_refunded(sandbox):
    gateway = cybersource(sandbox)
    charged, result = charge(gateway)
    sandbox.ledger.settle()
    void = follow_up(gateway, "void", charged, result)
    assert (void.status, void.code) == (S.SYSTEM_FAIL, "246")
    assert sandbox.ledger.charge("cybersource", result.reference)["state"] == "settled"


def test_an_unsettled_charge_is_not_refunded(sandbox):
    gateway = cybersource(sandbox)
    charged, result = charge(gateway)
    refund = follow_up(gateway, "refund", charged, result)
    assert refund.status is not S.SUCCESS
    assert sandbox.ledger.charge("cybersource", result.reference)["state"] == "unsettled"


def test_a_second_void_is_refused_as_already_reversed(sandbox):
    gateway = cybersource(sandbox)
    charged, result = charge(gateway)
    follow_up(gateway, "void", charged, result)
    again = follow_up(gateway, "void", charged, result)
    assert (again.status, again.code) == (S.SYSTEM_FAIL, "243")


def test_a_void_of_an_unknown_request_id_is_refused(sandbox):
    request = GatewayRequest("void", uuid.uuid4().hex, "INV-1", reference="1" * 22)
    result = cybersource(sandbox).void(request)
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "241")


def test_a_lookup_by_reference_code_finds_an_unsettled_charge(sandbox):
    gateway = cybersource(sandbox)
    charged, result = charge(gateway)
    found = lookup(gateway, charged)
    assert (found.status, found.code) == (S.SUCCESS, "query:200")
    (finding,) = found.findings
    assert (finding.state, finding.reference, finding.amount) == (
        Settlement.UNSETTLED,
        result.reference,
        Money.parse("10.00", "USD"),
    )


def test_a_lookup_by_request_id_finds_a_settled_charge(sandbox):
    gateway = cybersource(sandbox)
    charged, result = charge(gateway)
    sandbox.ledger.settle()
    (finding,) = lookup(gateway, charged, reference=result.reference).findings
    assert (finding.state, finding.reference) == (Settlement.SETTLED, result.reference)


def test_a_lookup_shows_a_void_or_refund_with_its_charge(sandbox):
    gateway = cybersource(sandbox)
    voided, voided_result = charge(gateway)
    follow_up(gateway, "void", voided, voided_result)
    refunded, refunded_result = charge(gateway)
    sandbox.ledger.settle(refunded_result.reference)
    follow_up(gateway, "refund", refunded, refunded_result)
    assert lookup(gateway, voided).findings[0].state is Settlement.VOIDED
    by_id = lookup(gateway, refunded, reference=refunded_result.reference)
    assert by_id.findings[0].state is Settlement.REFUNDED


def test_a_partly_credited_charge_is_found_refunded_x_of_y_until_all_went_back(sandbox):
    """CyberSource credits a capture several times, each credit a request of its own naming the
    capture with its amount: the transaction query shows them with the charge."""
    gateway = cybersource(sandbox)
    ten, four, six = (Money.parse(a, "USD") for a in ("10.00", "4.00", "6.00"))
    charged, result = charge(gateway)
    sandbox.ledger.settle()

    def credit(amount):
        request = GatewayRequest("refund", uuid.uuid4().hex, charged.order_id, amount,
                                 reference=result.reference, original_key=charged.idempotency_key)  # fmt: skip
        return gateway.refund(request)

    def found():
        by_id = lookup(gateway, charged, reference=result.reference)
        by_code = lookup(gateway, charged)
        assert by_id.status is by_code.status is S.SUCCESS
        return by_id, [*by_id.findings, *by_code.findings]

    part = credit(four)
    assert (part.status, part.code) == (S.SUCCESS, "100")
    by_id, findings = found()
    assert "partly refunded, 4.00 USD of 10.00 USD" in by_id.message
    for finding in findings:
        assert (finding.state, finding.amount, finding.refunded) == (Settlement.SETTLED, ten, four)
        assert finding.partly_refunded and finding.held == six
    too_much = credit(Money.parse("6.01", "USD"))
    assert (too_much.status, too_much.code) == (S.SYSTEM_FAIL, "235")
    rest = credit(six)
    assert rest.status is S.SUCCESS and rest.reference != part.reference
    _, findings = found()
    for finding in findings:
        assert (finding.state, finding.refunded, finding.held) == (Settlement.REFUNDED, ten, None)
        assert not finding.partly_refunded
    # There is no listing to read refunds from: Settle does not read CyberSource's batch report.
    now = datetime.now()
    assert gateway.holdings(now, now) == Holdings((), gateway.not_reconcilable)


def test_a_lookup_finds_nothing_for_a_charge_that_never_arrived(sandbox):
    never_sent = GatewayRequest("charge", uuid.uuid4().hex, "INV-9", Money.parse("1.00", "USD"))
    found = lookup(cybersource(sandbox), never_sent)
    assert (found.status, found.findings) == (S.SUCCESS, ())


def test_a_lookup_finds_a_declined_charge_and_a_review(sandbox):
    gateway = cybersource(sandbox)
    declined, _ = charge(gateway, "tok_decline")
    reviewed, _ = charge(gateway, "tok_review")
    assert lookup(gateway, declined).findings[0].state is Settlement.DECLINED
    review = lookup(gateway, reviewed).findings[0]
    assert (review.state, review.code) == (Settlement.UNSETTLED, "480")


def test_a_lookup_with_a_wrong_report_password_is_a_system_fail(sandbox):
    gateway = cybersource(sandbox, report_password="wrong")
    charged, _ = charge(gateway)
    found = lookup(gateway, charged)
    assert (found.status, found.code, found.findings) == (S.SYSTEM_FAIL, "query:401", ())


def test_a_re_sent_charge_is_refused_as_a_duplicate_and_never_charges_twice(sandbox):
    gateway = cybersource(sandbox)
    _, first = charge(gateway, key="a" * 32)
    _, second = charge(gateway, key="a" * 32)
    assert (first.status, second.status, second.code) == (S.SUCCESS, S.INDETERMINATE, "104")
    assert len(sandbox.ledger.all()) == 1


def test_a_re_sent_timed_out_charge_never_charges_twice(sandbox):
    _, timed_out = charge(cybersource(sandbox, timeout=0.3), "tok_hang", key="b" * 32)
    assert timed_out.status is S.INDETERMINATE
    _, again = charge(cybersource(sandbox, timeout=5), "tok_hang", key="b" * 32)
    assert (again.status, again.code) == (S.INDETERMINATE, "104")
    assert len(sandbox.ledger.all()) == 1


def test_no_answer_within_the_timeout_is_indeterminate_and_the_charge_is_held(sandbox):
    gateway = cybersource(sandbox, timeout=0.3)
    charged, result = charge(gateway, "tok_hang")
    assert result.status is S.INDETERMINATE
    assert "no answer within" in result.reason
    (held,) = sandbox.ledger.all()
    assert held["state"] == "unsettled"
    found = lookup(cybersource(sandbox), charged)
    assert found.findings[0].state is Settlement.UNSETTLED


def test_a_dropped_connection_is_indeterminate(sandbox):
    _, result = charge(cybersource(sandbox), "tok_drop")
    assert result.status is S.INDETERMINATE
    assert "dropped after the request was sent" in result.reason


def test_a_garbage_answer_is_indeterminate_with_the_reason(sandbox):
    _, result = charge(cybersource(sandbox), "tok_garbage")
    assert result.status is S.INDETERMINATE
    assert "not a SOAP envelope" in result.reason
    assert result.raw["response"]["body"].startswith("<html>")


def test_nothing_stored_holds_credentials_or_the_token(sandbox):
    gateway = cybersource(sandbox)
    charged, result = charge(gateway, token="tok_approve")
    sandbox.ledger.settle()
    results = [
        result,
        lookup(gateway, charged),
        lookup(gateway, charged, reference=result.reference),
        follow_up(gateway, "refund", charged, result),
        charge(cybersource(sandbox, transaction_key="wrong-key"))[1],
    ]
    stored = str([r.raw for r in results])
    assert "[FILTERED]" in stored
    for secret in [*CREDENTIALS.values(), "wrong-key", "tok_approve"]:
        assert secret not in stored


def test_the_sandbox_takes_the_plugin_with_working_test_credentials(plugin_at_sandbox):
    ready = plugin_at_sandbox("cybersource")
    assert ready.config.base_url.endswith("/cybersource")
    assert set(ready.config.credentials) == set(CREDENTIALS)


# A sale with the right credentials whose XML declares entities. "A few laughs" expands to 3000
# characters, which the standard library's parser expands without complaint (its amplification
# limit only stops the full billion laughs); an external entity asks the server to read a file.
LAUGHS = "".join(
    f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
).replace("&lol0;", "lol")  # fmt: skip
DOCTYPES = {
    "a few laughs": ('<!DOCTYPE laughs [<!ENTITY lol1 "lollollollollollollollollollol">'
                     '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
                     '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
                     "]>", "&lol3;"),
    "a billion laughs": (f"<!DOCTYPE laughs [{LAUGHS}]>", "&lol9;"),
    "an external entity": ('<!DOCTYPE xxe [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>', "&xxe;"),
}  # fmt: skip


@pytest.mark.parametrize("attack", list(DOCTYPES))
def test_a_request_declaring_entities_is_refused_and_charges_nothing(sandbox, attack):
    doctype, invoice = DOCTYPES[attack]
    sale = GatewayRequest(
        "charge", uuid.uuid4().hex, "INV-1", Money.parse("10.00", "USD"), "tok_approve"
    )
    call = cybersource(sandbox).build("charge", sale)
    declaration, envelope = call.body.decode().split("?>", 1)
    invoice_field = '<mddField id="1">{}</mddField>'
    attacked = envelope.replace(invoice_field.format("INV-1"), invoice_field.format(invoice))
    body = f"{declaration}?>{doctype}{attacked}"
    assert invoice_field.format(invoice) in body
    answer = requests.post(call.url, data=body.encode(), headers=call.headers, timeout=5)
    assert answer.status_code == 500
    assert "<faultcode>soap:Client</faultcode>" in answer.text
    assert sandbox.ledger.all() == []
