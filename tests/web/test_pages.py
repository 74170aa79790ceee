"""Each page renders for every role that may read it; unknown records are a 404 page."""

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.transactions.models import PaymentTransaction


@pytest.fixture
def demo_world(make_invoice, run_for, make_user):
    supervisor = make_user("supervisor")
    for token in ["tok_approve", "tok_decline", "tok_review", "tok_hang", "tok_unknown"]:
        make_invoice(token=token)
    run_for(actor=supervisor)
    return supervisor


@pytest.mark.parametrize("role", ["auditor", "clerk", "supervisor", "admin"])
def test_every_reader_sees_every_page(client, login, make_user, demo_world, role):
    login(make_user(role, f"{role}-reader"))
    for path in ["/", "/runs/", "/runs/1", "/runs/1/progress.json", "/invoices/",
                 "/invoices/?filter=action-required", "/invoices/1", "/transactions/",
                 "/transactions/?status=Decline", "/transactions/1", "/accounts/", "/accounts/1",
                 "/gateways/", "/gateways/?q=decline", "/gateways/mappings/authorize_net",
                 "/audit/"]:  # fmt: skip
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)


@pytest.mark.parametrize("path", ["/runs/999", "/invoices/999", "/transactions/999", "/nope"])
def test_an_unknown_record_is_a_404_page(client, login, make_user, path):
    login(make_user("auditor"))
    response = client.get(path)
    assert response.status_code == 404
    assert b"There is no such page or record." in response.data


def test_the_action_required_filter_lists_only_locked_invoices_oldest_first(
    client, login, make_user, make_invoice, run_for
):
    login(make_user("clerk"))
    make_invoice(token="tok_approve")
    late = make_invoice(token="tok_review", due_days=-9)
    early = make_invoice(token="tok_hang", due_days=-2)
    run_for()
    page = client.get("/invoices/?filter=action-required").get_data(as_text=True)
    assert "INV-0001" not in page
    assert page.index(late.number) < page.index(early.number)
    # Beside each, what the gateway last said of the charge that locked it.
    assert "The gateway says" in page and "not asked yet" in page
    from portal.transactions import finalize

    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == early.id)
    )
    finalize.check_gateway_status(charge.id, None)
    page = client.get("/invoices/?filter=action-required").get_data(as_text=True)
    row = page[page.index(early.number) :].split("</tr>")[0]
    assert "unsettled" in row and "Indeterminate" in row


def test_invoice_search(client, login, make_user, make_invoice):
    login(make_user("clerk"))
    make_invoice()
    make_invoice()
    page = client.get("/invoices/?q=INV-0002").get_data(as_text=True)
    assert "INV-0002" in page and "INV-0001" not in page


def test_the_transaction_page_shows_code_message_guidance_and_unmapped(
    client, login, make_user, make_invoice, run_for
):
    login(make_user("auditor"))
    make_invoice(token="tok_unknown")
    run_for()
    page = client.get("/transactions/1").get_data(as_text=True)
    assert "zz_unlisted_code" in page
    assert "unmapped code" in page
    assert "System Fail" in page
    assert "What to do:" in page
    # An auditor reads, and is offered no button that changes anything.
    assert "refund-unlock" not in page and "manual-payment" not in page
    assert "a clerk finalizes it" in page


def test_a_locked_transaction_offers_the_clerk_both_actions(
    client, login, make_user, make_invoice, run_for
):
    login(make_user("clerk"))
    make_invoice(token="tok_hang")
    run_for()
    page = client.get("/transactions/1").get_data(as_text=True)
    assert "Attempt Refund &amp; Unlock Invoice" in page
    assert "Create manual payment" in page
    assert "Check gateway status" in page
    assert "Settle recommends" in page


def test_the_gateways_page_never_shows_a_credential(client, login, make_user, make_gateway):
    login(make_user("auditor"))
    make_gateway(credentials={"api_key": "sk_test_very_secret_1234"})
    page = client.get("/gateways/").get_data(as_text=True)
    assert "sk_test_very_secret_1234" not in page
    assert "api_key=set" in page
    # Each mapping table is on its own page; the gateways page finds codes across them.
    assert "insufficient_funds" not in page
    assert "insufficient_funds" in client.get("/gateways/?q=insufficient").get_data(as_text=True)
    mapping = client.get("/gateways/mappings/sandbox").get_data(as_text=True)
    assert "insufficient_funds" in mapping and "sk_test_very_secret_1234" not in mapping
    assert client.get("/gateways/mappings/nope").status_code == 404


def test_pages_are_paginated(client, login, make_user, app, make_invoice, monkeypatch):
    monkeypatch.setitem(app.config, "SETTLE_PAGE_SIZE", 2)
    login(make_user("auditor"))
    for _ in range(5):
        make_invoice()
    page = client.get("/invoices/").get_data(as_text=True)
    assert "2 shown of 5" in page
    last = client.get("/invoices/?end=last").get_data(as_text=True)
    assert "INV-0001" in last and "INV-0005" not in last
    db.session.remove()


def test_the_invoice_history_reads_as_plain_changes(
    client, login, make_user, make_invoice, run_for
):
    login(make_user("auditor"))
    make_invoice(token="tok_review")
    run_for()
    page = client.get("/invoices/1").get_data(as_text=True)
    assert "Settle (system)" in page
    assert "corrective action: — → Action Required" in page
