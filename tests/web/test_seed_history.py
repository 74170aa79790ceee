"""`flask settle seed --history`: invoices with a history of daily runs' calls, each answer with
its status's effects as the policy writes them, so that the pages are measured against data that
holds together."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.errors import DomainError
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import Allocation, Payment
from portal.runs.models import PaymentRun
from portal.seed import seed_history
from portal.statuses import ACTION_REQUIRED, POLICY, GatewayStatus
from portal.transactions.models import PaymentTransaction


def test_the_history_holds_together(app, make_gateway):
    make_gateway()
    added, made = seed_history(200, 1000, "Sandbox", days=60)
    assert (added, made) == (200, 1000)
    t = PaymentTransaction
    assert db.session.scalar(select(func.count()).select_from(t)) == 1000
    charges = db.session.scalars(select(t).where(t.operation == "charge")).all()
    lookups = db.session.scalars(select(t).where(t.operation == "lookup")).all()
    # Every call of a run is counted by its run, each under its status's counter.
    runs = db.session.scalars(select(PaymentRun)).all()
    assert len(runs) == 60
    assert sum(r.processed_count for r in runs) == len(charges)
    assert sum(r.success_count for r in runs) == sum(c.status == "Success" for c in charges)
    for invoice in db.session.scalars(select(Invoice)):
        mine = sorted((c for c in charges if c.invoice_id == invoice.id), key=lambda c: c.id)
        last = POLICY[GatewayStatus(mine[-1].status)]
        assert all(c.status == "Decline" for c in mine[:-1])
        paid = db.session.scalar(
            select(func.coalesce(func.sum(Allocation.amount), 0)).where(
                Allocation.invoice_id == invoice.id
            )
        )
        assert invoice.balance == invoice.total - Decimal(paid)
        assert (invoice.balance == 0) == last.creates_payment
        assert (invoice.corrective_action == ACTION_REQUIRED) == last.locks_invoice
        assert mine[-1].locked_invoice == last.locks_invoice
        checks = [c for c in lookups if c.parent_id == mine[-1].id]
        assert len(checks) == (1 if last.locks_invoice else 0)
        if last.creates_payment:
            payment = db.session.scalar(
                select(Payment).where(Payment.transaction_id == mine[-1].id)
            )
            assert payment.amount == mine[-1].amount
    # The calls' statuses come from the sandbox's own mapping, with the line that gave each.
    assert all(c.decided_by and c.decided_by.startswith("sandbox/codes.yaml line") for c in charges)


@pytest.mark.parametrize(
    ("invoices", "calls", "days", "message"),
    [(0, 10, 30, "at least 1 invoice"), (10, 5, 30, "at least as many"),
     (10, 500, 30, "do not fit in 30 days")],
)  # fmt: skip
def test_a_history_that_cannot_be_written_says_why(
    app, make_gateway, invoices, calls, days, message
):
    make_gateway()
    with pytest.raises(DomainError, match=message):
        seed_history(invoices, calls, "Sandbox", days=days)
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0
