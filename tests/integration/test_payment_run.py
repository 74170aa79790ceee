"""A payment run over real HTTP to the sandbox server: every status and its action."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import Allocation, Payment
from portal.runs.models import RunState
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration

TOKENS = {
    "tok_approve": "Success",
    "tok_decline": "Decline",
    "tok_cvc": "Validation Error",
    "tok_closed": "Permanent Fail",
    "tok_review": "Requires Review",
    "tok_hang": "Indeterminate",
    "tok_misconfigured": "System Fail",
}


def status_of(invoice):
    return db.session.scalar(
        select(PaymentTransaction.status).where(PaymentTransaction.invoice_id == invoice.id)
    )


def test_a_run_gives_every_status_its_action(make_invoice, run_for, make_user):
    supervisor = make_user("supervisor")
    invoices = {token: make_invoice(token=token, amount="100.00") for token in TOKENS}
    run = run_for(actor=supervisor)

    assert {token: status_of(inv) for token, inv in invoices.items()} == TOKENS
    assert (run.selected_count, run.success_count, run.decline_count, run.failure_count,
            run.indeterminate_count, run.review_count) == (7, 1, 1, 3, 1, 1)  # fmt: skip
    assert run.state == RunState.COMPLETED_WITH_ERRORS
    paid = db.session.get(Invoice, invoices["tok_approve"].id)
    assert paid.balance == Decimal("0")
    (payment,) = db.session.scalars(select(Payment)).all()
    assert (payment.amount, payment.method) == (Decimal("100.00"), "Gateway")
    assert db.session.scalar(select(Allocation.amount)) == Decimal("100.00")
    corrective = {t: db.session.get(Invoice, i.id).corrective_action for t, i in invoices.items()}
    locked = {t for t, action in corrective.items() if action == "Action Required"}
    assert locked == {"tok_review", "tok_hang", "tok_misconfigured"}
    method_states = {t: i.account.payment_methods[0].state for t, i in invoices.items()}
    assert method_states["tok_cvc"] == "Needs Update"
    assert method_states["tok_closed"] == "Inactive"
    assert method_states["tok_decline"] == "Active"


def test_the_next_run_skips_locked_failed_and_paid_invoices(make_invoice, run_for):
    for token in TOKENS:
        make_invoice(token=token)
    run_for()
    second = run_for()
    # Only the soft decline is eligible again; the rest are paid, locked or need a new method.
    assert second.selected_count == 3
    charged = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.run_id == second.id)
    ).all()
    assert [t.status for t in charged] == ["Decline"]
    assert second.skipped_count == 2


def test_a_gateway_that_is_down_gives_system_fail_and_the_run_completes(
    make_invoice, make_gateway, run_for
):
    offline = make_gateway(name="Offline", url="http://127.0.0.1:9")
    locked = make_invoice(gateway=offline)
    paid = make_invoice()
    run = run_for()
    assert status_of(locked) == "System Fail"
    assert status_of(paid) == "Success"
    assert run.state == RunState.COMPLETED_WITH_ERRORS
    assert db.session.get(Invoice, locked.id).corrective_action == "Action Required"


def test_amounts_reach_the_gateway_exactly(make_invoice, run_for, sandbox):
    make_invoice(amount="1234.56", currency="EUR")
    make_invoice(amount="15000", currency="JPY")
    run_for()
    charged = {(c["amount"], c["currency"]) for c in sandbox.ledger.all()}
    assert charged == {("1234.56", "EUR"), ("15000", "JPY")}


def test_filters_choose_the_invoices(make_invoice, run_for):
    usd = make_invoice(currency="USD")
    eur = make_invoice(currency="EUR")
    make_invoice(due_days=5)
    run = run_for(currency="EUR")
    assert run.selected_count == 1
    assert status_of(eur) == "Success"
    assert status_of(usd) is None


def test_the_cap_limits_the_run(make_invoice, run_for):
    for _ in range(3):
        make_invoice()
    assert run_for(invoice_limit=2).selected_count == 2
