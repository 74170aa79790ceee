"""What the sandbox gateway has charged, kept in SQLite so that lookups, voids and refunds work."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    order_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    code TEXT NOT NULL,
    approved INTEGER NOT NULL,
    created REAL NOT NULL,
    force_settled INTEGER NOT NULL DEFAULT 0,
    voided INTEGER NOT NULL DEFAULT 0,
    refunded TEXT
);
CREATE INDEX IF NOT EXISTS charges_order ON charges (provider, order_id);
CREATE INDEX IF NOT EXISTS charges_key ON charges (provider, idempotency_key);
-- Each refund of a charge, for the emulations whose provider keeps a refund as a transaction of its
-- own (charges.refunded holds their sum). A refund settles as a charge does: after settle_after,
-- or when the sandbox's batch closes.
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    charge_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    created REAL NOT NULL,
    force_settled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refunds_charge ON refunds (provider, charge_id);
CREATE TABLE IF NOT EXISTS replies (
    provider TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    operation TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (provider, idempotency_key, operation)
);
"""


class Ledger:
    def __init__(self, path: str = ":memory:", settle_after: float = 120.0):
        self.settle_after = settle_after
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # A test double's ledger: kept when Settle's process dies, which is what the crash tests
        # need, without waiting for the disk on every charge (the sandbox must never be the
        # bottleneck of a benchmark).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(SCHEMA)

    @contextmanager
    def _tx(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # Idempotency: the first answer to a key is the answer to every repeat of it.
    def reply_for(self, provider: str, key: str, operation: str) -> tuple[int, str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT http_status, body FROM replies"
                " WHERE provider = ? AND idempotency_key = ? AND operation = ?",
                (provider, key, operation),
            ).fetchone()
        return (row["http_status"], row["body"]) if row else None

    def keep_reply(self, provider: str, key: str, operation: str, http_status: int, body) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO replies VALUES (?, ?, ?, ?, ?)",
                (provider, key, operation, http_status, text),
            )

    def add_charge(
        self, provider, key, order_id, amount: Decimal, currency, code, approved, charge_id=None
    ) -> dict:
        """Keep a charge; an emulation may give its provider's own id format (else ch_...)."""
        charge_id = charge_id or "ch_" + uuid.uuid4().hex[:20]
        with self._tx() as db:
            db.execute(
                "INSERT INTO charges (id, provider, idempotency_key, order_id, amount, currency,"
                " code, approved, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (charge_id, provider, key, order_id, str(amount), currency, code, int(approved),
                 time.time()),
            )  # fmt: skip
        return self.charge(provider, charge_id)

    def charge(self, provider: str, charge_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM charges WHERE provider = ? AND id = ?", (provider, charge_id)
            ).fetchone()
        return self._view(row) if row else None

    def find(self, provider: str, *, key: str | None = None, order_id: str | None = None) -> list:
        column, value = ("idempotency_key", key) if key else ("order_id", order_id)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM charges WHERE provider = ? AND {column} = ? ORDER BY created",
                (provider, value),
            ).fetchall()
        return [self._view(r) for r in rows]

    def listed(self, provider: str, since: float, until: float, after: str | None, limit: int):
        """Charges created in [since, until), oldest first, a page after the charge `after`."""
        start = (since, "")
        with self._lock:
            if after:
                row = self._db.execute(
                    "SELECT created, id FROM charges WHERE provider = ? AND id = ?",
                    (provider, after),
                ).fetchone()
                if row:
                    start = (row["created"], row["id"])
            rows = self._db.execute(
                "SELECT * FROM charges WHERE provider = ? AND created < ?"
                " AND (created > ? OR (created = ? AND id > ?)) ORDER BY created, id LIMIT ?",
                (provider, until, start[0], start[0], start[1], limit),
            ).fetchall()
        return [self._view(r) for r in rows]

    def forget(self, charge_id: str) -> int:
        """Lose a charge, as if the gateway never kept it (for reconciliation demos and tests)."""
        with self._tx() as db:
            db.execute("DELETE FROM refunds WHERE charge_id = ?", (charge_id,))
            return db.execute("DELETE FROM charges WHERE id = ?", (charge_id,)).rowcount

    def all(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM charges ORDER BY created").fetchall()
        return [self._view(r) for r in rows]

    def void(self, provider: str, charge_id: str) -> dict:
        with self._tx() as db:
            db.execute(
                "UPDATE charges SET voided = 1 WHERE provider = ? AND id = ?", (provider, charge_id)
            )
        return self.charge(provider, charge_id)

    def recode(self, provider: str, charge_id: str, code: str) -> None:
        """The provider's code of a charge changes (an ACH sale's settlement arrives)."""
        with self._tx() as db:
            db.execute(
                "UPDATE charges SET code = ? WHERE provider = ? AND id = ?",
                (code, provider, charge_id),
            )

    def refund(self, provider: str, charge_id: str, amount: Decimal) -> dict:
        """Set what the charge has given back in all (an emulation that keeps no refund of its
        own); add_refund keeps each refund as its own transaction."""
        with self._tx() as db:
            db.execute(
                "UPDATE charges SET refunded = ? WHERE provider = ? AND id = ?",
                (str(amount), provider, charge_id),
            )
        return self.charge(provider, charge_id)

    def add_refund(
        self, provider: str, charge_id: str, amount: Decimal, refund_id: str | None = None
    ) -> dict:
        """Keep one refund of a charge (partial ones add up); an emulation may give its
        provider's own id format (else re_...). The charge's `refunded` becomes their sum."""
        refund_id = refund_id or "re_" + uuid.uuid4().hex[:20]
        with self._tx() as db:
            db.execute(
                "INSERT INTO refunds (id, provider, charge_id, amount, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (refund_id, provider, charge_id, str(amount), time.time()),
            )
            amounts = db.execute(
                "SELECT amount FROM refunds WHERE provider = ? AND charge_id = ?",
                (provider, charge_id),
            ).fetchall()
            total = sum((Decimal(r["amount"]) for r in amounts), Decimal(0))
            db.execute(
                "UPDATE charges SET refunded = ? WHERE provider = ? AND id = ?",
                (str(total), provider, charge_id),
            )
        return next(r for r in self.refunds(provider, charge_id) if r["id"] == refund_id)

    def refunds(self, provider: str, charge_id: str | None = None) -> list[dict]:
        """The refunds add_refund kept, of one charge or of all the provider's, oldest first."""
        query, args = "SELECT * FROM refunds WHERE provider = ?", [provider]
        if charge_id is not None:
            query, args = query + " AND charge_id = ?", [*args, charge_id]
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created, id", args).fetchall()
        return [self._refund_view(r) for r in rows]

    def settle(self, charge_id: str | None = None) -> int:
        """Settle one charge (or one refund, by its id), or every approved charge and every
        refund, now (the sandbox's batch close). Counts the charges (or the refund) settled."""
        with self._tx() as db:
            if charge_id:
                refunds = db.execute(
                    "UPDATE refunds SET force_settled = 1 WHERE id = ?", (charge_id,)
                ).rowcount
                cur = db.execute("UPDATE charges SET force_settled = 1 WHERE id = ?", (charge_id,))
                return cur.rowcount + refunds
            db.execute("UPDATE refunds SET force_settled = 1")
            cur = db.execute("UPDATE charges SET force_settled = 1 WHERE approved = 1")
        return cur.rowcount

    def reset(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM charges")
            db.execute("DELETE FROM refunds")
            db.execute("DELETE FROM replies")

    def _view(self, row: sqlite3.Row) -> dict:
        settled = bool(row["force_settled"]) or time.time() - row["created"] >= self.settle_after
        if not row["approved"]:
            state = "declined"
        elif row["voided"]:
            state = "voided"
        elif row["refunded"]:
            state = "refunded"
        else:
            state = "settled" if settled else "unsettled"
        return {
            "id": row["id"],
            "idempotency_key": row["idempotency_key"],
            "order_id": row["order_id"],
            "amount": row["amount"],
            "currency": row["currency"],
            "code": row["code"],
            "state": state,
            "created": datetime.fromtimestamp(row["created"], UTC).replace(tzinfo=None).isoformat(),
            # What it has given back in all ("refunded" says only that something was): None
            # before any refund.
            "refunded": row["refunded"],
        }

    def _refund_view(self, row: sqlite3.Row) -> dict:
        settled = bool(row["force_settled"]) or time.time() - row["created"] >= self.settle_after
        return {
            "id": row["id"],
            "charge_id": row["charge_id"],
            "amount": row["amount"],
            "state": "settled" if settled else "unsettled",
            "created": datetime.fromtimestamp(row["created"], UTC).replace(tzinfo=None).isoformat(),
        }
