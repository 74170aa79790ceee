"""The Braintree plugin reads Braintree's answers: XML bodies shaped as braintree_python@80b03f4
reads them (transaction_gateway.py: a <transaction>, or an <api-error-response> with <errors> or
the declined <transaction>; transaction.py attribute names), and webhooks signed as its
webhook_notification_gateway.py checks them, with the sample notification of its
webhook_testing_gateway.py."""

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.statuses import GatewayStatus, MethodState, policy_for

S = GatewayStatus
CREDS = {"merchant_id": "m_1", "public_key": "pub_1", "private_key": "priv_1"}


@pytest.fixture
def braintree():
    return plugin("braintree", GatewayConfig("https://api.braintreegateway.com:443", CREDS))


def txn(status="submitted_for_settlement", code="1000", text="Approved", reason=None, **extra):
    fields = {"id": "fc8c7w6n", "status": status, "type": "sale", "currency-iso-code": "USD",
              "amount": "10.00", "order-id": "k1", "created-at": "2026-12-03T10:00:00Z",
              "processor-response-code": code, "processor-response-text": text, **extra}  # fmt: skip
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    rejection = (
        f"<gateway-rejection-reason>{reason}</gateway-rejection-reason>"
        if reason
        else '<gateway-rejection-reason nil="true"/>'
    )
    return f"<transaction>{inner}{rejection}</transaction>"


def declined(body: str, message: str = "Do Not Honor") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><api-error-response><errors>'
        f'<errors type="array"/></errors><message>{message}</message>{body}</api-error-response>'
    )


def invalid(code: str, message: str) -> str:
    return (
        '<api-error-response><errors><transaction><errors type="array"><error>'
        f"<code>{code}</code><attribute>amount</attribute><message>{message}</message></error>"
        f"</errors></transaction></errors><message>{message}</message></api-error-response>"
    )


@pytest.mark.parametrize(
    ("http", "body", "status", "code"),
    [
        (201, txn(), S.SUCCESS, "charge.submitted_for_settlement"),
        (201, txn("authorized"), S.REQUIRES_REVIEW, "charge.authorized"),
        (201, txn(code="1004", text="Approved for Partial Amount"), S.REQUIRES_REVIEW, "1004"),
        (422, declined(txn("processor_declined", "2000", "Do Not Honor")), S.DECLINE, "2000"),
        (422, declined(txn("processor_declined", "2001", "Insufficient Funds")), S.DECLINE, "2001"),
        (422, declined(txn("processor_declined", "2004", "Expired Card")), S.VALIDATION_ERROR, "2004"),
        (422, declined(txn("processor_declined", "2047", "Call Issuer. Pick Up Card")),
         S.PERMANENT_FAIL, "2047"),
        (422, declined(txn("processor_declined", "2044", "Declined - Call Issuer")),
         S.REQUIRES_REVIEW, "2044"),
        (422, declined(txn("processor_declined", "2016", "Duplicate Transaction")),
         S.INDETERMINATE, "2016"),
        (422, declined(txn("processor_declined", "2500", "Processor Declined")),
         S.DECLINE, "2109-2999"),
        (422, declined(txn("processor_declined", "3000", "Processor Network Unavailable")),
         S.DECLINE, "3000"),
        (422, declined(txn("gateway_rejected", "", "", reason="cvv")), S.VALIDATION_ERROR,
         "gateway_rejected.cvv"),
        (422, declined(txn("gateway_rejected", "", "", reason="duplicate")), S.INDETERMINATE,
         "gateway_rejected.duplicate"),
        (422, declined(txn("gateway_rejected", "", "", reason="risk_threshold")),
         S.PERMANENT_FAIL, "gateway_rejected.risk_threshold"),
        (422, invalid("91518", "Payment method token is invalid."), S.PERMANENT_FAIL, "91518"),
        (422, invalid("81503", "Amount is an invalid format."), S.SYSTEM_FAIL, "81503"),
        (422, invalid("915233", "API request key is in flight."), S.INDETERMINATE, "915233"),
        (401, "", S.SYSTEM_FAIL, "http_401"),
        (426, "", S.SYSTEM_FAIL, "http_426"),
        (503, "", S.INDETERMINATE, "http_503"),
    ],
)  # fmt: skip
def test_a_sale_answer_takes_its_status_from_the_mapping(braintree, http, body, status, code):
    result = braintree.interpret(http, {}, body, "charge")
    assert (result.status, result.code) == (status, code)
    assert not result.unmapped


@pytest.mark.parametrize("reason", ["fraud", "risk_threshold"])
def test_a_fraud_tools_rejection_is_never_retried_and_a_person_reviews_it(braintree, reason):
    """Braintree's fraud tools (Fraud Protection: "fraud"; Basic Fraud Tools' risk threshold
    rules: "risk_threshold") refused the sale: never retried on the schedule, as Stripe's
    "fraudulent" is not; a person reviews it in the fraud tools before the customer is charged."""
    body = declined(txn("gateway_rejected", "", "", reason=reason), f"Gateway Rejected: {reason}")
    result = braintree.interpret(422, {}, body, "charge")
    assert (result.status, result.code) == (S.PERMANENT_FAIL, f"gateway_rejected.{reason}")
    assert policy_for(result.status).method_state is MethodState.INACTIVE
    assert "fraud tools" in result.guidance and "before the customer is charged" in result.guidance
    # An incomplete merchant application is Braintree's limit on the merchant, not fraud.
    incomplete = declined(txn("gateway_rejected", "", "", reason="application_incomplete"))
    assert braintree.interpret(422, {}, incomplete, "charge").status is S.SYSTEM_FAIL


def test_a_decline_names_the_transaction_it_left(braintree):
    body = declined(txn("processor_declined", "2000", "Do Not Honor"))
    result = braintree.interpret(422, {}, body, "charge")
    assert (result.reference, result.message) == ("fc8c7w6n", "Do Not Honor")


def test_an_unknown_rejection_reason_falls_back_to_the_default_and_is_marked(braintree):
    body = declined(txn("gateway_rejected", "", "", reason="new_reason_2027"))
    result = braintree.interpret(422, {}, body, "charge")
    assert (result.status, result.unmapped) == (S.SYSTEM_FAIL, True)
    assert result.rule == "braintree/codes.yaml: unmapped, default System Fail"


def test_an_answer_that_is_not_braintrees_xml_is_indeterminate(braintree):
    assert braintree.interpret(201, {}, "<html>502</html>", "charge").status is S.INDETERMINATE
    assert braintree.interpret(201, {}, "not xml", "charge").status is S.INDETERMINATE
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><transaction>&a;</transaction>'
    assert braintree.interpret(201, {}, bomb, "charge").status is S.INDETERMINATE


def test_follow_ups_read_their_own_statuses(braintree):
    assert braintree.interpret(200, {}, txn("voided"), "void").code == "void.voided"
    assert braintree.interpret(200, {}, txn("voided"), "void").status is S.SUCCESS
    refund = txn(type="credit", **{"refunded-transaction-id": "s1"})  # the sale it refunds
    assert braintree.interpret(201, {}, refund, "refund").status is S.SUCCESS
    settled = invalid("91504", "Transaction can only be voided if status is authorized")
    assert braintree.interpret(422, {}, settled, "void").status is S.SYSTEM_FAIL
    already = invalid("91512", "Transaction has already been completely refunded.")
    assert braintree.interpret(422, {}, already, "refund").status is S.SUCCESS


def test_a_sale_is_xml_with_settles_key_as_order_id_and_api_request_key(braintree):
    amount = Money.parse("1234.50", "USD")
    call = braintree.build("charge", GatewayRequest("charge", "key-1", "INV-9", amount, "tok_x"))
    assert call.url == "https://api.braintreegateway.com:443/merchants/m_1/transactions"
    assert call.headers["X-ApiVersion"] == "6"
    basic = base64.b64encode(b"pub_1:priv_1").decode()
    assert call.headers["Authorization"] == f"Basic {basic}"
    for part in ("<type>sale</type>", "<amount>1234.50</amount>", "<order-id>key-1</order-id>",
                 "<api-request-key>key-1</api-request-key>",
                 '<submit-for-settlement type="boolean">true</submit-for-settlement>'):  # fmt: skip
        assert part in call.body
    assert "tok_x" not in braintree.scrub(call.body)
    void = braintree.build("void", GatewayRequest("void", "k2", "INV-9", reference="a/b"))
    assert (void.method, void.url.rsplit("/merchants/m_1", 1)[1]) == (
        "PUT", "/transactions/a%2Fb/void",
    )  # fmt: skip


def test_a_lookup_reads_what_braintree_holds_of_each_sale(braintree):
    body = ('<credit-card-transactions type="collection">'
            + txn() + txn("settled") + txn("settled", **{"refund-ids": "<item>r1</item>"})
            + txn("voided") + txn("processor_declined", "2001", "Insufficient Funds")
            + txn(type="credit") + "</credit-card-transactions>")  # fmt: skip
    result = braintree.interpret(200, {}, body, "lookup")
    assert result.status is S.SUCCESS
    assert [f.state for f in result.findings] == [
        Settlement.UNSETTLED, Settlement.SETTLED, Settlement.SETTLED, Settlement.VOIDED,
        Settlement.DECLINED,
    ]  # fmt: skip
    # A sale with refunds may be refunded in part: it still holds money, and a clerk looks.
    with_refunds = result.findings[2]
    assert with_refunds.code == "charge.settled_with_refunds"
    assert braintree.interpret_finding(with_refunds).status is S.REQUIRES_REVIEW
    first = result.findings[0]
    assert (first.amount, first.key, first.reference) == (
        Money.parse("10", "USD"),
        "k1",
        "fc8c7w6n",
    )
    assert braintree.interpret_finding(result.findings[4]).status is S.DECLINE
    ids = braintree.interpret(200, {}, '<search-results><ids type="array"><item>a</item>'
                              "<item>b</item></ids></search-results>", "search_ids")  # fmt: skip
    assert ids.cursor == "a,b"
    none = braintree.interpret(200, {}, '<search-results><ids type="array"/></search-results>',
                               "search_ids")  # fmt: skip
    assert (none.status, none.findings, none.cursor) == (S.SUCCESS, (), None)
    broken = braintree.interpret(
        200, {}, "<transaction><status>odd</status></transaction>", "lookup"
    )
    assert broken.status is S.INDETERMINATE


def test_a_sale_that_holds_money_comes_first_and_a_short_search_answer_is_not_believed(braintree):
    body = ('<credit-card-transactions type="collection">'
            + txn("processor_declined", "2001", "Insufficient Funds") + txn()
            + "</credit-card-transactions>")  # fmt: skip
    result = braintree.interpret(200, {}, body, "lookup")
    assert [f.state for f in result.findings] == [Settlement.UNSETTLED, Settlement.DECLINED]
    assert result.reference == "fc8c7w6n"
    # Any other server error is Indeterminate: the request was sent.
    assert braintree.interpret(502, {}, "", "charge").code == "http_5xx"
    assert braintree.interpret(502, {}, "", "charge").status is S.INDETERMINATE


def test_each_currency_is_charged_in_its_merchant_account_or_not_sent():
    creds = CREDS | {"merchant_accounts": "USD:acct_usd, eur:acct_eur"}
    gateway = plugin("braintree", GatewayConfig("https://api.braintreegateway.com", creds))
    eur = Money.parse("5.00", "EUR")
    call = gateway.build("charge", GatewayRequest("charge", "k", "INV-1", eur, "tok"))
    assert "<merchant-account-id>acct_eur</merchant-account-id>" in call.body
    jpy = GatewayRequest("charge", "k2", "INV-1", Money.parse("500", "JPY"), "tok")
    result = gateway.charge(jpy)
    assert (result.status, result.sent) == (S.SYSTEM_FAIL, False)
    assert "no merchant account for JPY" in result.message


def test_a_stored_webhook_keeps_the_notification_without_card_data_or_signature(braintree):
    sample = (b"<notification><kind>refund_failed</kind><subject><transaction><id>r1</id>"
              b"<amount>100</amount><credit-card><number>1234560000001234</number><cvv>123</cvv>"
              b"<token>vault_tok</token></credit-card><status>processor_declined</status>"
              b"</transaction></subject></notification>")  # fmt: skip
    stored = braintree.scrub(signed(sample).decode())
    assert "<id>r1</id>" in stored
    for secret in ("1234560000001234", "<cvv>123", "vault_tok", "pub_1|"):
        assert secret not in stored


def test_a_lookup_without_id_or_key_is_not_sent(braintree):
    result = braintree.lookup(GatewayRequest("lookup", "k", "INV-1"))
    assert (result.status, result.sent) == (S.SYSTEM_FAIL, False)


# --- Webhooks --------------------------------------------------------------------------------

# webhook_testing_gateway.py's transaction_settled sample, with Settle's order id.
SETTLED = (b'<notification><timestamp type="datetime">2026-12-03T10:05:00Z</timestamp>'
           b"<kind>transaction_settled</kind><subject><transaction><id>fc8c7w6n</id>"
           b"<status>settled</status><type>sale</type><currency-iso-code>USD</currency-iso-code>"
           b"<amount>100.00</amount><order-id>k1</order-id>"
           b"<merchant-account-id>ogaotkivejpfayqfeaimuktty</merchant-account-id>"
           b"</transaction></subject></notification>")  # fmt: skip


def signed(xml: bytes, public="pub_1", private="priv_1", extra="") -> bytes:
    """As WebhookTestingGateway.sample_notification signs: base64 of the XML (with newlines),
    HMAC-SHA1 keyed with SHA1 of the private key, "public|hex"."""
    payload = base64.encodebytes(xml)
    digest = hmac.new(hashlib.sha1(private.encode()).digest(), payload, hashlib.sha1).hexdigest()
    return urlencode({"bt_signature": f"{extra}{public}|{digest}", "bt_payload": payload}).encode()


def test_a_webhook_is_verified_by_the_pair_of_its_public_key(braintree):
    body = signed(SETTLED)
    assert braintree.verify_webhook({}, body, CREDS)
    # Braintree may send several pairs, joined by "&": the one of this public key counts.
    assert braintree.verify_webhook({}, signed(SETTLED, extra="other|00&"), CREDS)
    # Tampered copies: another payload, another private key, another public key, no signature.
    other = signed(SETTLED.replace(b"100.00", b"900.00"))
    forged = other.split(b"&bt_payload=")[1]
    assert not braintree.verify_webhook({}, body.split(b"&bt_payload=")[0] + b"&bt_payload="
                                        + forged, CREDS)  # fmt: skip
    assert not braintree.verify_webhook({}, signed(SETTLED, private="priv_2"), CREDS)
    assert not braintree.verify_webhook({}, signed(SETTLED, public="pub_2"), CREDS)
    assert not braintree.verify_webhook({}, b"bt_payload=" + body.split(b"bt_payload=")[1], CREDS)
    assert not braintree.verify_webhook({}, body, {"public_key": "pub_1"})
    assert not braintree.verify_webhook({}, "bt_signature=é&bt_payload=x".encode(), CREDS)
    assert not braintree.verify_webhook({}, b"bt_signature=pub_1|00&bt_payload=<xml>", CREDS)


def test_a_settled_notification_is_final_and_names_the_sale_by_id_and_key(braintree):
    (notice,) = braintree.read_webhook(signed(SETTLED))
    assert (notice.event_id, notice.operation, notice.final) == (
        "transaction_settled/fc8c7w6n", "charge", True,
    )  # fmt: skip
    assert (notice.reference, notice.key, notice.amount) == (
        "fc8c7w6n", "k1", Money.parse("100.00", "USD"),
    )  # fmt: skip
    assert (notice.result.status, notice.result.code) == (S.SUCCESS, "charge.settled")
    declined_xml = SETTLED.replace(b"transaction_settled", b"transaction_settlement_declined")
    (notice,) = braintree.read_webhook(signed(declined_xml.replace(b">settled<", b">x<")))
    assert (notice.result.status, notice.result.code) == (S.DECLINE, "charge.settlement_declined")
    refund = SETTLED.replace(b"<type>sale</type>", b"<type>credit</type>")
    (notice,) = braintree.read_webhook(signed(refund))
    assert (notice.operation, notice.result.code) == ("refund", "refund.settled")
    failed = SETTLED.replace(b"transaction_settled", b"refund_failed")
    (notice,) = braintree.read_webhook(signed(failed))
    assert (notice.operation, notice.result.status) == ("refund", S.DECLINE)


def test_other_notifications_are_kept_not_acted_on_and_garbage_is_refused(braintree):
    disbursed = SETTLED.replace(b"transaction_settled", b"transaction_disbursed")
    (notice,) = braintree.read_webhook(signed(disbursed))
    assert (notice.operation, notice.final, notice.result) == (None, False, None)
    check = (b'<notification><timestamp type="datetime">2026-12-03T10:05:00Z</timestamp>'
             b"<kind>check</kind><subject><check type=\"boolean\">true</check></subject>"
             b"</notification>")  # fmt: skip
    (notice,) = braintree.read_webhook(signed(check))
    assert notice.operation is None and notice.event_type == "check"
    from portal.gateways.webhooks import UnreadableWebhook

    for body in (b"", b"bt_payload=bm90IHhtbA==&bt_signature=x", signed(b"<other/>"), b"\xff"):
        with pytest.raises(UnreadableWebhook):
            braintree.read_webhook(body)
