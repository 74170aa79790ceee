"""A supervisor configures gateways; credentials are never shown again; Test connection tells."""

import re

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.gateways.models import Gateway


def gateway_count():
    return db.session.scalar(select(func.count()).select_from(Gateway))


def form(**overrides):
    data = {"name": "Main", "base_url": "http://127.0.0.1:5999", "timeout_seconds": "30",
            "enabled": "y", "credential_api_key": "sk_test_abcdefgh1234"}  # fmt: skip
    data.update(overrides)
    return data


def test_a_supervisor_adds_a_gateway_and_never_sees_its_key_again(client, login, make_user):
    login(make_user("supervisor"))
    choose = client.get("/gateways/new").get_data(as_text=True)
    assert "Settle Sandbox" in choose
    assert "api_key" in client.get("/gateways/new?plugin=sandbox").get_data(as_text=True)
    response = client.post("/gateways/new?plugin=sandbox", data=form(), follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Gateway Main saved." in page
    assert "sk_test_abcdefgh1234" not in page
    assert "api_key=set" in page
    edit_page = client.get("/gateways/1/edit").get_data(as_text=True)
    assert "sk_test_abcdefgh1234" not in edit_page
    (created,) = db.session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "gateways"))
    assert created.action == "gateway.created"
    assert "sk_test" not in str(created.after)


def test_an_empty_credential_on_edit_keeps_the_saved_one(client, login, make_user):
    login(make_user("supervisor"))
    client.post("/gateways/new?plugin=sandbox", data=form())
    client.post("/gateways/1/edit", data=form(name="Renamed", credential_api_key=""))
    gateway = db.session.get(Gateway, 1)
    db.session.refresh(gateway)
    assert (gateway.name, gateway.credentials) == ("Renamed", {"api_key": "sk_test_abcdefgh1234"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"credential_api_key": ""}, "Give the api_key"),
        ({"base_url": "ftp://x"}, "The base URL must start with https://"),
        ({"base_url": "not a url"}, "The base URL must start with https://"),
        ({"timeout_seconds": "0.5"}, "between 1 and 300 seconds"),
        ({"timeout_seconds": "many"}, "Give a timeout in seconds"),
        ({"timeout_seconds": "nan"}, "between 1 and 300 seconds"),
        ({"deadline_seconds": "10"}, "The deadline must be at least the timeout"),
        ({"deadline_seconds": "301"}, "at most 300 seconds"),
        ({"deadline_seconds": "inf"}, "The deadline must be"),
        ({"name": ""}, "Give the gateway a name"),
    ],
)
def test_a_bad_gateway_form_rerenders_with_its_message(
    client, login, make_user, overrides, message
):
    login(make_user("supervisor"))
    response = client.post("/gateways/new?plugin=sandbox", data=form(**overrides))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert gateway_count() == 0


def test_a_duplicate_name_is_refused(client, login, make_user, make_gateway):
    login(make_user("supervisor"))
    make_gateway(name="Main")
    response = client.post("/gateways/new?plugin=sandbox", data=form())
    assert "A gateway named &#39;Main&#39; exists already" in response.get_data(as_text=True)
    assert gateway_count() == 1


def test_test_connection_says_whether_url_and_credentials_work(
    client, login, make_user, make_gateway
):
    login(make_user("supervisor"))
    make_gateway(name="Good")
    make_gateway(name="Bad key", credentials={"api_key": "sk_wrong"})
    make_gateway(name="Down", url="http://127.0.0.1:9")
    good = client.post("/gateways/1/test", follow_redirects=True).get_data(as_text=True)
    assert "Good: the URL and credentials work" in good
    bad = client.post("/gateways/2/test", follow_redirects=True).get_data(as_text=True)
    assert "Bad key: the connection does not work: auth_rejected" in bad
    down = client.post("/gateways/3/test", follow_redirects=True).get_data(as_text=True)
    assert "Down: the connection does not work: Request not sent" in down


@pytest.mark.parametrize("role", ["auditor", "clerk"])
def test_only_a_supervisor_configures_gateways(client, login, make_user, make_gateway, role):
    login(make_user(role))
    make_gateway(name="Main")
    assert client.get("/gateways/new?plugin=sandbox").status_code == 403
    assert client.post("/gateways/new?plugin=sandbox", data=form(name="Other")).status_code == 403
    assert client.post("/gateways/1/edit", data=form(name="Changed")).status_code == 403
    assert client.post("/gateways/1/test").status_code == 403
    assert db.session.scalar(select(Gateway.name)) == "Main"
    assert "Add a gateway" not in client.get("/gateways/").get_data(as_text=True)


def test_an_unknown_gateway_is_a_404(client, login, make_user):
    login(make_user("supervisor"))
    assert client.get("/gateways/99/edit").status_code == 404


def test_the_mapping_table_is_searchable(client, login, make_user):
    login(make_user("auditor"))
    page = client.get("/gateways/?q=cvc").get_data(as_text=True)
    assert "incorrect_cvc" in page
    assert "insufficient_funds" not in page


def test_resending_after_a_timeout_is_offered_only_where_the_provider_makes_it_safe(
    client, login, make_user
):
    login(make_user("supervisor"))
    sandbox_form = client.get("/gateways/new?plugin=sandbox").get_data(as_text=True)
    assert "answers a repeated key with its first answer for 86400 s" in sandbox_form
    saved = client.post(
        "/gateways/new?plugin=sandbox", data=form(resend_after_timeout="y"), follow_redirects=True
    )
    assert "Gateway Main saved." in saved.get_data(as_text=True)
    assert db.session.scalar(select(Gateway.resend_after_timeout)) is True
    payeezy_form = client.get("/gateways/new?plugin=payeezy").get_data(as_text=True)
    assert "does not make a repeated key safe" in payeezy_form
    (box,) = re.findall(r'<input[^>]*id="resend_after_timeout"[^>]*>', payeezy_form)
    assert " disabled " in box
    credentials = {"credential_api_key": "a", "credential_api_secret": "b",
                   "credential_merchant_token": "c"}  # fmt: skip
    refused = client.post(
        "/gateways/new?plugin=payeezy",
        data=form(name="P", resend_after_timeout="y", **credentials),
    )
    assert refused.status_code == 400
    assert "Settle never sends its calls twice" in refused.get_data(as_text=True)
    assert gateway_count() == 1
