"""Shared fixtures: an app on SQLite (or SETTLE_TEST_DATABASE_URL), the sandbox server, factories."""

from __future__ import annotations

import logging
import os
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import g
from sqlalchemy import create_engine, text
from sqlalchemy.orm import close_all_sessions
from werkzeug.serving import make_server

from portal.sandbox.server import SandboxServer, sandbox_credentials

IN_CI = os.environ.get("CI") == "true"
PASSWORD = "correct horse battery"

logging.getLogger("werkzeug").setLevel(logging.ERROR)


# Tests never leave the machine: pytest-socket (addopts in pyproject.toml) allows loopback only.


def _database_url(tmp_root) -> str:
    url = os.environ.get("SETTLE_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_root / 'settle-test.db'}"
    try:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    except Exception as exc:
        message = f"SETTLE_TEST_DATABASE_URL is set but PostgreSQL cannot be used: {exc}"
        if IN_CI:
            pytest.exit(message, returncode=1)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    tmp_root = tmp_path_factory.mktemp("settle")
    os.environ["SETTLE_INSTANCE_PATH"] = str(tmp_root / "instance")
    from flask_migrate import upgrade

    from portal import create_app

    application = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": _database_url(tmp_root),
            "WTF_CSRF_ENABLED": False,
            "SETTLE_JOBS": "inline",
            "SERVER_NAME": None,
            # The suite logs in thousands of times from one address; tests/web/test_login_throttle.py
            # lowers these to see the refusals.
            "SETTLE_LOGIN_LIMIT_ADDRESS": "100000 per minute",
            "SETTLE_LOGIN_LIMIT_USERNAME": "100000 per minute",
        }
    )

    @application.before_request
    def _each_request_loads_its_own_user():
        # pytest-flask keeps one app context for a whole test, and Flask-Login caches the user on
        # g: without this, one client's user would answer another client's request.
        g.pop("_login_user", None)

    with application.app_context():
        upgrade()  # the migrations build the schema, so every test also tests them
    return application


@pytest.fixture(autouse=True)
def _clean_database(request):
    yield
    if "app" not in request.fixturenames:
        return  # a unit test: no database was touched

    empty_database(request.getfixturevalue("app"))


def empty_database(app) -> None:
    """Every table emptied (after each test, and between the money model's examples)."""
    from portal.audit import chain
    from portal.extensions import db

    # The test's own session may still hold a transaction and its locks (a service that raised
    # after taking an invoice's lock): ended first, so that the sealer is not kept waiting.
    close_all_sessions()
    chain.wait_idle()  # the audit sealer's last batch, before its tables are emptied
    with app.app_context():
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxServer(hang_seconds=2.0, settle_after=3600).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    sandbox_server.ledger.reset()
    webhooks = sandbox_server.webhooks
    webhooks.forget()
    webhooks.delay, webhooks.twice, webhooks.disorder = 1.0, 0.0, 0.0
    return sandbox_server


@pytest.fixture
def portal_url(app):
    """The portal served on a loopback port (for a browser, or a sandbox's webhooks)."""
    from portal.web.security import QuietRequestHandler

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


# Factories ---------------------------------------------------------------------------------------


@pytest.fixture
def plugin_at_sandbox():
    """A ready plugin pointed at the sandbox server's path for its provider, with the test
    credentials the sandbox accepts (making it calls no network)."""
    from portal.gateways.base import GatewayConfig
    from portal.gateways.registry import plugin
    from portal.sandbox.server import mount_path

    def make(name: str, base_url: str = "http://127.0.0.1:5081"):
        return plugin(name, GatewayConfig(base_url + mount_path(name), sandbox_credentials(name)))

    return make


@pytest.fixture
def make_user(app):
    from portal.auth.models import Role
    from portal.auth.service import create_user
    from portal.extensions import db

    def make(role: str = "clerk", username: str | None = None):
        user = create_user(username or role, PASSWORD, Role(role))
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_gateway(app, sandbox):
    from portal.extensions import db
    from portal.gateways.models import Gateway

    def make(name="Sandbox", url=None, timeout="0.5", credentials=None):
        gateway = Gateway(
            name=name,
            plugin="sandbox",
            base_url=url or sandbox.url,
            credentials=credentials if credentials is not None else sandbox_credentials("sandbox"),
            timeout_seconds=Decimal(timeout),
        )
        db.session.add(gateway)
        db.session.commit()
        return gateway

    return make


@pytest.fixture
def stripe_gateway(app, sandbox):
    """A Stripe gateway at the sandbox's Stripe emulation, with its test credentials (the
    webhook signing secret among them)."""
    from portal.extensions import db
    from portal.gateways.models import Gateway

    gateway = Gateway(name="Stripe", plugin="stripe", base_url=sandbox.url_for("stripe"),
                      credentials=sandbox_credentials("stripe"), timeout_seconds=Decimal("0.5"))  # fmt: skip
    db.session.add(gateway)
    db.session.commit()
    return gateway


@pytest.fixture
def adyen_gateway(app, sandbox):
    """An Adyen gateway at the sandbox's Adyen emulation, with its test credentials (the HMAC
    key and the webhook's basic auth among them)."""
    from portal.extensions import db
    from portal.gateways.models import Gateway

    gateway = Gateway(name="Adyen", plugin="adyen", base_url=sandbox.url_for("adyen"),
                      credentials=sandbox_credentials("adyen"), timeout_seconds=Decimal("0.5"))  # fmt: skip
    db.session.add(gateway)
    db.session.commit()
    return gateway


@pytest.fixture
def make_invoice(app, make_gateway):
    from portal.accounts.models import Account, PaymentMethod
    from portal.extensions import db
    from portal.invoices.models import Invoice

    counter = {"n": 0}
    default_gateway = {}

    def make(token="tok_approve", amount="100.00", currency="USD", due_days=-1, gateway=None,
             posted=True, method_state="Active"):  # fmt: skip
        counter["n"] += 1
        n = counter["n"]
        if gateway is None:
            if "g" not in default_gateway:
                default_gateway["g"] = make_gateway()
            gateway = default_gateway["g"]
        account = Account(number=f"ACC-{n:04d}", name=f"Customer {n}")
        db.session.add(account)
        db.session.flush()
        db.session.add(
            PaymentMethod(account_id=account.id, gateway_id=gateway.id, token=token, brand="Visa",
                          last4="4242", exp_month=12, exp_year=2030, state=method_state)
        )  # fmt: skip
        invoice = Invoice(
            number=f"INV-{n:04d}",
            account_id=account.id,
            currency=currency,
            total=Decimal(amount),
            balance=Decimal(amount),
            due_date=date.today() + timedelta(days=due_days),
            posted=posted,
        )
        db.session.add(invoice)
        db.session.commit()
        return invoice

    return make


@pytest.fixture
def login(client):
    def do(user):
        response = client.post("/login", data={"username": user.username, "password": PASSWORD})
        assert response.status_code == 302, response.data
        return client

    return do


@pytest.fixture
def run_for(app):
    """Start and execute a run over everything due today, as a supervisor would."""
    from portal.extensions import db
    from portal.runs.engine import execute_run
    from portal.runs.service import start_run

    def do(actor=None, **filters):
        run = start_run(due_on=filters.pop("due_on", date.today()), actor=actor, **filters)
        db.session.commit()
        execute_run(run.id)
        db.session.expire_all()
        return db.session.get(type(run), run.id)

    return do
