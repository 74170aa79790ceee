"""CSRF over every POST (issue 14, proofs): each POST rule of the URL map, from a logged-in
admin's browser, is refused without a CSRF token and with another session's token, and changes
nothing. The API (a token in a header, which a browser never sends by itself) and the providers'
webhooks (their signature) are the only POSTs without one."""

import re

import pytest

from portal import create_app
from portal.auth.models import Role
from portal.extensions import db
from tests.conftest import PASSWORD
from tests.web.surface import fingerprint, requests_of

NO_CSRF = {"webhooks.receive"}  # and every api.* endpoint


@pytest.fixture
def protected(app):
    guarded = create_app({**app.config, "WTF_CSRF_ENABLED": True, "TESTING": True})
    yield guarded
    db.session.remove()


def logged_in(app, username):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-500:]
    page = client.get("/runs/new").get_data(as_text=True)
    return client, re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def test_every_post_is_refused_without_its_sessions_csrf_token(
    protected, make_user, make_invoice, run_for, sandbox
):
    for role in Role:
        make_user(role.value)
    make_invoice(token="tok_review", amount="40.00")
    make_invoice(token="tok_approve", amount="25.00")
    run_for()
    admin, _ = logged_in(protected, "admin")
    _, others = logged_in(protected, "supervisor")
    checked = 0
    for endpoint, method, path in requests_of(protected):
        if method != "POST" or endpoint in NO_CSRF or endpoint.startswith("api."):
            continue
        for token in (None, others):
            before = fingerprint()
            data = {} if token is None else {"csrf_token": token}
            response = admin.post(path, data=data)
            where = (path, "no token" if token is None else "another session's token")
            assert response.status_code == 400, (*where, response.status_code)
            assert "Form expired" in response.get_data(as_text=True), where
            assert fingerprint() == before, where
            checked += 1
    assert checked > 50
