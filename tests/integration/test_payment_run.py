"""A payment run over real HTTP to the sandbox server: every status and its action."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import Allocation, Payment
from portal.runs.models import RunSkip, RunState
from portal.runs.service import skip_reasons
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


def test_the_next_run_skips_locked_and_failed_invoices_and_says_why(make_invoice, run_for):
    for token in TOKENS:
        make_invoice(token=token)
    run_for()
    second = run_for()
    # The paid invoice is no longer open; the other six are considered, and none is charged:
    # the soft decline waits for its retry a day later.
    assert second.selected_count == 6
    charged = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.run_id == second.id)
    ).all()
    assert charged == []
    assert second.skipped_count == 6
    assert dict(skip_reasons(second)) == {
        "Action Required": 3,
        "payment method needs update": 1,
        "no active payment method": 1,
        "next retry not yet due": 1,
    }


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"posted": False}, "not posted"),
        ({"method_state": "Inactive"}, "no active payment method"),
        ({"method_state": "Needs Update"}, "payment method needs update"),
    ],
)
def test_each_skipped_invoice_records_the_first_rule_it_failed(
    make_invoice, run_for, setup, reason
):
    invoice = make_invoice(**setup)
    run = run_for()
    (skip,) = db.session.scalars(select(RunSkip).where(RunSkip.run_id == run.id)).all()
    assert (skip.invoice_id, skip.reason) == (invoice.id, reason)


def test_a_disabled_gateway_is_a_reason_too(make_invoice, make_gateway, run_for):
    gateway = make_gateway(name="Off")
    gateway.enabled = False
    db.session.commit()
    make_invoice(gateway=gateway)
    run = run_for()
    assert dict(skip_reasons(run)) == {"gateway disabled": 1}


def test_the_cap_counts_charged_invoices_not_skipped_ones(make_invoice, run_for):
    make_invoice(posted=False, due_days=-5)
    for _ in range(3):
        make_invoice()
    run = run_for(invoice_limit=2)
    assert (run.success_count, run.skipped_count, run.selected_count) == (2, 1, 3)


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
    run = run_for(invoice_limit=2)
    assert (run.selected_count, run.success_count) == (2, 2)
