"""Login, logout, roles on every view, CSRF on every form."""

import pytest

from portal import create_app
from tests.conftest import PASSWORD

PAGES = [
    "/",
    "/runs/",
    "/runs/new",
    "/invoices/",
    "/transactions/",
    "/accounts/",
    "/gateways/",
    "/audit/",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_asks_an_anonymous_visitor_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_a_clerk_logs_in_and_out(client, make_user):
    make_user("clerk")
    response = client.post(
        "/login", data={"username": "clerk", "password": PASSWORD}, follow_redirects=True
    )
    assert b"What needs action now" in response.data
    assert b"Carla" not in response.data and b"Clerk" in response.data
    response = client.post("/logout", follow_redirects=True)
    assert b"You are logged out" in response.data
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("username", ["clerk", "nobody"])
def test_a_wrong_password_or_unknown_user_gets_one_neutral_message(client, make_user, username):
    make_user("clerk")
    response = client.post("/login", data={"username": username, "password": "wrong password"})
    assert response.status_code == 401
    assert b"Wrong username or password." in response.data


def test_an_empty_login_form_rerenders_with_messages(client):
    response = client.post("/login", data={"username": "", "password": ""})
    assert response.status_code == 200
    assert b"This field is required." in response.data


def test_an_inactive_user_cannot_log_in(client, make_user):
    from portal.extensions import db

    user = make_user("clerk")
    user.active = False
    db.session.commit()
    response = client.post("/login", data={"username": "clerk", "password": PASSWORD})
    assert response.status_code == 401


def test_login_never_redirects_to_another_site(client, make_user):
    make_user("clerk")
    for target in ["https://evil.example/", "//evil.example/x"]:
        response = client.post(
            f"/login?next={target}", data={"username": "clerk", "password": PASSWORD}
        )
        assert response.headers["Location"] == "/"
        client.post("/logout")
    response = client.post(
        "/login?next=/invoices/", data={"username": "clerk", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/invoices/"


def test_passwords_are_stored_hashed(make_user):
    user = make_user("clerk")
    assert PASSWORD not in user.password_hash
    assert user.check_password(PASSWORD)


def test_every_form_needs_its_csrf_token(app, make_user):
    from portal.extensions import db

    make_user("supervisor")
    protected = create_app({**app.config, "WTF_CSRF_ENABLED": True, "TESTING": True})
    client = protected.test_client()
    response = client.post("/login", data={"username": "supervisor", "password": PASSWORD})
    assert response.status_code == 400
    assert b"Form expired" in response.data
    db.session.remove()


def test_every_view_declares_its_role(app):
    """No view can be reached without a role check, except login, static files, the API's
    OpenAPI description (its shape only, no data; every API route itself needs a token) and the
    providers' webhooks (the provider's signature is the proof: tests/web/test_webhooks_web.py)."""
    open_views = {
        "auth.login",
        "auth.logout",
        "static",
        "api-docs.openapi_json",
        "webhooks.receive",
    }
    for endpoint, view in app.view_functions.items():
        if endpoint in open_views:
            continue
        assert hasattr(view, "required_role"), f"{endpoint} has no role check"


def test_a_deactivated_user_loses_an_open_session(client, login, make_user):
    from portal.extensions import db

    user = make_user("clerk")
    login(user)
    assert client.get("/").status_code == 200
    user.active = False
    db.session.commit()
    assert client.get("/").status_code == 302
