"""The role matrix (issue 14, proofs): every rule of the URL map x every method x anonymous and
each role, against one declared table of the least role per endpoint. Below the least role a
request gets the login page (anonymous) or a 403 and changes nothing; a new route fails this test
until it is declared here, so it is covered by itself."""

import pytest

from portal.api import tokens as api_tokens
from portal.auth.models import Role, User
from portal.extensions import db
from tests.conftest import PASSWORD
from tests.web.surface import fingerprint, requests_of

# The least role of each endpoint; None: open (the login form, static files, the API's OpenAPI
# description, the providers' webhooks, which prove themselves by their signature).
LEAST_ROLE = {
    "accounts.assign_gateway": "supervisor",
    "accounts.detail": "auditor",
    "accounts.index": "auditor",
    "api-docs.openapi_json": None,
    "api.cancel_invoice": "supervisor",
    "api.create_invoice": "supervisor",
    "api.get_invoice": "auditor",
    "api.get_payment": "auditor",
    "api.get_transaction": "auditor",
    "api.list_invoices": "auditor",
    "api.list_payments": "auditor",
    "api.list_transactions": "auditor",
    "api.save_account": "supervisor",
    "api.save_payment_method": "supervisor",
    "api.update_invoice": "supervisor",
    "audit.export": "auditor",
    "audit.index": "auditor",
    "auth.login": None,
    "auth.logout": "logged in",
    "dashboard.index": "auditor",
    "gateways.edit": "supervisor",
    "gateways.index": "auditor",
    "gateways.mapping": "auditor",
    "gateways.new": "supervisor",
    "gateways.review_unmapped": "supervisor",
    "gateways.test": "supervisor",
    "gateways.unmapped": "auditor",
    "imports.apply": "supervisor",
    "imports.detail": "supervisor",
    "imports.example": "auditor",
    "imports.index": "supervisor",
    "imports.progress": "supervisor",
    "imports.template": "auditor",
    "invoices.detail": "auditor",
    "invoices.export": "auditor",
    "invoices.index": "auditor",
    "invoices.release": "clerk",
    "invoices.reset_retries": "supervisor",
    "invoices.take": "clerk",
    "payments.allocate": "supervisor",
    "payments.detail": "auditor",
    "payments.export": "auditor",
    "payments.index": "auditor",
    "payments.ledger": "auditor",
    "payments.unallocate": "supervisor",
    "reconciliation.day": "clerk",
    "reconciliation.detail": "auditor",
    "reconciliation.export": "auditor",
    "reconciliation.index": "auditor",
    "reconciliation.run": "clerk",
    "runs.cancel": "supervisor",
    "runs.charge_not_attempted": "supervisor",
    "runs.detail": "auditor",
    "runs.index": "auditor",
    "runs.new": "supervisor",
    "runs.progress": "auditor",
    "settings.janitor_settings": "supervisor",
    "settings.policy": "auditor",
    "settings.retry_schedule": "supervisor",
    "settings.strict_mode": "supervisor",
    "static": None,
    "transactions.check_status": "clerk",
    "transactions.detail": "auditor",
    "transactions.export": "auditor",
    "transactions.index": "auditor",
    "transactions.manual_payment": "clerk",
    "transactions.correct_booking": "clerk",
    "transactions.refund_unlock": "clerk",
    "transactions.review": "auditor",
    "transactions.unlock_unsent": "clerk",
    "users.create_token": "admin",
    "users.detail": "admin",
    "users.end_sessions": "admin",
    "users.index": "admin",
    "users.own_password": "auditor",
    "users.reset_password": "admin",
    "users.revoke_token": "admin",
    "webhooks.handled": "clerk",
    "webhooks.index": "auditor",
    "webhooks.receive": None,
}
IDENTITIES = ["anonymous", *[r.value for r in Role]]


def test_the_table_declares_every_endpoint_and_matches_each_views_own_check(app):
    assert set(LEAST_ROLE) == {rule.endpoint for rule in app.url_map.iter_rules()}
    for endpoint, least in LEAST_ROLE.items():
        declared = getattr(app.view_functions[endpoint], "required_role", None)
        expected = least if least not in (None, "logged in") else None
        assert (declared.value if declared else None) == expected, endpoint


@pytest.fixture
def world(make_user, make_invoice, run_for, sandbox):
    """One record of each kind with id 1 (a locked charge, a paid invoice, a payment and its
    allocation, a run, a gateway, an account), a user of each role, and their API tokens."""
    users = {role.value: make_user(role.value) for role in Role}
    make_invoice(token="tok_review", amount="40.00")
    make_invoice(token="tok_approve", amount="25.00")
    run_for(actor=users["supervisor"])
    secrets = {
        role: api_tokens.create(db.session.get(User, u.id), f"{role} token", users["admin"])[1]
        for role, u in users.items()
    }
    db.session.commit()
    return users, secrets


def _allowed(identity: str, least) -> bool:
    if least is None:
        return True
    if identity == "anonymous":
        return False
    return least == "logged in" or Role(identity).includes(Role(least))


def test_no_one_below_an_endpoints_least_role_gets_a_2xx_or_changes_anything(app, world, client):
    users, secrets = world
    refused = 0
    for identity in IDENTITIES:
        client.post("/logout")
        if identity != "anonymous":
            response = client.post("/login", data={"username": identity, "password": PASSWORD})
            assert response.status_code == 302, identity
        for endpoint, method, path in requests_of(app):
            least = LEAST_ROLE[endpoint]
            if _allowed(identity, least):
                continue
            headers = {}
            if path.startswith("/api/") and identity != "anonymous":
                headers["Authorization"] = f"Bearer {secrets[identity]}"
            before = fingerprint()
            response = client.open(path, method=method, headers=headers, data={})
            where = (identity, method, path, response.status_code)
            assert not 200 <= response.status_code < 300, where
            if identity == "anonymous" and not path.startswith("/api/"):
                assert response.status_code == 302 and "/login" in response.headers["Location"], (
                    where
                )
            elif path.startswith("/api/"):
                assert response.status_code in (401, 403), where
            else:
                assert response.status_code == 403, where
            assert fingerprint() == before, where
            refused += 1
    assert refused > 150  # anonymous on every route, and each role on those above it
