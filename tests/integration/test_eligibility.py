"""Which invoices a run charges: each eligibility rule, one row of a table, in the order a clerk
reads the reason (the first rule an invoice fails is the one it is told)."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.runs.eligibility import RunFilter, why_not_eligible
from portal.transactions.models import PaymentTransaction

TODAY = date.today()
NOW = datetime.utcnow()


def _pending(invoice):
    method = invoice.account.payment_methods[0]
    db.session.add(PaymentTransaction(operation="charge", invoice_id=invoice.id,
                                      gateway_id=method.gateway_id, amount=invoice.total,
                                      currency=invoice.currency, idempotency_key="k-pending"))  # fmt: skip


CASES = [
    # (what is changed, the run's filter, the reason; None: eligible)
    ("nothing", {}, None),
    ("cancelled", {}, "cancelled"),
    ("unposted", {}, "not posted"),
    ("paid", {}, "zero balance"),
    ("due tomorrow", {}, "not due"),
    ("locked", {}, "Action Required"),
    ("EUR invoice", {"currency": "USD"}, "other currency"),
    ("another account", {"account_id": -1}, "other account"),
    ("method inactive", {}, "no active payment method"),
    ("no method", {}, "no active payment method"),
    ("method needs update", {}, "payment method needs update"),
    ("another gateway", {"gateway_id": -1}, "other gateway"),
    ("gateway disabled", {}, "gateway disabled"),
    ("charge in flight", {}, "charged by another run in progress"),
    ("four declines", {}, "retries exhausted"),
    ("retry tomorrow", {}, "next retry not yet due"),
    ("retry was due", {}, None),
    # The first rule wins: a cancelled, unposted, locked invoice is told "cancelled".
    ("cancelled, unposted and locked", {}, "cancelled"),
]


@pytest.mark.parametrize(("change", "scope", "reason"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_of_eligibility(make_invoice, change, scope, reason):
    invoice = make_invoice(currency="EUR" if change == "EUR invoice" else "USD")
    method = invoice.account.payment_methods[0]
    if "cancelled" in change:
        invoice.cancelled_at = NOW
    if "unposted" in change:
        invoice.posted = False
    if change == "paid":
        invoice.balance = Decimal("0")
    if change == "due tomorrow":
        invoice.due_date = TODAY + timedelta(days=1)
    if "locked" in change:
        invoice.corrective_action = "Action Required"
    if change == "method inactive":
        method.state = "Inactive"
    if change == "method needs update":
        method.state = "Needs Update"
    if change == "gateway disabled":
        method.gateway.enabled = False
    if change == "charge in flight":
        _pending(invoice)
    if change == "four declines":
        invoice.decline_count = 4
    if change == "retry tomorrow":
        invoice.decline_count, invoice.next_attempt_at = 1, NOW + timedelta(days=1)
    if change == "retry was due":
        invoice.decline_count, invoice.next_attempt_at = 1, NOW - timedelta(minutes=1)
    db.session.commit()
    chosen = None if change == "no method" else method
    assert why_not_eligible(invoice, chosen, RunFilter(due_on=TODAY, at=NOW, **scope)) == reason
