"""Transport failures over real sockets, decided once in the base class (domain.md section 2)."""

import socket
import uuid

import pytest

from portal.gateways.base import GatewayConfig, GatewayRequest
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration
S = GatewayStatus


def sandbox_plugin(url, timeout=0.5, credentials=None):
    creds = sandbox_credentials("sandbox") if credentials is None else credentials
    return plugin("sandbox", GatewayConfig(url, creds, timeout=timeout))


def charge(gateway, token="tok_approve", key=None):
    return gateway.charge(
        GatewayRequest(
            "charge", key or uuid.uuid4().hex, "INV-1", Money.parse("10.00", "USD"), token
        )
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_system_fail_the_request_never_left():
    result = charge(sandbox_plugin(f"http://127.0.0.1:{closed_port()}"))
    assert result.status is S.SYSTEM_FAIL
    assert "Request not sent" in result.reason


def test_no_answer_within_the_timeout_is_indeterminate_and_the_money_moved(sandbox):
    result = charge(sandbox_plugin(sandbox.url, timeout=0.3), token="tok_hang")
    assert result.status is S.INDETERMINATE
    assert "no answer within" in result.reason
    (held,) = sandbox.ledger.all()
    assert held["state"] == "unsettled"


def test_a_connection_dropped_after_sending_is_indeterminate(sandbox):
    result = charge(sandbox_plugin(sandbox.url), token="tok_drop")
    assert result.status is S.INDETERMINATE
    assert "dropped after the request was sent" in result.reason


def test_a_garbage_body_is_indeterminate_with_the_reason(sandbox):
    result = charge(sandbox_plugin(sandbox.url), token="tok_garbage")
    assert result.status is S.INDETERMINATE
    assert "not JSON" in result.reason
    assert result.raw["response"]["body"].startswith("<html>")


def test_rejected_credentials_are_system_fail(sandbox):
    result = charge(sandbox_plugin(sandbox.url, credentials={"api_key": "sk_wrong"}))
    assert (result.status, result.code) == (S.SYSTEM_FAIL, "auth_rejected")
    assert sandbox.ledger.all() == []


def test_a_repeated_idempotency_key_never_charges_twice(sandbox):
    gateway = sandbox_plugin(sandbox.url)
    first = charge(gateway, key="same-key")
    second = charge(gateway, key="same-key")
    assert first.reference == second.reference
    assert len(sandbox.ledger.all()) == 1


def test_a_re_sent_timed_out_charge_gets_the_first_answer(sandbox):
    timed_out = charge(sandbox_plugin(sandbox.url, timeout=0.3), token="tok_hang", key="k-hang")
    assert timed_out.status is S.INDETERMINATE
    again = charge(sandbox_plugin(sandbox.url, timeout=5), token="tok_hang", key="k-hang")
    assert again.status is S.SUCCESS
    assert len(sandbox.ledger.all()) == 1


def test_stored_raw_request_holds_no_token_or_key(sandbox):
    result = charge(sandbox_plugin(sandbox.url), token="tok_approve")
    stored = str(result.raw)
    assert "tok_approve" not in stored
    assert sandbox_credentials("sandbox")["api_key"] not in stored


def test_an_answer_the_plugin_cannot_read_is_indeterminate_never_an_exception(sandbox, monkeypatch):
    gateway = sandbox_plugin(sandbox.url)

    def broken(*args, **kwargs):
        raise KeyError("a field the plugin did not expect")

    monkeypatch.setattr(gateway, "interpret", broken)
    result = charge(gateway)
    assert result.status is S.INDETERMINATE
    assert "could not be read (KeyError" in result.reason


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999", "127.0.0.1:5999/no-scheme", "ftp://127.0.0.1/"]
)
def test_an_invalid_gateway_url_is_system_fail_nothing_sent(url):
    result = charge(sandbox_plugin(url))
    assert result.status is S.SYSTEM_FAIL
    assert result.reason.startswith("Request not sent")


def test_a_stored_url_keeps_no_user_password_or_query(sandbox):
    host = sandbox.url.removeprefix("http://")
    result = charge(sandbox_plugin(f"http://user:secret@{host}"))
    stored = result.raw["request"]["url"]
    assert "secret" not in stored and "user" not in stored
    assert stored == f"{sandbox.url}/v1/charges"
