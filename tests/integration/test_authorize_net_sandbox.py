"""The Authorize.Net plugin against its emulation in the running sandbox, over real HTTP."""

import json
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
PROFILE = "900100200"  # the payment profile half of every token below


def anet(sandbox, timeout=0.5, credentials=None):
    creds = sandbox_credentials("authorize_net") if credentials is None else credentials
    return plugin("authorize_net", GatewayConfig(sandbox.url_for("authorize_net"), creds, timeout))


def call(gateway, operation, *, token="tok_approve", key=None, invoice="INV-1", amount="10.00",
         reference=None):  # fmt: skip
    return getattr(gateway, operation)(
        GatewayRequest(
            operation=operation,
            idempotency_key=key or uuid.uuid4().hex,
            order_id=invoice,
            amount=Money.parse(amount, "USD") if amount else None,
            token=f"{token}/{PROFILE}" if token else None,
            reference=reference,
        )
    )


def charge(gateway, **kw):
    return call(gateway, "charge", **kw)


@pytest.mark.parametrize(
    ("token", "status", "code", "held"),
    [
        ("tok_approve", S.SUCCESS, "1", "unsettled"),
        ("tok_decline", S.DECLINE, "2", "declined"),
        ("tok_do_not_honor", S.DECLINE, "2", "declined"),
        ("tok_cvc", S.VALIDATION_ERROR, "44", "declined"),
        ("tok_address", S.VALIDATION_ERROR, "27", "declined"),
        ("tok_closed", S.PERMANENT_FAIL, "128", "declined"),
        ("tok_review", S.REQUIRES_REVIEW, "253", "unsettled"),
        ("tok_timeout", S.INDETERMINATE, "120", "unsettled"),
        ("tok_misconfigured", S.SYSTEM_FAIL, "30", None),
        ("tok_refuse", S.SYSTEM_FAIL, "E00007", None),
        ("tok_unknown", S.SYSTEM_FAIL, "E00114", None),
    ],
)
def test_each_outcome_token_charges_with_authorize_nets_own_code(
    sandbox, token, status, code, held
):
    result = charge(anet(sandbox), token=token)
    assert (result.status, result.code) == (status, code)
    assert result.unmapped is (token == "tok_unknown")
    charges = sandbox.ledger.all()
    assert [c["state"] for c in charges] == ([held] if held else [])
    if held:
        assert result.reference == charges[0]["id"] and result.reference.isdigit()


def test_rejected_credentials_are_a_system_fail_with_authorize_nets_code(sandbox):
    wrong = {"api_login_id": "SettleSandbox01", "transaction_key": "NotTheKey0000000"}
    result = charge(anet(sandbox, credentials=wrong))
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "E00007")
    assert sandbox.ledger.all() == []


def test_a_settled_charge_is_refunded(sandbox):
    gateway = anet(sandbox)
    charged = charge(gateway)
    sandbox.ledger.settle()
    refund = call(gateway, "refund", reference=charged.reference)
    assert (refund.status, refund.code) == (S.SUCCESS, "1")
    assert refund.reference != charged.reference
    assert sandbox.ledger.charge("authorize_net", charged.reference)["state"] == "refunded"


def test_a_partly_refunded_charge_is_found_refunded_x_of_y_until_all_went_back(sandbox):
    """Authorize.Net keeps a refund as a transaction of its own naming the charge (refTransId);
    the charge stays settledSuccessfully. Its lookup and the listing read its refunds."""
    from datetime import timedelta

    from portal import clock

    gateway = anet(sandbox)
    ten, four, six = (Money.parse(a, "USD") for a in ("10.00", "4.00", "6.00"))
    charged = charge(gateway, invoice="INV-P")
    sandbox.ledger.settle()

    def found():
        lookup = call(gateway, "lookup", token=None, amount=None, reference=charged.reference)
        listed = gateway.holdings(
            clock.now() - timedelta(hours=1), clock.now() + timedelta(hours=1)
        )
        assert lookup.status is S.SUCCESS and listed.problem is None
        # A refund is told as what its charge gave back, not as a charge of its own.
        assert [f.reference for f in listed.findings] == [charged.reference]
        return lookup, [*lookup.findings, *listed.findings]

    part = call(gateway, "refund", invoice="INV-P", amount="4.00", reference=charged.reference)
    assert (part.status, part.code) == (S.SUCCESS, "1")
    assert sandbox.ledger.charge("authorize_net", charged.reference)["state"] == "refunded"
    lookup, findings = found()
    assert "partly refunded, 4.00 USD of 10.00 USD" in lookup.message
    for finding in findings:
        assert (finding.state, finding.amount, finding.refunded) == (Settlement.SETTLED, ten, four)
        assert finding.partly_refunded and finding.held == six
    # The refund waiting to settle carries the charge's invoice number: it is no charge of it.
    by_invoice = call(gateway, "lookup", token=None, amount=None, invoice="INV-P")
    assert (by_invoice.status, by_invoice.findings) == (S.SUCCESS, ())
    too_much = call(gateway, "refund", invoice="INV-P", amount="6.01", reference=charged.reference)
    assert (too_much.status, too_much.code) == (S.SYSTEM_FAIL, "55")
    sandbox.ledger.settle()  # the first refund settles in a batch; the rest waits in the open one
    rest = call(gateway, "refund", invoice="INV-P", amount="6.00", reference=charged.reference)
    assert rest.status is S.SUCCESS and rest.reference not in (part.reference, charged.reference)
    _, findings = found()
    for finding in findings:
        assert (finding.state, finding.refunded, finding.held) == (Settlement.REFUNDED, ten, None)
        assert not finding.partly_refunded
    again = call(gateway, "refund", invoice="INV-P", amount="0.01", reference=charged.reference)
    assert (again.status, again.code) == (S.SYSTEM_FAIL, "55")


def test_an_unsettled_charge_is_voided(sandbox):
    gateway = anet(sandbox)
    charged = charge(gateway)
    void = call(gateway, "void", token=None, reference=charged.reference)
    assert (void.status, void.code, void.reference) == (S.SUCCESS, "1", charged.reference)
    assert sandbox.ledger.charge("authorize_net", charged.reference)["state"] == "voided"


def test_a_second_void_finds_the_charge_already_voided(sandbox):
    gateway = anet(sandbox)
    charged = charge(gateway)
    call(gateway, "void", token=None, reference=charged.reference)
    again = call(gateway, "void", token=None, reference=charged.reference)
    assert (again.status, again.code) == (S.SUCCESS, "310")


def test_an_unsettled_charge_cannot_be_refunded_and_a_settled_one_cannot_be_voided(sandbox):
    gateway = anet(sandbox)
    charged = charge(gateway)
    refund = call(gateway, "refund", reference=charged.reference)
    assert (refund.status, refund.code) == (S.SYSTEM_FAIL, "54")
    sandbox.ledger.settle()
    void = call(gateway, "void", token=None, reference=charged.reference)
    assert (void.status, void.code) == (S.SYSTEM_FAIL, "327")
    assert sandbox.ledger.charge("authorize_net", charged.reference)["state"] == "settled"


def test_a_refund_with_another_profile_is_refused(sandbox):
    gateway = anet(sandbox)
    charged = charge(gateway)
    sandbox.ledger.settle()
    refund = call(gateway, "refund", token="tok_someone_else", reference=charged.reference)
    assert (refund.status, refund.code) == (S.SYSTEM_FAIL, "E00051")
    assert sandbox.ledger.charge("authorize_net", charged.reference)["state"] == "settled"


def test_a_lookup_by_trans_id_finds_the_charge_unsettled_then_settled(sandbox):
    gateway = anet(sandbox)
    charged = charge(gateway, amount="25.50")
    unsettled = call(gateway, "lookup", token=None, amount=None, reference=charged.reference)
    assert unsettled.status is S.SUCCESS
    (finding,) = unsettled.findings
    assert (finding.state, finding.amount, finding.code) == (
        Settlement.UNSETTLED,
        Money.parse("25.50", "USD"),
        "1",
    )
    sandbox.ledger.settle()
    settled = call(gateway, "lookup", token=None, amount=None, reference=charged.reference)
    assert [f.state for f in settled.findings] == [Settlement.SETTLED]


def test_a_lookup_by_invoice_finds_the_invoices_unsettled_and_declined_charges(sandbox):
    gateway = anet(sandbox)
    declined = charge(gateway, token="tok_decline", invoice="INV-42")
    approved = charge(gateway, invoice="INV-42", amount="11.00")
    charge(gateway, invoice="INV-43")
    result = call(gateway, "lookup", token=None, amount=None, invoice="INV-42")
    assert result.status is S.SUCCESS
    assert [(f.reference, f.state) for f in result.findings] == [
        (approved.reference, Settlement.UNSETTLED),
        (declined.reference, Settlement.DECLINED),
    ]


def test_a_lookup_finds_nothing_for_an_invoice_never_charged_or_an_unknown_trans_id(sandbox):
    gateway = anet(sandbox)
    empty = call(gateway, "lookup", token=None, amount=None, invoice="INV-404")
    assert (empty.status, empty.code, empty.findings) == (S.SUCCESS, "I00004", ())
    charge(gateway, invoice="INV-1")
    other = call(gateway, "lookup", token=None, amount=None, invoice="INV-404")
    assert (other.status, other.findings) == (S.SUCCESS, ())
    unknown = call(gateway, "lookup", token=None, amount=None, reference="60000000001")
    assert (unknown.status, unknown.code) == (S.SYSTEM_FAIL, "E00040")


def test_a_re_sent_charge_with_the_same_key_never_charges_twice(sandbox):
    gateway = anet(sandbox)
    first = charge(gateway, key="a" * 32)
    again = charge(gateway, key="a" * 32)
    assert first.status is S.SUCCESS
    assert (again.status, again.code, again.reference) == (S.INDETERMINATE, "11", first.reference)
    assert len(sandbox.ledger.all()) == 1


def test_the_duplicate_check_matches_content_so_a_new_key_inside_the_window_is_refused_too(sandbox):
    gateway = anet(sandbox)
    first = charge(gateway, invoice="INV-9")
    same_content = charge(gateway, invoice="INV-9")
    other_amount = charge(gateway, invoice="INV-9", amount="10.01")
    assert (same_content.code, same_content.reference) == ("11", first.reference)
    assert other_amount.status is S.SUCCESS
    assert len(sandbox.ledger.all()) == 2


def test_a_hang_is_indeterminate_and_the_held_charge_is_found_by_its_invoice(sandbox):
    result = charge(anet(sandbox, timeout=0.3), token="tok_hang", invoice="INV-HANG")
    assert result.status is S.INDETERMINATE
    assert "no answer within" in result.reason
    (held,) = sandbox.ledger.all()
    assert held["state"] == "unsettled"
    lookup = call(anet(sandbox), "lookup", token=None, amount=None, invoice="INV-HANG")
    assert [f.reference for f in lookup.findings] == [held["id"]]


def test_a_dropped_connection_is_indeterminate(sandbox):
    result = charge(anet(sandbox), token="tok_drop")
    assert result.status is S.INDETERMINATE
    assert "dropped after the request was sent" in result.reason


def test_a_garbage_answer_is_indeterminate_and_stored_as_it_came(sandbox):
    result = charge(anet(sandbox), token="tok_garbage")
    assert result.status is S.INDETERMINATE
    assert result.reason.startswith("Unreadable answer")
    assert result.raw["response"]["body"].startswith("<html>")


def test_nothing_stored_holds_the_credentials_or_the_token(sandbox):
    gateway = anet(sandbox)
    charged = charge(gateway)
    sandbox.ledger.settle()
    results = [
        charged,
        call(gateway, "lookup", token=None, amount=None, reference=charged.reference),
        call(gateway, "lookup", token=None, amount=None, invoice="INV-1"),
        call(gateway, "refund", reference=charged.reference),
    ]
    stored = " ".join(json.dumps(r.raw) for r in results)
    secrets = [*sandbox_credentials("authorize_net").values(), "tok_approve", PROFILE]
    assert [s for s in secrets if s in stored] == []
    assert all(r.raw["response"]["body"] for r in results)


def test_the_emulation_answers_json_with_a_byte_order_mark_and_http_200_even_when_refusing(sandbox):
    url = sandbox.url_for("authorize_net") + "/xml/v1/request.api"
    body = {
        "authenticateTestRequest": {"merchantAuthentication": {"name": "x", "transactionKey": "y"}}
    }
    answer = requests.post(url, json=body, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.content.startswith(b"\xef\xbb\xbf{")
    assert (
        json.loads(answer.content.decode("utf-8-sig"))["messages"]["message"][0]["code"] == "E00007"
    )


def test_the_emulation_refuses_elements_out_of_the_schemas_order(sandbox):
    url = sandbox.url_for("authorize_net") + "/xml/v1/request.api"
    creds = sandbox_credentials("authorize_net")
    auth = {"name": creds["api_login_id"], "transactionKey": creds["transaction_key"]}
    out_of_order = {
        "createTransactionRequest": {
            "merchantAuthentication": auth,
            "transactionRequest": {"transactionType": "voidTransaction", "refTransId": "1"},
            "refId": "late",
        }
    }
    answer = json.loads(
        requests.post(url, json=out_of_order, timeout=5).content.decode("utf-8-sig")
    )
    message = answer["messages"]["message"][0]
    assert message["code"] == "E00003"
    assert "invalid child element 'refId'" in message["text"]
    assert sandbox.ledger.all() == []


def test_holdings_lists_the_settled_batches_and_the_open_batch_of_a_period(sandbox):
    from datetime import datetime, timedelta

    gateway = anet(sandbox)
    settled = charge(gateway, invoice="INV-S")
    open_one = charge(gateway, invoice="INV-O")
    declined = charge(gateway, token="tok_decline", invoice="INV-D")
    requests.post(f"{sandbox.url}/_sandbox/settle", params={"id": settled.reference},
                  timeout=5).raise_for_status()  # fmt: skip
    now = datetime.utcnow()
    held = gateway.holdings(now - timedelta(hours=1), now + timedelta(hours=1))
    assert held.problem is None
    by_ref = {f.reference: f for f in held.findings}
    assert by_ref[settled.reference].state is Settlement.SETTLED
    assert by_ref[open_one.reference].state is Settlement.UNSETTLED
    assert by_ref[declined.reference].state is Settlement.DECLINED
    assert by_ref[open_one.reference].order_id == "INV-O"
    assert by_ref[settled.reference].amount == Money.parse("10.00", "USD")
    # A period long before: no batch settled then; the open batch is listed whatever the period
    # (reconciliation keeps what was made inside it).
    old = gateway.holdings(now - timedelta(days=60), now - timedelta(days=59))
    assert {f.reference for f in old.findings} == {open_one.reference, declined.reference}


def test_holdings_with_bad_credentials_says_the_listing_failed(sandbox):
    from datetime import datetime, timedelta

    gateway = anet(sandbox, credentials={"api_login_id": "x", "transaction_key": "y"})
    now = datetime.utcnow()
    held = gateway.holdings(now - timedelta(hours=1), now)
    assert held.problem.startswith("The gateway's listing failed") and held.findings == ()
