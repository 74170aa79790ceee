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
