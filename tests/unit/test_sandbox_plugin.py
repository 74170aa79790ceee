"""The Sandbox plugin: the exact request it builds, and how it reads every kind of answer (pure)."""

import json

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.statuses import GatewayStatus

S = GatewayStatus


@pytest.fixture
def sandbox_plugin():
    config = GatewayConfig("http://127.0.0.1:1", {"api_key": "sk_test_secret_value"}, timeout=5)
    return plugin("sandbox", config)


def charge_request(**kw):
    fields = dict(operation="charge", idempotency_key="key-1", order_id="INV-7",
                  amount=Money.parse("12.30", "USD"), token="tok_visa_secret")  # fmt: skip
    fields.update(kw)
    return GatewayRequest(**fields)


def test_the_registry_hands_out_a_ready_plugin_without_a_network_call(plugin_at_sandbox):
    ready = plugin_at_sandbox("sandbox")
    assert ready.config.base_url.startswith("http://127.0.0.1:")
    assert ready.mapping.lookup("approved").status is S.SUCCESS
    with pytest.raises(KeyError, match="no gateway plugin named 'nope'"):
        plugin("nope", ready.config)


def test_a_charge_request_carries_amount_currency_token_order_and_idempotency_key(sandbox_plugin):
    call = sandbox_plugin.build("charge", charge_request())
    assert (call.method, call.url) == ("POST", "http://127.0.0.1:1/v1/charges")
    assert call.headers["Idempotency-Key"] == "key-1"
    assert call.headers["Authorization"] == "Bearer sk_test_secret_value"
    assert json.loads(call.body) == {
        "amount": "12.30", "currency": "USD", "source": "tok_visa_secret", "order_id": "INV-7",
    }  # fmt: skip


def test_void_refund_and_lookup_requests(sandbox_plugin):
    void = sandbox_plugin.build("void", charge_request(operation="void", reference="ch_1/x"))
    assert void.url == "http://127.0.0.1:1/v1/charges/ch_1%2Fx/void"
    refund = sandbox_plugin.build("refund", charge_request(operation="refund", reference="ch_1"))
    assert json.loads(refund.body) == {"amount": "12.30", "currency": "USD"}
    lookup = sandbox_plugin.build("lookup", charge_request(operation="lookup", original_key="k 1"))
    assert (lookup.method, lookup.url) == (
        "GET",
        "http://127.0.0.1:1/v1/charges?idempotency_key=k+1",
    )


@pytest.mark.parametrize(
    ("http_status", "body", "status", "code"),
    [
        (200, {"id": "ch_1", "code": "approved", "message": "Approved"}, S.SUCCESS, "approved"),
        (402, {"id": "ch_2", "code": "insufficient_funds", "message": "No"}, S.DECLINE, "insufficient_funds"),
        (402, {"id": "ch_3", "code": "incorrect_cvc", "message": "CVC"}, S.VALIDATION_ERROR, "incorrect_cvc"),
        (402, {"id": "ch_4", "code": "account_closed", "message": "x"}, S.PERMANENT_FAIL, "account_closed"),
        (202, {"id": "ch_5", "code": "review_required", "message": "x"}, S.REQUIRES_REVIEW, "review_required"),
        (504, {"id": "ch_6", "code": "processing_timeout", "message": "x"}, S.INDETERMINATE, "processing_timeout"),
        (401, {"error": {"code": "auth_rejected", "message": "Invalid API key"}}, S.SYSTEM_FAIL, "auth_rejected"),
    ],
)  # fmt: skip
def test_each_code_decides_its_status_through_the_mapping(
    sandbox_plugin, http_status, body, status, code
):
    result = sandbox_plugin.interpret(http_status, {}, json.dumps(body))
    assert (result.status, result.code, result.unmapped) == (status, code, False)
    assert result.message
    assert result.reference == body.get("id")


def test_fields_in_any_order_with_extras_and_whitespace_read_the_same(sandbox_plugin):
    body = '\n {  "extra": [1, 2],\n "message" : "Approved", "code":"approved", "id": "ch_9" }\n'
    result = sandbox_plugin.interpret(200, {"X-Other": "1"}, body)
    assert (result.status, result.reference) == (S.SUCCESS, "ch_9")


def test_an_unknown_code_falls_back_to_system_fail_and_is_marked_unmapped(sandbox_plugin):
    result = sandbox_plugin.interpret(
        402, {}, '{"id": "ch_1", "code": "brand_new", "message": "?"}'
    )
    assert (result.status, result.code, result.unmapped) == (S.SYSTEM_FAIL, "brand_new", True)


@pytest.mark.parametrize(
    ("http_status", "body"),
    [(200, "<html>oops</html>"), (502, "<html>Bad Gateway</html>"), (200, "[1, 2]"), (200, "{}"), (200, "")],
)  # fmt: skip
def test_an_unreadable_answer_is_indeterminate_with_the_reason(sandbox_plugin, http_status, body):
    result = sandbox_plugin.interpret(http_status, {}, body)
    assert result.status is S.INDETERMINATE
    assert result.reason.startswith("Unreadable answer")


def test_a_lookup_answer_lists_what_the_gateway_holds(sandbox_plugin):
    body = json.dumps({"object": "list", "data": [
        {"id": "ch_1", "amount": "12.30", "currency": "USD", "state": "settled", "created": "2026-01-02T03:04:05"},
    ]})  # fmt: skip
    result = sandbox_plugin.interpret(200, {}, body, operation="lookup")
    assert result.status is S.SUCCESS
    (finding,) = result.findings
    assert finding.state is Settlement.SETTLED
    assert finding.amount == Money.parse("12.30", "USD")
    assert finding.reference == "ch_1"


def test_a_lookup_that_finds_nothing(sandbox_plugin):
    result = sandbox_plugin.interpret(200, {}, '{"data": []}', operation="lookup")
    assert (result.status, result.findings) == (S.SUCCESS, ())


def test_a_broken_lookup_answer_is_indeterminate(sandbox_plugin):
    result = sandbox_plugin.interpret(200, {}, '{"data": [{"id": "x"}]}', operation="lookup")
    assert result.status is S.INDETERMINATE


def test_scrub_removes_tokens_and_keys(sandbox_plugin):
    raw = '{"amount": "1.00", "source": "tok_visa_secret", "api_key": "sk_live_1", "order_id": "INV-1"}'
    assert sandbox_plugin.scrub(raw) == (
        '{"amount": "1.00", "source": "[FILTERED]", "api_key": "[FILTERED]", "order_id": "INV-1"}'
    )


def test_a_missing_credential_is_a_system_fail_and_nothing_is_sent():
    bare = plugin("sandbox", GatewayConfig("http://127.0.0.1:1", {}))
    result = bare.charge(charge_request())
    assert result.status is S.SYSTEM_FAIL
    assert "missing credential api_key" in result.message
