"""Secrets (issue 14, proofs): after a run through every provider, the clerks' follow-ups (gateway
checks, Refund & Unlock) and a look at every page, no secret credential value appears in any
table but the sealed credentials column, in any page, or in any log line; stored raw requests and
answers are tables too."""

import logging

import pytest
from sqlalchemy import select, text

from portal.demo import TOKEN_FORMAT
from portal.extensions import db
from portal.gateways import registry
from portal.gateways.models import Gateway
from portal.sandbox.server import sandbox_credentials
from portal.transactions import finalize
from portal.transactions.models import Operation, PaymentTransaction
from tests.conftest import PASSWORD
from tests.web.surface import requests_of

pytestmark = pytest.mark.integration

TOKENS = ["tok_approve", "tok_decline", "tok_review", "tok_hang", "tok_misconfigured"]
# Identifiers, not secrets: a merchant's or login's name, which providers put in URLs and answers.
PUBLIC = {"api_login_id", "merchant_id", "public_key", "merchant_account", "partner", "vendor",
          "user", "webhook_username", "report_username"}  # fmt: skip


def secrets_of(names) -> dict[str, str]:
    found = {}
    for name in names:
        for key, value in sandbox_credentials(name).items():
            if key not in PUBLIC:
                found[value] = f"{name}.{key}"
    return found


def leaks(text_: str, secrets: dict[str, str]) -> list[str]:
    return [where for value, where in secrets.items() if value in text_]


def test_no_secret_leaves_the_sealed_column(app, client, make_invoice, make_user, run_for,
                                             sandbox, caplog):  # fmt: skip
    caplog.set_level(logging.DEBUG)
    providers = registry.names()
    secrets = secrets_of(providers)
    for name in providers:
        gateway = Gateway(name=f"{name} account", plugin=name, base_url=sandbox.url_for(name),
                          credentials=sandbox_credentials(name), timeout_seconds=5)  # fmt: skip
        db.session.add(gateway)
        db.session.commit()
        for token in TOKENS:
            make_invoice(token=TOKEN_FORMAT.get(name, "{}").format(token), gateway=gateway)
    clerk = make_user("clerk")
    for role in ("admin", "supervisor", "auditor"):
        make_user(role)
    run_for()
    charges = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.operation == Operation.CHARGE)
    ).all()
    for charge in charges:
        if charge.locked_invoice and charge.finalized_at is None:
            if not registry.plugin_class(charge.gateway.plugin).lookup_moves_money:
                finalize.check_gateway_status(charge.id, clerk)
            finalize.refund_and_unlock(charge.id, clerk)
    db.session.commit()

    for table_name, table in sorted(db.metadata.tables.items()):
        columns = [
            c.name for c in table.columns if (table_name, c.name) != ("gateways", "credentials")
        ]
        rows = db.session.execute(text(f'SELECT {", ".join(columns)} FROM "{table_name}"')).all()
        assert leaks(repr(rows), secrets) == [], table_name

    client.post("/login", data={"username": "admin", "password": PASSWORD})
    bodies = []
    for value in ("1", "2", "3", "5", "8", "13", "21", "34"):
        for endpoint, method, path in requests_of(app, value):
            if method == "GET" and endpoint not in ("auth.logout", "static"):
                bodies.append((path, client.get(path).get_data(as_text=True)))
    assert len(bodies) > 300
    for path, body in bodies:
        assert leaks(body, secrets) == [], path
    assert leaks(caplog.text, secrets) == []
