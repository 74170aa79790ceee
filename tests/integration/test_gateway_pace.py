"""A gateway's pace: a 429 (Too Many Requests) pauses its calls and sends them again with the
same key instead of failing the invoice; a gateway's rate limit is kept; a call refused too
often is answered with its 429; the run's page says it waits for the gateway's rate limit."""

import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.runs import senders
from portal.runs.models import PaymentRun
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


@pytest.fixture
def limited(sandbox):
    """The sandbox answers 5 requests a second, and 429 (Retry-After: 1) past them."""
    sandbox.faults.limit_rate(5)
    yield sandbox
    sandbox.faults.limit_rate(None)


def _charges():
    return db.session.scalars(select(PaymentTransaction)).all()


def test_a_429_pauses_the_gateway_and_every_invoice_is_charged_once(
    app, make_invoice, run_for, limited, monkeypatch
):
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 8)
    invoices = [make_invoice() for _ in range(14)]
    run = run_for()
    assert limited.faults.refused > 0  # the gateway did say "slow down"
    assert run.success_count == 14 and run.failure_count == 0, run.error
    orders = Counter(c["order_id"] for c in limited.ledger.all())
    assert len(orders) == 14 and set(orders.values()) == {1}
    assert all(db.session.get(Invoice, i.id).balance == 0 for i in invoices)
    # Each invoice has one transaction: a refused call is sent again, not recorded again.
    assert Counter(t.invoice_id for t in _charges()) == {i.id: 1 for i in invoices}
    assert run.rate_limited_until is not None


def test_a_gateway_rate_limit_keeps_its_calls_under_the_providers_limit(
    app, make_invoice, make_gateway, run_for, limited, monkeypatch
):
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 8)
    gateway = make_gateway()
    gateway.rate_limit = Decimal("4")
    db.session.commit()
    for _ in range(10):
        make_invoice(gateway=gateway)
    started = time.monotonic()
    run = run_for()
    assert run.success_count == 10
    assert limited.faults.refused == 0  # never past the provider's 5 a second
    assert time.monotonic() - started >= 2.2  # 10 calls, one every 0.25 s


def test_a_call_refused_too_often_is_answered_with_its_429(
    app, make_invoice, run_for, limited, monkeypatch
):
    monkeypatch.setattr(senders, "MOST_SLOW_DOWNS", 0)
    limited.faults.limit_rate(1)
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 4)
    invoices = [make_invoice() for _ in range(4)]
    run = run_for()
    refused = [t for t in _charges() if t.provider_code == "rate_limit"]
    assert refused and run.success_count + len(refused) == 4
    for txn in refused:
        assert txn.status == "System Fail" and not txn.unmapped
        assert db.session.get(Invoice, txn.invoice_id).corrective_action == "Action Required"
    held = {c["order_id"] for c in limited.ledger.all()}
    assert len(held) == run.success_count  # the refused ones never reached the ledger
    assert {i.number for i in invoices} >= held


def test_the_run_page_says_it_waits_for_the_gateways_rate_limit(
    client, login, make_user, make_invoice
):
    run = PaymentRun(state="Running", due_on=clock.today(), filter_key="test-pace")
    run.rate_limited_until = clock.now() + timedelta(seconds=30)
    db.session.add(run)
    db.session.commit()
    login(make_user("clerk"))
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "Waiting for the gateway&#39;s rate limit" in page
    progress = client.get(f"/runs/{run.id}/progress.json").get_json()
    assert progress["rate_limit_note"].startswith("Waiting for the gateway's rate limit")
    run.rate_limited_until = clock.now() - timedelta(seconds=1)
    db.session.commit()
    assert client.get(f"/runs/{run.id}/progress.json").get_json()["rate_limit_note"] == ""


def test_the_gateway_form_saves_a_rate_limit_and_refuses_a_bad_one(
    client, login, make_user, make_gateway
):
    gateway = make_gateway()
    login(make_user("supervisor"))
    form = client.get(f"/gateways/{gateway.id}/edit").get_data(as_text=True)
    assert "Rate limit (requests per second)" in form
    fields = {"name": gateway.name, "base_url": gateway.base_url, "timeout_seconds": "5",
              "deadline_seconds": "120", "enabled": "y"}  # fmt: skip
    for bad in ("0", "-3", "20000"):
        answer = client.post(f"/gateways/{gateway.id}/edit", data={**fields, "rate_limit": bad})
        assert answer.status_code == 400
        assert "The rate limit must be between 0.1 and 10000" in answer.get_data(as_text=True)
        db.session.expire_all()
        assert db.session.get(Gateway, gateway.id).rate_limit is None
    answer = client.post(f"/gateways/{gateway.id}/edit", data={**fields, "rate_limit": "12.5"})
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(Gateway, gateway.id).rate_limit == Decimal("12.50")
    assert "12.5/s" in client.get("/gateways/").get_data(as_text=True)


def test_every_provider_sends_a_refused_call_again_and_charges_once(
    app, make_invoice, run_for, limited, monkeypatch
):
    from portal.demo import TOKEN_FORMAT
    from portal.gateways import registry
    from portal.sandbox.server import sandbox_credentials

    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 4)
    limited.faults.limit_rate(8)
    invoices = []
    for name in registry.names():
        gateway = Gateway(name=name, plugin=name, base_url=limited.url_for(name),
                          credentials=sandbox_credentials(name), timeout_seconds=5)  # fmt: skip
        db.session.add(gateway)
        db.session.commit()
        token = TOKEN_FORMAT.get(name, "{}").format("tok_approve")
        invoices += [make_invoice(token=token, gateway=gateway) for _ in range(4)]
    run = run_for()
    assert limited.faults.refused > 0
    assert run.success_count == len(invoices), run.error
    orders = Counter(c["order_id"] for c in limited.ledger.all())
    assert set(orders.values()) == {1} and len(orders) == len(invoices)
