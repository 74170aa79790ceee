"""Saved credentials belong to the address they were entered for (issue 14, hole 1): a changed
URL clears them, Test connection sends only to the saved URL, and in production mode a gateway
sends only to its provider's published hosts."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.gateways.base import GatewayRequest
from portal.gateways.models import Gateway
from portal.gateways.service import plugin_for
from portal.statuses import GatewayStatus


@pytest.fixture
def thief():
    """A server of the supervisor's own, on loopback, that keeps every request it receives."""
    heard = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            heard.append(
                (
                    self.path,
                    dict(self.headers),
                    self.rfile.read(int(self.headers.get("Content-Length") or 0)),
                )
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", heard
    server.shutdown()


def form(url, key=""):
    return {"name": "Sandbox", "base_url": url, "timeout_seconds": "5", "enabled": "y",
            "credential_api_key": key}  # fmt: skip


def test_a_new_address_with_the_credentials_left_empty_is_refused_and_nothing_reaches_it(
    client, login, make_user, make_gateway, thief
):
    url, heard = thief
    login(make_user("supervisor"))
    gateway = make_gateway()
    saved_url, saved_key = gateway.base_url, gateway.credentials["api_key"]
    response = client.post(f"/gateways/{gateway.id}/edit", data=form(url))
    assert response.status_code == 400
    assert "address changed" in response.get_data(as_text=True)
    assert "give the api_key again" in response.get_data(as_text=True)
    client.post(f"/gateways/{gateway.id}/test")
    db.session.expire_all()
    row = db.session.get(Gateway, gateway.id)
    assert (row.base_url, row.credentials["api_key"]) == (saved_url, saved_key)
    assert heard == []


def test_a_new_address_takes_new_credentials_and_keeps_none_of_the_old(
    client, login, make_user, make_gateway, thief
):
    url, heard = thief
    login(make_user("supervisor"))
    gateway = make_gateway()
    old_key = gateway.credentials["api_key"]
    assert (
        client.post(f"/gateways/{gateway.id}/edit", data=form(url, "sk_new_one")).status_code == 302
    )
    client.post(f"/gateways/{gateway.id}/test")
    assert heard, "Test connection asks the saved (new) address"
    assert all(old_key not in str(headers) and old_key.encode() not in body
               for _, headers, body in heard)  # fmt: skip


@pytest.mark.parametrize("change", ["/other/path", "/"])
def test_the_same_address_with_another_path_keeps_the_saved_credentials(
    client, login, make_user, make_gateway, change
):
    login(make_user("supervisor"))
    gateway = make_gateway()
    key = gateway.credentials["api_key"]
    response = client.post(f"/gateways/{gateway.id}/edit", data=form(gateway.base_url + change))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Gateway, gateway.id).credentials["api_key"] == key


@pytest.fixture
def production(app, monkeypatch):
    monkeypatch.setitem(app.config, "SETTLE_PRODUCTION", True)
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_TEST_HOSTS", False)
    return app.config


@pytest.mark.parametrize(
    ("plugin", "url", "credentials", "accepted"),
    [
        ("stripe", "https://api.stripe.com", {"credential_secret_key": "sk_live_x"}, True),
        ("stripe", "http://api.stripe.com", {"credential_secret_key": "sk_live_x"}, False),
        ("stripe", "https://api.stripe.com.evil.example", {"credential_secret_key": "k"}, False),
        ("stripe", "http://127.0.0.1:5081", {"credential_secret_key": "sk_test_x"}, False),
        (
            "adyen",
            "https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout",
            {"credential_api_key": "k", "credential_merchant_account": "M"},
            True,
        ),
        (
            "adyen",
            "https://checkout-test.adyen.com",
            {"credential_api_key": "k", "credential_merchant_account": "M"},
            False,
        ),
        ("sandbox", "http://127.0.0.1:5081", {"credential_api_key": "k"}, False),
    ],
)
def test_production_accepts_only_the_providers_published_hosts(
    client, login, make_user, production, plugin, url, credentials, accepted
):
    login(make_user("supervisor"))
    page = client.get(f"/gateways/new?plugin={plugin}").get_data(as_text=True)
    assert "Production: https:// and one of" in page
    data = {"name": "G", "base_url": url, "timeout_seconds": "30", "enabled": "y", **credentials}
    response = client.post(f"/gateways/new?plugin={plugin}", data=data)
    assert (response.status_code == 302) is accepted, response.get_data(as_text=True)[-3000:]
    if not accepted:
        assert "published" in response.get_data(as_text=True)


def test_test_hosts_are_admitted_only_by_their_setting(client, login, make_user, production):
    login(make_user("supervisor"))
    data = {"name": "G", "base_url": "https://checkout-test.adyen.com", "timeout_seconds": "30",
            "credential_api_key": "k", "credential_merchant_account": "M"}  # fmt: skip
    assert client.post("/gateways/new?plugin=adyen", data=data).status_code == 400
    production["SETTLE_GATEWAY_TEST_HOSTS"] = True
    assert client.post("/gateways/new?plugin=adyen", data=data).status_code == 302
    local = {**data, "name": "Local", "base_url": "http://127.0.0.1:5081"}
    assert client.post("/gateways/new?plugin=adyen", data=local).status_code == 302


def test_a_gateway_saved_before_production_mode_sends_nothing_to_its_old_host(
    app, make_gateway, production, sandbox
):
    gateway = make_gateway()  # the sandbox on loopback, saved directly
    result = plugin_for(gateway).lookup(
        GatewayRequest("lookup", "k" * 32, "INV-1", original_key="k" * 32)
    )
    assert (result.status, result.sent) == (GatewayStatus.SYSTEM_FAIL, False)
    assert "published" in result.message
    assert db.session.scalar(select(Gateway.base_url)) == gateway.base_url
