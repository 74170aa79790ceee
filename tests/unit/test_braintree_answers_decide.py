"""A Braintree answer decides only for the request it answers: an error answer by its own errors,
never by a transaction it carries that this request did not make (the sale a refund was asked
of, an earlier sale), and a transaction answer only when it is this request's own: a charge's
sale with its key as the order id, a refund's credit of the charge, a void's voided sale.
Bodies are shaped as braintree_python@80b03f4 reads them (transaction_gateway.py, transaction.py)."""

import json

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.statuses import GatewayStatus

S = GatewayStatus
CREDS = {"merchant_id": "m_1", "public_key": "pub_1", "private_key": "priv_1"}
TEN = Money.parse("10.00", "USD")


@pytest.fixture
def braintree():
    return plugin("braintree", GatewayConfig("https://api.braintreegateway.com:443", CREDS))


def txn(txn_id="sale_1", status="settled", kind="sale", order_id="charge_key", **extra):
    fields = {"id": txn_id, "status": status, "type": kind, "currency-iso-code": "USD",
              "amount": "10.00", "order-id": order_id, "processor-response-code": "1000",
              "processor-response-text": "Approved", **extra}  # fmt: skip
    return (
        "<transaction>"
        + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
        + ('<gateway-rejection-reason nil="true"/></transaction>')
    )


def refund_txn(status="submitted_for_settlement", refunded="sale_1", **extra):
    return txn("refund_1", status, "credit", "refund_key", **{"refunded-transaction-id": refunded},
               **extra)  # fmt: skip


def error_answer(carried: str, code: str | None = None, message: str = "Refused") -> str:
    """An <api-error-response>: validation errors (where a code is given), its message, and a
    transaction it carries."""
    errors = (
        f'<errors><transaction><errors type="array"><error><code>{code}</code>'
        f"<attribute>base</attribute><message>{message}</message></error></errors>"
        "</transaction></errors>"
        if code
        else '<errors><errors type="array"/></errors>'
    )
    return f"<api-error-response>{errors}<message>{message}</message>{carried}</api-error-response>"


class Answer:
    """What requests hands the plugin for one recorded Braintree answer."""

    def __init__(self, status: int, body: str):
        self.status_code, self.body = status, body.encode()
        self.headers = {"Content-Type": "application/xml; charset=utf-8"}
        self.encoding = "utf-8"

    def iter_content(self, chunk_size=1):
        yield self.body

    def close(self):
        pass


class Recorded:
    """A session that answers every request with one recorded answer."""

    def __init__(self, status: int, body: str):
        self.answer = Answer(status, body)

    def request(self, method, url, **kwargs):
        return self.answer


def answering(status: int, body: str):
    config = GatewayConfig("https://api.braintreegateway.com:443", CREDS)
    gateway = plugin("braintree", config)
    gateway.session = Recorded(status, body)
    return gateway


def follow_up(operation: str, amount=TEN) -> GatewayRequest:
    return GatewayRequest(operation, "refund_key" if operation == "refund" else "void_key",
                          "INV-1", amount if operation == "refund" else None,
                          reference="sale_1", original_key="charge_key")  # fmt: skip


# --- Refunds ---------------------------------------------------------------------------------


def test_a_refused_refund_that_carries_an_earlier_transaction_is_not_read_as_settled(braintree):
    body = error_answer(txn(status="settled"), "91521", "Refund amount is too large.")
    result = braintree.interpret(422, {}, body, "refund")
    assert (result.status, result.code, result.reference) == (S.SYSTEM_FAIL, "91521", None)


def test_a_refused_refund_without_error_codes_is_not_settled_by_the_sale_it_carries(braintree):
    body = error_answer(txn(status="settled"), message="Refund could not be processed.")
    result = braintree.interpret(422, {}, body, "refund")
    assert result.status is not S.SUCCESS and result.reference is None
    assert (result.code, result.message) == ("validation_error", "Refund could not be processed.")


def test_a_declined_refund_is_read_from_its_own_refund_transaction(braintree):
    body = error_answer(refund_txn("processor_declined", **{"processor-response-code": "2000"}))
    result = braintree.interpret(422, {}, body, "refund")
    assert (result.status, result.code, result.reference) == (S.DECLINE, "2000", "refund_1")


def test_a_refund_answered_with_the_sale_instead_of_a_refund_is_not_success(braintree):
    result = braintree.interpret(201, {}, txn(status="settled"), "refund")
    assert (result.status, result.reference) == (S.INDETERMINATE, None)


def test_a_refund_of_another_sale_is_not_this_refunds_answer():
    gateway = answering(201, refund_txn(refunded="sale_9"))
    result = gateway.refund(follow_up("refund"))
    assert (result.status, result.reference) == (S.INDETERMINATE, None)
    assert "sale_9" in result.reason
    assert answering(201, refund_txn()).refund(follow_up("refund")).status is S.SUCCESS


# --- Voids -----------------------------------------------------------------------------------


def test_a_refused_void_that_carries_a_voided_sale_is_not_read_as_voided(braintree):
    body = error_answer(txn(status="voided"), "91504", "Transaction can only be voided if ...")
    result = braintree.interpret(422, {}, body, "void")
    assert (result.status, result.code, result.reference) == (S.SYSTEM_FAIL, "91504", None)


def test_a_void_answered_with_another_sale_is_not_this_void():
    gateway = answering(200, txn("sale_9", "voided"))
    result = gateway.void(follow_up("void"))
    assert (result.status, result.reference) == (S.INDETERMINATE, None)
    assert answering(200, txn("sale_1", "voided")).void(follow_up("void")).status is S.SUCCESS


# --- Charges ---------------------------------------------------------------------------------


def test_a_refused_charge_that_carries_an_earlier_sale_is_not_read_as_paid(braintree):
    body = error_answer(txn("sale_0", "settled"), "81503", "Amount is an invalid format.")
    result = braintree.interpret(422, {}, body, "charge")
    assert (result.status, result.code, result.reference) == (S.SYSTEM_FAIL, "81503", None)


def test_a_charge_answered_with_a_sale_of_another_order_is_not_this_charge():
    request = GatewayRequest("charge", "charge_key", "INV-1", TEN, "tok")
    gateway = answering(201, txn("sale_0", "submitted_for_settlement", order_id="earlier_key"))
    result = gateway.charge(request)
    assert (result.status, result.reference) == (S.INDETERMINATE, None)
    mine = answering(201, txn("sale_1", "submitted_for_settlement")).charge(request)
    assert (mine.status, mine.reference) == (S.SUCCESS, "sale_1")


def test_a_refused_charge_with_a_contradicting_own_sale_is_not_decided(braintree):
    """An error answer whose own sale says it holds money contradicts itself: it may have."""
    body = error_answer(txn("sale_1", "submitted_for_settlement"))
    result = braintree.interpret(422, {}, body, "charge")
    assert (result.status, result.reference) == (S.INDETERMINATE, None)


# --- Lookups ---------------------------------------------------------------------------------


def test_a_refused_lookup_is_decided_by_its_errors_not_the_transaction_it_carries(braintree):
    body = error_answer(txn("sale_1", "settled"), "91500", "Search is invalid.")
    result = braintree.interpret(422, {}, body, "lookup")
    assert (result.code, result.reference, result.findings) == ("91500", None, ())
    assert result.status is not S.SUCCESS


def test_a_lookup_by_id_answered_with_another_transaction_is_not_believed():
    request = GatewayRequest("lookup", "lookup_key", "INV-1", reference="sale_1")
    result = answering(200, txn("sale_9", "settled")).lookup(request)
    assert (result.status, result.findings) == (S.INDETERMINATE, ())
    # A refund's credit is not the sale asked for either: it does not say "nothing held".
    credit = answering(200, refund_txn()).lookup(request)
    assert (credit.status, credit.findings) == (S.INDETERMINATE, ())
    (found,) = answering(200, txn("sale_1", "settled")).lookup(request).findings
    assert found.reference == "sale_1"


def test_a_sale_whose_refunds_cannot_be_read_is_left_as_found_and_the_lookup_says_so():
    """The sale names a refund; the search for it answers with something else (here the sale
    again): what the sale gave back is not guessed."""
    request = GatewayRequest("lookup", "lookup_key", "INV-1", reference="sale_1")
    sale = txn("sale_1", "settled", **{"refund-ids": "<item>refund_1</item>"})
    result = answering(200, sale).lookup(request)
    (found,) = result.findings
    assert (found.state, found.refunded, found.code) == (
        Settlement.SETTLED, None, "charge.settled_with_refunds",
    )  # fmt: skip
    assert "its refunds are not known" in result.message


# --- 5xx -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"errors": [{"message": "Validation error",
                                "extensions": {"errorClass": "VALIDATION", "legacyCode": "91518"}}]}),
        error_answer("", "91518", "Payment method token is invalid."),
        error_answer(txn("sale_1", "processor_declined", **{"processor-response-code": "2004"})),
    ],
)  # fmt: skip
@pytest.mark.parametrize("operation", ["charge", "refund", "void", "lookup"])
def test_a_server_error_answer_is_never_decided_by_the_body_it_carries(braintree, body, operation):
    for status in (500, 502, 503):
        result = braintree.interpret(status, {}, body, operation)
        assert result.status is S.INDETERMINATE
        assert result.reference is None and result.findings == ()
