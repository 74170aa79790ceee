"""The Braintree plugin against the sandbox's Braintree emulation, over real HTTP on loopback."""

import uuid
from datetime import timedelta

import pytest

from portal import clock
from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration
S = GatewayStatus
TEN = Money.parse("10.00", "USD")


def braintree(sandbox, timeout=0.5, **credentials):
    creds = sandbox_credentials("braintree") | credentials
    return plugin("braintree", GatewayConfig(sandbox.url_for("braintree"), creds, timeout=timeout))


def charge(gateway, token="tok_approve", key=None, amount=TEN):
    key = key or uuid.uuid4().hex
    return gateway.charge(GatewayRequest("charge", key, "INV-1", amount, token))


def follow_up(gateway, operation, reference, amount=TEN):
    request = GatewayRequest(operation, uuid.uuid4().hex, "INV-1", amount, reference=reference)
    return getattr(gateway, operation)(request)


def lookup(gateway, *, reference=None, key=None, sent_at=None):
    request = GatewayRequest("lookup", uuid.uuid4().hex, "INV-1", reference=reference,
                             original_key=key, original_at=sent_at)  # fmt: skip
    return gateway.lookup(request)


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("tok_approve", S.SUCCESS, "charge.submitted_for_settlement"),
        ("tok_decline", S.DECLINE, "2001"),
        ("tok_do_not_honor", S.DECLINE, "2000"),
        ("tok_cvc", S.VALIDATION_ERROR, "gateway_rejected.cvv"),
        ("tok_address", S.VALIDATION_ERROR, "gateway_rejected.avs"),
        ("tok_closed", S.PERMANENT_FAIL, "2108"),
        ("tok_review", S.REQUIRES_REVIEW, "charge.authorized"),
        ("tok_timeout", S.INDETERMINATE, "http_500"),
        ("tok_misconfigured", S.SYSTEM_FAIL, "http_403"),
        ("tok_refuse", S.SYSTEM_FAIL, "http_401"),
        ("tok_unknown", S.SYSTEM_FAIL, "gateway_rejected.sandbox_unlisted"),
    ],
)
def test_each_outcome_takes_its_status_from_braintrees_code(sandbox, token, status, code):
    result = charge(braintree(sandbox), token)
    assert (result.status, result.code) == (status, code)
    assert result.unmapped is (token == "tok_unknown")
    assert result.rule.startswith("braintree/codes.yaml")


def test_a_repeated_api_request_key_answers_the_first_sale_and_charges_once(sandbox):
    gateway, key = braintree(sandbox), uuid.uuid4().hex
    first = charge(gateway, key=key)
    again = charge(gateway, key=key)
    assert first.reference == again.reference and again.status is S.SUCCESS
    assert len(sandbox.ledger.all()) == 1
    other = charge(gateway, key=key, amount=Money.parse("11.00", "USD"))
    assert (other.status, other.code) == (S.SYSTEM_FAIL, "915232")
    assert len(sandbox.ledger.all()) == 1


def test_a_timed_out_sale_resent_with_its_key_learns_the_sale(sandbox):
    key = uuid.uuid4().hex
    assert charge(braintree(sandbox, timeout=0.3), "tok_hang", key=key).status is S.INDETERMINATE
    again = charge(braintree(sandbox, timeout=5), "tok_hang", key=key)
    assert (again.status, again.code) == (S.SUCCESS, "charge.submitted_for_settlement")
    late = charge(braintree(sandbox), "tok_timeout", key=(key2 := uuid.uuid4().hex))
    assert late.status is S.INDETERMINATE
    assert charge(braintree(sandbox), "tok_timeout", key=key2).status is S.SUCCESS
    assert len(sandbox.ledger.all()) == 2


def test_a_sale_is_voided_before_it_settles_and_refunded_after(sandbox):
    gateway = braintree(sandbox)
    held = charge(gateway)
    assert lookup(gateway, reference=held.reference).findings[0].state is Settlement.UNSETTLED
    early = follow_up(gateway, "refund", held.reference)
    assert (early.status, early.code) == (S.SYSTEM_FAIL, "91506")
    voided = follow_up(gateway, "void", held.reference)
    assert (voided.status, voided.code) == (S.SUCCESS, "void.voided")
    assert lookup(gateway, reference=held.reference).findings[0].state is Settlement.VOIDED
    paid = charge(gateway)
    sandbox.ledger.settle(paid.reference)
    late = follow_up(gateway, "void", paid.reference)
    assert (late.status, late.code) == (S.SYSTEM_FAIL, "91504")
    too_much = follow_up(gateway, "refund", paid.reference, Money.parse("10.01", "USD"))
    assert (too_much.status, too_much.code) == (S.SYSTEM_FAIL, "91521")
    part = follow_up(gateway, "refund", paid.reference, Money.parse("4.00", "USD"))
    assert (part.status, part.code) == (S.SUCCESS, "refund.submitted_for_settlement")
    assert part.reference != paid.reference  # a refund is a transaction of its own
    (found,) = lookup(gateway, reference=paid.reference).findings
    # Refunded in part: it still holds money, and a clerk looks.
    assert (found.state, found.code) == (Settlement.SETTLED, "charge.settled_with_refunds")
    whole = follow_up(gateway, "refund", paid.reference)
    assert (whole.status, whole.code) == (S.SYSTEM_FAIL, "91521")  # only 6.00 is left
    rest = follow_up(gateway, "refund", paid.reference, Money.parse("6.00", "USD"))
    assert rest.status is S.SUCCESS
    twice = follow_up(gateway, "refund", paid.reference)
    assert (twice.status, twice.code) == (S.SUCCESS, "91512")


def test_a_partly_refunded_sale_is_found_refunded_x_of_y_until_all_went_back(sandbox):
    """A sale names its refunds (refund-ids), not their amounts: its lookup, by id or by key,
    and the listing read the refunds themselves."""
    gateway, key = braintree(sandbox), uuid.uuid4().hex
    four, six = Money.parse("4.00", "USD"), Money.parse("6.00", "USD")
    paid = charge(gateway, key=key)
    sandbox.ledger.settle(paid.reference)
    since = clock.now() - timedelta(minutes=1)

    def found():
        by_id, by_key = lookup(gateway, reference=paid.reference), lookup(gateway, key=key)
        listed = gateway.holdings(since, clock.now() + timedelta(minutes=1))
        assert by_id.status is by_key.status is S.SUCCESS and listed.problem is None
        assert [f.reference for f in listed.findings] == [paid.reference]  # a refund is no sale
        return by_id, [*by_id.findings, *by_key.findings, *listed.findings]

    part = follow_up(gateway, "refund", paid.reference, four)
    assert (part.status, part.code) == (S.SUCCESS, "refund.submitted_for_settlement")
    by_id, findings = found()
    assert "partly refunded, 4.00 USD of 10.00 USD" in by_id.message
    for finding in findings:
        assert (finding.state, finding.amount, finding.refunded) == (Settlement.SETTLED, TEN, four)
        assert finding.partly_refunded and finding.held == six
        assert gateway.interpret_finding(finding).status is S.REQUIRES_REVIEW
    rest = follow_up(gateway, "refund", paid.reference, six)
    assert rest.status is S.SUCCESS and rest.reference != part.reference
    _, findings = found()
    for finding in findings:
        assert (finding.state, finding.refunded, finding.held) == (Settlement.REFUNDED, TEN, None)
        assert not finding.partly_refunded


def test_a_lookup_searches_by_settles_key_in_the_order_id(sandbox):
    gateway, key = braintree(sandbox), uuid.uuid4().hex
    charge(gateway, "tok_timeout", key=key)  # answered 500, but the sale was made
    found = lookup(gateway, key=key)
    assert (found.status, found.code) == (S.SUCCESS, "lookup.found")
    (sale,) = found.findings
    assert (sale.state, sale.amount, sale.key) == (Settlement.UNSETTLED, TEN, key)
    assert gateway.interpret_finding(sale).status is S.SUCCESS
    # Nothing found minutes after the charge is no proof it never reached Braintree; later it is.
    soon = lookup(gateway, key=uuid.uuid4().hex, sent_at=clock.now() - timedelta(minutes=2))
    assert soon.status is S.INDETERMINATE and "cannot yet tell" in soon.reason
    nothing = lookup(gateway, key=uuid.uuid4().hex, sent_at=clock.now() - timedelta(minutes=11))
    assert (nothing.status, nothing.findings) == (S.SUCCESS, ())
    declined = charge(gateway, "tok_decline", key=(key2 := uuid.uuid4().hex))
    (found,) = lookup(gateway, key=key2).findings
    assert (found.state, found.reference) == (Settlement.DECLINED, declined.reference)
    assert gateway.interpret_finding(found).code == "2001"


def test_a_sale_in_another_currency_than_asked_is_held_for_review(sandbox):
    """Braintree charges in the merchant account's currency: a EUR account charging a USD
    invoice took money Settle did not ask for, and a clerk must look."""
    gateway = braintree(sandbox, merchant_accounts="USD:settle_sandbox_eur")  # a wrong setting
    result = charge(gateway)
    assert result.status is S.REQUIRES_REVIEW
    assert "EUR" in result.reason and "USD" in result.reason and result.reference


def test_wrong_keys_or_merchant_are_system_fails_and_no_secret_is_stored(sandbox):
    result = charge(braintree(sandbox, private_key="wrong_private"))
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "http_401")
    stored = str(result.raw)
    assert "wrong_private" not in stored and "tok_approve" not in stored
    assert charge(braintree(sandbox, merchant_id="other")).code == "http_404"


def test_the_sandbox_settles_a_bank_sale_and_tells_it_signed_as_braintree_does(sandbox):
    """Braintree sends transaction_settled for bank-account (ACH) transactions, whose
    settlement takes days: their answer is settlement_pending, and the notification decides."""
    import threading

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    received = []

    def app(environ, start_response):
        received.append(Request(environ).get_data())
        return Response("ok")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sandbox.webhooks.delay = 0.1
        sandbox.webhooks.register("braintree", f"http://127.0.0.1:{server.server_port}/")
        gateway = braintree(sandbox)
        paid = charge(gateway, "bank_tok_approve")
        assert (paid.status, paid.code) == (S.REQUIRES_REVIEW, "charge.settlement_pending")
        card = charge(gateway)  # a card sale's answer is its outcome: nothing is told of it
        assert card.status is S.SUCCESS
        import time

        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        server.shutdown()
    (body,) = received
    assert gateway.verify_webhook({}, body, sandbox_credentials("braintree"))
    (notice,) = gateway.read_webhook(body)
    assert (notice.reference, notice.result.status) == (paid.reference, S.SUCCESS)
    (found,) = lookup(gateway, reference=paid.reference).findings
    assert (found.state, found.code) == (Settlement.SETTLED, "charge.settled")


def test_holdings_lists_the_sales_of_a_period_fifty_ids_a_page(sandbox, monkeypatch):
    from datetime import timedelta

    from portal import clock

    gateway = braintree(sandbox)
    monkeypatch.setattr(gateway, "page_size", 2)  # three sales: two pages
    keys = [uuid.uuid4().hex for _ in range(3)]
    paid = [charge(gateway, key=key) for key in keys]
    sandbox.ledger.settle(paid[0].reference)
    follow_up(gateway, "refund", paid[0].reference)  # a refund is not a sale held
    since = clock.now() - timedelta(minutes=1)
    held = gateway.holdings(since, clock.now() + timedelta(minutes=1))
    assert held.problem is None
    assert sorted(f.key for f in held.findings) == sorted(keys)
    # The refund (a credit the created-at search finds too) is told on its sale: all went back.
    assert {(f.state, f.code, f.refunded) for f in held.findings} == {
        (Settlement.UNSETTLED, "charge.submitted_for_settlement", Money.zero("USD")),
        (Settlement.REFUNDED, "charge.settled_with_refunds", TEN),
    }
    assert gateway.holdings(since - timedelta(days=1), since).findings == ()
    offline = plugin(
        "braintree", GatewayConfig("http://127.0.0.1:9", sandbox_credentials("braintree"))
    )
    assert "listing failed" in offline.holdings(since, clock.now()).problem
