"""Escaping (issue 14, proofs): a payload planted in every text column a user or a gateway can
set, then every page, fragment, JSON answer, export and printable review crawled as an admin:
the payload never comes back as markup."""

import pytest
from sqlalchemy import String, Text, select, text

from portal.api import tokens as api_tokens
from portal.audit import service as audit
from portal.auth.models import User
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.reconciliation import service as reconciliation
from portal.runs.models import PaymentRun
from portal.transactions import finalize
from portal.transactions.models import PaymentTransaction
from portal.webhooks.models import Outcome, WebhookEvent
from tests.conftest import PASSWORD
from tests.web.surface import requests_of

pytestmark = pytest.mark.integration

MARKUP = "<x-pwn>"
PAYLOAD = "\"'><x-pwn>&"
# Every text column a user (a form, an import, the API) or a gateway (its answers, webhooks,
# listings) can set; the rest are Settle's own words (states, statuses, keys, hashes).
PLANTED = {
    "accounts": ["number", "name", "external_id"],
    "allocations": ["unallocation_reason"],
    "api_tokens": ["name"],
    "gateways": ["name", "webhook_refused_reason"],
    "invoices": ["number", "external_id"],
    "payment_methods": ["external_id", "brand"],
    "payment_runs": ["dispatch_error", "error"],
    "payment_transactions": ["provider_code", "provider_message", "provider_reference",
                             "guidance", "reason"],
    "payments": ["reference"],
    "reconciliation_lines": ["order_id", "gateway_reference", "advice"],
    "run_skips": ["reason"],
    "unmapped_reviews": ["code", "note"],
    "user_sessions": ["address", "user_agent"],
    "users": ["display_name"],
    "webhook_events": ["event_id", "event_type", "reference", "order_id", "code", "message",
                       "note", "handled_note"],
}  # fmt: skip


def plant():
    for table_name, columns in PLANTED.items():
        table = db.metadata.tables[table_name]
        for name in columns:
            column = table.columns[name]
            assert isinstance(column.type, (String, Text)), (table_name, name)
            length = getattr(column.type, "length", None) or 200
            value = (PAYLOAD * 4)[:length] if length >= len(PAYLOAD) else None
            if value is None:
                continue
            # Unique columns get the payload and the row's id.
            db.session.execute(
                text(f'UPDATE "{table_name}" SET "{name}" = :v || CAST(id AS VARCHAR)'),
                {"v": value[: length - 6]},
            )
    # Audit events are append-only (a trigger on PostgreSQL): new ones carry the payload, as a
    # clerk's note and a changed value would.
    for model in (Invoice, PaymentTransaction, User, Payment):
        for record in db.session.scalars(select(model)).all():
            audit.record("transaction.finalized", record, note=PAYLOAD,
                         before={"note": "x"}, after={"note": PAYLOAD, "name": PAYLOAD})  # fmt: skip
    db.session.commit()


def test_no_payload_comes_back_as_markup(app, client, make_user, make_invoice, run_for, sandbox):
    supervisor, clerk, admin = make_user("supervisor"), make_user("clerk"), make_user("admin")
    for token in ("tok_review", "tok_approve", "tok_decline", "tok_unknown"):
        make_invoice(token=token)
    run_for(actor=supervisor)
    held = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.status == "Requires Review")
    )
    finalize.check_gateway_status(held.id, clerk)
    reconciliation.reconcile(clerk, run=db.session.get(PaymentRun, 1))
    api_tokens.create(db.session.get(User, admin.id), "billing", admin)
    db.session.add(WebhookEvent(gateway_id=1, event_id="evt_1", event_type="charge.succeeded",
                                outcome=Outcome.FOR_A_CLERK.value, note="n", message="m"))  # fmt: skip
    db.session.commit()
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    plant()
    crawled, shown = 0, 0
    for value in ("1", "2", "3", "4"):
        for endpoint, method, path in requests_of(app, value):
            if method != "GET" or endpoint in ("auth.logout", "static", "auth.login"):
                continue
            response = client.get(path)
            body = response.get_data(as_text=True)
            kind = response.headers.get("Content-Type", "")
            where = (path, response.status_code, kind)
            assert response.status_code < 500, where
            if "text/html" in kind:
                assert MARKUP not in body, (
                    *where,
                    body[body.find(MARKUP) - 200 : body.find(MARKUP) + 50],
                )
                crawled += 1
                shown += "&lt;x-pwn&gt;" in body
            else:
                assert kind.startswith(("application/json", "text/csv")), where
    assert crawled > 80
    assert shown > 40, f"the payload reached only {shown} of {crawled} pages"
