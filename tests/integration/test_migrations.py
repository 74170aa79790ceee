"""Migrations: the models match them, and an upgrade keeps the data that is already there."""

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from portal import create_app
from portal.extensions import db


def test_the_models_match_the_migrations(app):
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []


def test_the_strict_mode_migration_keeps_existing_transactions(tmp_path):
    path = tmp_path / "old.db"
    other = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "TESTING": True})
    with other.app_context():
        upgrade(revision="36cf69b0fd93")
        raw = sqlite3.connect(path)
        raw.executescript(
            """
            INSERT INTO accounts (id, number, name, created_at) VALUES (1, 'A', 'A', '2026-01-01');
            INSERT INTO gateways (id, name, plugin, credentials, base_url, timeout_seconds, enabled,
                                  created_at) VALUES (1, 'G', 'sandbox', '{}', 'http://x', 5, 1, '2026-01-01');
            INSERT INTO invoices (id, number, account_id, currency, total, balance, due_date, posted,
                                  created_at) VALUES (1, 'I', 1, 'USD', 10, 10, '2026-01-01', 1, '2026-01-01');
            INSERT INTO payment_transactions (id, operation, invoice_id, gateway_id, amount, currency,
                idempotency_key, status, unmapped, requested_at)
                VALUES (1, 'charge', 1, 1, 10, 'USD', 'k1', 'Indeterminate', 0, '2026-01-01'),
                       (2, 'charge', 1, 1, 10, 'USD', 'k2', 'Decline', 0, '2026-01-01');
            INSERT INTO payments (id, account_id, amount, currency, method, received_on, transaction_id,
                created_at) VALUES (1, 1, 10, 'USD', 'Gateway', '2026-01-01', 2, '2026-01-01');
            """
        )
        raw.commit()
        upgrade()
        rows = raw.execute(
            "SELECT id, locked_invoice FROM payment_transactions ORDER BY id"
        ).fetchall()
        assert rows == [(1, 1), (2, 0)]
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        downgrade(revision="36cf69b0fd93")
        raw.close()
        db.session.remove()


def _scratch_databases(tmp_path):
    """A fresh SQLite file, and a fresh PostgreSQL database where the suite runs on PostgreSQL."""
    import os

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    yield f"sqlite:///{tmp_path / 'json.db'}"
    url = os.environ.get("SETTLE_TEST_DATABASE_URL")
    if url:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text("DROP DATABASE IF EXISTS settle_migration_check"))
            c.execute(text("CREATE DATABASE settle_migration_check"))
        try:
            yield make_url(url).set(database="settle_migration_check").render_as_string(False)
        finally:
            with admin.connect() as c:
                c.execute(text("DROP DATABASE IF EXISTS settle_migration_check WITH (FORCE)"))
            admin.dispose()


OLD_ROWS = [
    "INSERT INTO accounts (id, number, name, created_at) VALUES (1, 'A', 'A', '2026-01-01')",
    "INSERT INTO gateways (id, name, plugin, credentials, base_url, timeout_seconds, enabled,"
    " created_at) VALUES (1, 'G', 'sandbox', '{\"api_key\": \"k\"}', 'http://x', 5, true,"
    " '2026-01-01')",
    "INSERT INTO invoices (id, number, account_id, currency, total, balance, due_date, posted,"
    " created_at) VALUES (1, 'I', 1, 'USD', 10, 10, '2026-01-01', true, '2026-01-01')",
    "INSERT INTO payment_transactions (id, operation, invoice_id, gateway_id, amount, currency,"
    " idempotency_key, status, unmapped, requested_at, raw_request, raw_response,"
    " locked_invoice, janitor_checks) VALUES (1, 'charge', 1, 1, 10, 'USD', 'k1', 'Success',"
    ' false, \'2026-01-01\', \'{"method": "POST", "body": "x=1"}\', NULL, false, 0)',
    "INSERT INTO settings (id, key, value, updated_at)"
    " VALUES (1, 'janitor_schedule_minutes', '[1, 5, 30]', '2026-01-01')",
    "INSERT INTO audit_events (id, at, action, entity_type, entity_id, before, after)"
    " VALUES (1, '2026-01-01', 'x', 'invoice', 1, NULL, '{\"amount\": \"10.00\"}')",
]


def test_the_json_migration_keeps_every_value_written_as_text(tmp_path):
    from sqlalchemy import text

    from portal.audit.models import AuditEvent
    from portal.gateways.models import Gateway
    from portal.settings.models import Setting
    from portal.transactions.models import PaymentTransaction

    for url in _scratch_databases(tmp_path):
        other = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
        with other.app_context():
            upgrade(revision="d1e2f3a4b5c6")
            for statement in OLD_ROWS:
                db.session.execute(text(statement))
            db.session.commit()
            upgrade()
            txn = db.session.get(PaymentTransaction, 1)
            assert txn.raw_request == {"body": "x=1", "method": "POST"}
            assert txn.raw_response is None
            assert db.session.get(Gateway, 1).credentials == {"api_key": "k"}
            assert db.session.get(Setting, 1).value == [1, 5, 30]
            event = db.session.get(AuditEvent, 1)
            assert (event.before, event.after) == (None, {"amount": "10.00"})
            # Nothing stored stays SQL NULL, never the JSON null.
            nulls = "SELECT count(*) FROM payment_transactions WHERE raw_response IS NULL"
            assert db.session.scalar(text(nulls)) == 1
            txn.raw_response = None
            txn.findings = None
            db.session.commit()
            assert db.session.scalar(text(nulls.replace("raw_response", "findings"))) == 1
            db.session.remove()
            downgrade(revision="d1e2f3a4b5c6")
            db.session.remove()
            db.engine.dispose()
