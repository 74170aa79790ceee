"""The dashboard's read: what needs action now (oldest due first), the latest runs, the month."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.service import retries_exhausted
from portal.listings import charts
from portal.runs import service as runs_service
from portal.runs.models import PaymentRun
from portal.statuses import ACTION_REQUIRED
from portal.transactions.lookups import latest_answers

SHOWN = 10
RUNS_SHOWN = 5


def overview() -> dict:
    locked_now = Invoice.corrective_action == ACTION_REQUIRED
    oldest_due = (Invoice.due_date, Invoice.id)
    account = selectinload(Invoice.account)
    locked = db.session.scalars(
        select(Invoice).where(locked_now).order_by(*oldest_due).limit(SHOWN).options(account)
    ).all()
    runs = db.session.scalars(
        select(PaymentRun).order_by(PaymentRun.id.desc()).limit(RUNS_SHOWN)
    ).all()
    return {
        "locked": locked,
        "locked_count": db.session.scalar(
            select(func.count()).select_from(Invoice).where(locked_now)
        ),
        "answers": latest_answers(locked),
        "runs": runs,
        "locked_by_run": runs_service.locked_by_run([r.id for r in runs]),
        "exhausted": db.session.scalars(
            select(Invoice)
            .where(retries_exhausted())
            .order_by(*oldest_due)
            .limit(SHOWN)
            .options(account)
        ).all(),
        "month": charts.month(),
    }
