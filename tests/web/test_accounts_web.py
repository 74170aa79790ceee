"""Accounts: a supervisor assigns a payment method to another gateway of the same provider."""

import pytest

from portal.accounts.models import PaymentMethod
from portal.extensions import db


def test_accounts_are_listed_and_searchable(client, login, make_user, make_invoice):
    login(make_user("auditor"))
    make_invoice()
    make_invoice()
    page = client.get("/accounts/?q=ACC-0002").get_data(as_text=True)
    assert "ACC-0002" in page and "ACC-0001" not in page
    detail = client.get("/accounts/1").get_data(as_text=True)
    assert "INV-0001" in detail and "Visa •••• 4242" in detail
    assert client.get("/accounts/99").status_code == 404


def test_a_supervisor_moves_a_method_to_another_gateway(
    client, login, make_user, make_invoice, make_gateway
):
    login(make_user("supervisor"))
    make_invoice()
    backup = make_gateway(name="Backup")
    response = client.post(
        "/accounts/methods/1/gateway", data={"gateway_id": backup.id}, follow_redirects=True
    )
    assert "now charges through Backup" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(PaymentMethod, 1).gateway.name == "Backup"


def test_an_unknown_gateway_is_refused(client, login, make_user, make_invoice):
    login(make_user("supervisor"))
    make_invoice()
    page = client.post(
        "/accounts/methods/1/gateway", data={"gateway_id": "99"}, follow_redirects=True
    )
    assert "Unknown gateway" in page.get_data(as_text=True)
    assert client.post("/accounts/methods/99/gateway", data={"gateway_id": "1"}).status_code == 404


@pytest.mark.parametrize("role", ["auditor", "clerk"])
def test_only_a_supervisor_assigns_gateways(
    client, login, make_user, make_invoice, make_gateway, role
):
    login(make_user(role))
    make_invoice()
    other = make_gateway(name="Other")
    assert (
        client.post("/accounts/methods/1/gateway", data={"gateway_id": other.id}).status_code == 403
    )
    db.session.expire_all()
    assert db.session.get(PaymentMethod, 1).gateway.name == "Sandbox"


@pytest.mark.parametrize("sent", [{}, {"gateway_id": ""}, {"gateway_id": "two"}])
def test_a_gateway_not_chosen_is_said_and_changes_nothing(
    client, login, make_user, make_invoice, sent
):
    login(make_user("supervisor"))
    make_invoice()
    page = client.post("/accounts/methods/1/gateway", data=sent, follow_redirects=True)
    assert page.status_code == 200 and "Choose a gateway from the list." in page.get_data(True)
    db.session.expire_all()
    assert db.session.get(PaymentMethod, 1).gateway.name == "Sandbox"
