"""The JSON API as the billing system uses it: tokens made on the user's page, role limits,
invoices in (with the import's rules), reads cursor-paginated, Idempotency-Key on every POST, JSON
errors with the field and the reason, and an OpenAPI description that matches the routes."""

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from portal.accounts.models import PaymentMethod
from portal.api.models import ApiRequest, ApiToken
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.invoices.models import Invoice

DUE = (date.today() - timedelta(days=1)).isoformat()


def csrf(client, path):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


@pytest.fixture
def token_for(client, login, make_user):
    """A token made as an admin would, on the user's page; returns the secret shown once."""
    admin = make_user("admin")

    def make(role):
        user = make_user(role)
        login(admin)
        path = f"/users/{user.id}"
        response = client.post(f"{path}/api-tokens",
                               data={"csrf_token": csrf(client, path), "name": "billing"})  # fmt: skip
        assert response.status_code == 201
        secret = re.search(r'<code class="secret">([^<]+)</code>', response.get_data(as_text=True))
        client.post("/logout")
        return user, secret.group(1)

    return make


class Api:
    def __init__(self, client, secret):
        self.client, self.secret, self.n = client, secret, 0

    def headers(self, key=None):
        headers = {"Authorization": f"Bearer {self.secret}"}
        if key is not False:
            self.n += 1
            headers["Idempotency-Key"] = key or f"key-{self.n}"
        return headers

    def get(self, path, **kw):
        return self.client.get(f"/api/v1{path}", headers=self.headers(False), **kw)

    def post(self, path, json=None, key=None):
        return self.client.post(f"/api/v1{path}", json=json, headers=self.headers(key))

    def patch(self, path, json):
        return self.client.patch(f"/api/v1{path}", json=json, headers=self.headers(False))


@pytest.fixture
def supervisor_api(client, token_for, make_gateway):
    make_gateway(name="Sandbox")
    _, secret = token_for("supervisor")
    api = Api(client, secret)
    assert api.post("/accounts", {"external_id": "CRM-1", "number": "A-1",
                                  "name": "Adatum"}).status_code == 200  # fmt: skip
    assert api.post("/payment-methods", {
        "external_id": "PM-1", "account_external_id": "CRM-1", "gateway": "Sandbox",
        "token": "tok_approve", "brand": "Visa", "last4": "4242"}).status_code == 200  # fmt: skip
    return api


def invoice_body(**over):
    return {"external_id": "INV-EXT-1", "account_external_id": "CRM-1", "number": "INV-1",
            "currency": "USD", "total": "120.50", "due_date": DUE, **over}  # fmt: skip


def test_a_token_is_shown_once_stored_hashed_and_revocable(client, login, token_for, make_user):
    user, secret = token_for("auditor")
    assert secret.startswith("settle_") and len(secret) > 40
    stored = db.session.scalar(select(ApiToken))
    assert secret not in (stored.sha256, stored.prefix) and stored.sha256 != secret
    assert Api(client, secret).get("/invoices").status_code == 200
    admin = db.session.scalar(select(type(user)).where(type(user).role == "admin"))
    login(admin)
    page = client.get(f"/users/{user.id}").get_data(as_text=True)
    assert secret not in page and stored.prefix in page
    client.post(f"/users/{user.id}/api-tokens/{stored.id}/revoke",
                data={"csrf_token": csrf(client, f"/users/{user.id}")})  # fmt: skip
    response = Api(client, secret).get("/invoices")
    assert response.status_code == 401 and "API token" in response.json["message"]
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"api_token.created", "api_token.revoked"} <= actions
    assert "revoked an API token of the user" in client.get(f"/users/{user.id}").get_data(
        as_text=True
    )


def test_only_an_admin_makes_tokens(client, login, make_user):
    supervisor = make_user("supervisor")
    login(supervisor)
    response = client.post(f"/users/{supervisor.id}/api-tokens", data={"name": "mine"})
    assert response.status_code in (400, 403)
    assert db.session.scalar(select(func.count(ApiToken.id))) == 0


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic dXNlcjpwYXNz",
                                    "Bearer settle_notatokenatall"])  # fmt: skip
def test_no_live_token_no_answer(client, header):
    response = client.get("/api/v1/invoices", headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and response.is_json


def test_a_deactivated_users_token_stops_working(client, token_for):
    user, secret = token_for("supervisor")
    user.active = False
    db.session.commit()
    assert Api(client, secret).get("/invoices").status_code == 401


def test_the_role_is_the_tokens_limit(client, token_for, supervisor_api):
    _, secret = token_for("auditor")
    auditor = Api(client, secret)
    assert auditor.get("/invoices").status_code == 200
    response = auditor.post("/invoices", invoice_body())
    assert response.status_code == 403 and "supervisor" in response.json["message"]
    assert db.session.scalar(select(func.count(Invoice.id))) == 0


def test_create_read_update_and_cancel_an_invoice(supervisor_api, run_for):
    api = supervisor_api
    created = api.post("/invoices", invoice_body())
    assert created.status_code == 201, created.json
    body = created.json
    assert (body["total"], body["balance"], body["currency"], body["state"]) == (
        "120.50", "120.50", "USD", "Open")  # fmt: skip
    assert body["account_external_id"] == "CRM-1" and body["created_at"].endswith("Z")
    assert api.get(f"/invoices/{body['id']}").json == body
    changed = api.patch(f"/invoices/{body['id']}", {"due_date": date.today().isoformat()})
    assert changed.status_code == 200 and changed.json["due_date"] == date.today().isoformat()
    cancelled = api.post(f"/invoices/{body['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json["state"] == "Cancelled"
    run = run_for()
    assert run.selected_count == 0  # a run never charges a cancelled invoice
    assert api.patch(f"/invoices/{body['id']}", {"total": "1.00"}).status_code == 409
    actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert {"invoice.created_by_api", "invoice.updated_by_api", "invoice.cancelled"} <= set(actions)


def test_an_invoice_charged_cannot_change_its_amount_nor_be_cancelled_once_paid(supervisor_api,
                                                                                run_for):  # fmt: skip
    api = supervisor_api
    invoice_id = api.post("/invoices", invoice_body()).json["id"]
    run_for()
    response = api.patch(f"/invoices/{invoice_id}", {"total": "99.00"})
    assert response.status_code == 422
    assert "charged or paid already" in response.json["errors"]["json"]["total"][0]
    refused = api.post(f"/invoices/{invoice_id}/cancel")
    assert refused.status_code == 409 and "unallocates" in refused.json["message"]
    assert api.get(f"/invoices/{invoice_id}").json["state"] == "Paid"


@pytest.mark.parametrize(
    "change, field, reason",
    [({"total": "12,50"}, "total", "plain decimal"),
     ({"due_date": "31/12/2026"}, "due_date", "date"),
     ({"currency": "XXQ"}, "currency", "currency"),
     ({"colour": "red"}, "colour", "Unknown field"),
     ({"account_external_id": "CRM-404"}, "account_external_id", "neither in Settle")],
)  # fmt: skip
def test_bad_input_is_json_with_the_field_and_the_reason(supervisor_api, change, field, reason):
    response = supervisor_api.post("/invoices", invoice_body(**change))
    assert response.status_code == 422, response.json
    errors = response.json["errors"]["json"]
    assert reason in " ".join(errors[field])
    assert db.session.scalar(select(func.count(Invoice.id))) == 0
    assert db.session.scalar(select(func.count(ApiRequest.id))) == 2  # the two setup calls only


def test_a_missing_field_is_named(supervisor_api):
    body = invoice_body()
    del body["due_date"]
    response = supervisor_api.post("/invoices", body)
    assert response.status_code == 422 and "due_date" in response.json["errors"]["json"]


def test_a_card_number_is_refused_and_not_stored(supervisor_api):
    response = supervisor_api.post("/payment-methods", {
        "external_id": "PM-2", "account_external_id": "CRM-1", "gateway": "Sandbox",
        "token": "4111 1111 1111 1111", "brand": "Visa", "last4": "1111"})  # fmt: skip
    assert (
        response.status_code == 422 and "card number" in response.json["errors"]["json"]["token"][0]
    )
    assert db.session.scalar(select(func.count(PaymentMethod.id))) == 1


def test_every_post_needs_an_idempotency_key_and_a_repeat_changes_nothing(supervisor_api):
    api = supervisor_api
    missing = api.client.post("/api/v1/invoices", json=invoice_body(),
                              headers={"Authorization": f"Bearer {api.secret}"})  # fmt: skip
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json["errors"]["headers"]
    first = api.post("/invoices", invoice_body(), key="same")
    again = api.post("/invoices", invoice_body(), key="same")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(select(func.count(Invoice.id))) == 1
    other = api.post("/invoices", invoice_body(number="INV-2", external_id="X-2"), key="same")
    assert other.status_code == 422 and "different request" in other.json["message"]
    # Without the key, the same invoice again is a conflict, not a second invoice.
    assert api.post("/invoices", invoice_body()).status_code == 409
    assert db.session.scalar(select(func.count(Invoice.id))) == 1


def test_a_repeat_while_the_first_is_running_is_told_to_wait(supervisor_api):
    api = supervisor_api
    user_id = db.session.scalar(select(ApiToken.user_id))
    db.session.add(ApiRequest(user_id=user_id, key="running", fingerprint="x"))
    db.session.commit()
    # A different fingerprint is refused; the same one (still running) is told to wait.
    assert api.post("/invoices", invoice_body(), key="running").status_code == 422
    claim = db.session.scalar(select(ApiRequest).where(ApiRequest.key == "running"))
    from portal.api import idempotency

    with api.client.application.test_request_context(
        "/api/v1/invoices", method="POST", json=invoice_body()
    ):
        claim.fingerprint = idempotency._fingerprint()
    db.session.commit()
    response = api.post("/invoices", invoice_body(), key="running")
    assert response.status_code == 409 and "running" in response.json["message"]
    assert db.session.scalar(select(func.count(Invoice.id))) == 0


def test_lists_are_cursor_paginated(supervisor_api):
    api = supervisor_api
    for n in range(5):
        api.post("/invoices", invoice_body(external_id=f"E-{n}", number=f"N-{n}"))
    seen, cursor, pages = [], None, 0
    while True:
        response = api.get(
            "/invoices", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200
        seen += [i["number"] for i in response.json["data"]]
        cursor, pages = response.json["next_cursor"], pages + 1
        if not cursor:
            break
    assert seen == [f"N-{n}" for n in range(5)] and pages == 3
    assert api.get("/invoices", query_string={"cursor": "garbage!"}).status_code == 422
    assert api.get("/invoices", query_string={"limit": 0}).status_code == 422
    only = api.get("/invoices", query_string={"external_id": "E-3"}).json["data"]
    assert [i["number"] for i in only] == ["N-3"]


def test_transactions_and_payments_are_read_after_a_run(supervisor_api, run_for):
    api = supervisor_api
    api.post("/invoices", invoice_body())
    run_for()
    (txn,) = api.get("/transactions").json["data"]
    assert (txn["status"], txn["amount"], txn["currency"], txn["operation"]) == (
        "Success", "120.50", "USD", "charge")  # fmt: skip
    assert api.get(f"/transactions/{txn['id']}").json == txn
    (payment,) = api.get("/payments").json["data"]
    assert payment["transaction_id"] == txn["id"]
    assert payment["allocations"][0]["amount"] == "120.50"
    assert api.get("/payments/999999").status_code == 404
    assert api.get(f"/invoices/{2**64}").status_code == 404  # past the database's integers


def test_the_openapi_description_is_true_to_the_routes_and_the_answers(app, supervisor_api,
                                                                       run_for):  # fmt: skip
    spec = supervisor_api.client.get("/api/v1/openapi.json").json
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops
                  if method in ("get", "post", "patch", "put", "delete")}  # fmt: skip
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "post":
                names = [p["name"] for p in op.get("parameters", [])]
                assert "Idempotency-Key" in names, path
    # Each answer has exactly the fields its schema describes.
    api = supervisor_api
    invoice = api.post("/invoices", invoice_body()).json
    run_for()
    schemas = spec["components"]["schemas"]
    for name, body in [("Invoice", invoice), ("Transaction", api.get("/transactions").json["data"][0]),
                       ("Payment", api.get("/payments").json["data"][0]),
                       ("InvoicePage", api.get("/invoices").json)]:  # fmt: skip
        assert set(body) == set(schemas[name]["properties"]), name


def test_a_token_is_revoked_only_on_its_own_users_page(client, login, token_for, make_user):
    user, secret = token_for("auditor")
    other = make_user("clerk", "someone-else")
    admin = db.session.scalar(select(type(user)).where(type(user).role == "admin"))
    login(admin)
    token = db.session.scalar(select(ApiToken))
    response = client.post(f"/users/{other.id}/api-tokens/{token.id}/revoke",
                           data={"csrf_token": csrf(client, f"/users/{other.id}")})  # fmt: skip
    assert response.status_code == 404
    assert Api(client, secret).get("/invoices").status_code == 200
