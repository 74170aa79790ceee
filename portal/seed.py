"""Bulk demo data for benchmarks and load tests: N invoices, one account and card each, fast."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from portal import clock
from portal.accounts.models import Account, PaymentMethod
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice

BATCH = 5000


def seed_invoices(
    count: int, gateway_name: str, token: str = "tok_approve", prefix: str = "BULK"
) -> int:
    """Add `count` due USD invoices charged through the named gateway; returns how many were added."""
    if count < 1:
        raise DomainError("Give a number of invoices of at least 1")
    gateway = db.session.scalar(select(Gateway).where(Gateway.name == gateway_name))
    if gateway is None:
        raise DomainError(f"No gateway named {gateway_name!r}")
    now, due = clock.now(), clock.today() - timedelta(days=1)
    serial = (db.session.scalar(select(db.func.count()).select_from(Account)) or 0) + 1
    for first in range(serial, serial + count, BATCH):
        numbers = range(first, min(first + BATCH, serial + count))
        account_ids = db.session.scalars(
            insert(Account).returning(Account.id, sort_by_parameter_order=True),
            [{"number": f"{prefix}-{n}", "name": f"Bulk customer {n}", "created_at": now}
             for n in numbers],
        ).all()  # fmt: skip
        db.session.execute(
            insert(PaymentMethod),
            [{"account_id": a, "gateway_id": gateway.id, "token": token, "brand": "Visa",
              "last4": "4242", "state": "Active", "is_default": True, "created_at": now}
             for a in account_ids],
        )  # fmt: skip
        db.session.execute(
            insert(Invoice),
            [{"number": f"{prefix}-INV-{n}", "account_id": a, "currency": "USD", "total": 100,
              "balance": 100, "due_date": due, "posted": True, "decline_count": 0, "created_at": now}
             for n, a in zip(numbers, account_ids, strict=True)],
        )  # fmt: skip
        db.session.commit()
    return count
