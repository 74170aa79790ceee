"""Late or contradicting news never becomes "no change" while money may be held (issue 26, item 4):
the gateway's "it succeeded" for a charge that a Refund & Unlock found nothing of books the payment
while the invoice still owes it, and locks the invoice as money held twice when it does not."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.gateways.webhooks import Notice
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.transactions import calls, finalize
from portal.webhooks import service as webhooks
from portal.webhooks.models import Outcome, WebhookEvent

pytestmark = pytest.mark.integration
S = GatewayStatus


def succeeded(charge, event_id="evt_late_1") -> Notice:
    return Notice(
        event_id=event_id, event_type="charge.succeeded", operation="charge", final=True,
        result=GatewayResult(S.SUCCESS, "approved", "Approved", reference="ch_late"),
        reference="ch_late", key=charge.idempotency_key, amount=charge.money,
    )  # fmt: skip


@pytest.fixture
def unlocked_after_finding_nothing(make_invoice, run_for, sandbox, make_user):
    """A charge that hung, whose money the gateway did not hold when a clerk's Refund & Unlock
    asked, so the invoice was unlocked and owes its total again."""
    invoice = make_invoice(token="tok_hang", amount="100.00")
    run_for()
    (charge,) = calls.charges_of(invoice.id)
    assert charge.gateway_status is S.INDETERMINATE
    for held in sandbox.ledger.all():
        sandbox.ledger.forget(held["id"])
    outcome = finalize.refund_and_unlock(charge.id, make_user("clerk"))
    assert outcome.unlocked, outcome.problems
    return invoice, charge


def payments_of(invoice) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Payment).where(Payment.transaction_id.is_not(None))
    )


def test_a_succeeded_webhook_after_a_refund_and_unlock_found_nothing_books_the_payment(
    unlocked_after_finding_nothing, run_for
):
    invoice, charge = unlocked_after_finding_nothing
    webhooks.take(charge.gateway_id, succeeded(charge), {})
    db.session.expire_all()
    charge = db.session.get(type(charge), charge.id)
    assert charge.gateway_status is S.SUCCESS
    assert "the payment is booked" in charge.reason
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.balance, invoice.corrective_action) == (Decimal("0.00"), None)
    (event,) = db.session.scalars(select(WebhookEvent)).all()
    assert event.outcome == Outcome.SETTLED
    # The next run does not charge the customer again.
    assert run_for().selected_count == 0
    assert len(calls.charges_of(invoice.id)) == 1


def test_a_succeeded_webhook_for_an_invoice_paid_meanwhile_locks_it_as_money_held_twice(
    unlocked_after_finding_nothing, run_for
):
    invoice, charge = unlocked_after_finding_nothing
    invoice.account.payment_methods[0].token = "tok_approve"
    db.session.commit()
    run_for()  # the next run collected the invoice with a second charge
    assert db.session.get(Invoice, invoice.id).balance == Decimal("0.00")
    webhooks.take(charge.gateway_id, succeeded(charge), {})
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.corrective_action == ACTION_REQUIRED
    charge = db.session.get(type(charge), charge.id)
    assert charge.needs_finalization and charge.finalized_at is None
    assert "held twice" in charge.reason and "refund this charge" in charge.reason
    (event,) = db.session.scalars(select(WebhookEvent)).all()
    assert event.outcome == Outcome.FOR_A_CLERK
    assert payments_of(invoice) == 1  # the second charge's only: nothing booked twice
    assert finalize.recommendation(charge, None) == finalize.REFUND_AND_UNLOCK


def test_a_success_for_a_finalized_charge_while_a_second_charge_is_open_is_held_not_booked(
    unlocked_after_finding_nothing, run_for
):
    # Found by attack: c1 booked beside an Indeterminate c2, then c2's success booked too, and
    # the invoice was unlocked holding twice its total.
    invoice, first = unlocked_after_finding_nothing
    run_for()  # the next run's charge hangs as well
    second = calls.charges_of(invoice.id)[-1]
    assert second.gateway_status is S.INDETERMINATE
    webhooks.take(first.gateway_id, succeeded(first, "evt_first"), {})
    webhooks.take(second.gateway_id, succeeded(second, "evt_second"), {})
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.corrective_action == ACTION_REQUIRED
    assert payments_of(invoice) == 1  # the second charge's, the one the invoice owed
    first = db.session.get(type(first), first.id)
    assert first.needs_finalization and "held twice" in first.reason


def test_a_second_word_about_a_held_charge_never_books_it_over_a_paid_invoice(
    unlocked_after_finding_nothing, run_for
):
    invoice, charge = unlocked_after_finding_nothing
    invoice.account.payment_methods[0].token = "tok_approve"
    db.session.commit()
    run_for()  # paid by a second charge
    webhooks.take(charge.gateway_id, succeeded(charge, "evt_A"), {})
    webhooks.take(charge.gateway_id, succeeded(charge, "evt_B"), {})  # another event, same news
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).corrective_action == ACTION_REQUIRED
    assert payments_of(invoice) == 1


def test_a_success_after_a_clerk_booked_less_than_the_charge_is_held_for_a_clerk(
    make_invoice, run_for, make_user
):
    from portal.payments.models import PaymentMethodKind
    from portal.transactions import manual_payment

    invoice = make_invoice(token="tok_hang", amount="100.00")
    run_for()
    (charge,) = calls.charges_of(invoice.id)
    manual_payment.record_manual_payment(
        charge.id, amount=Decimal("40.00"), currency="USD", method=PaymentMethodKind.CHECK,
        reference="chq 1001", received_on=None, actor=make_user("clerk"),
        difference_reason="the customer says 40 was paid by cheque for this invoice",
    )  # fmt: skip
    assert db.session.get(Invoice, invoice.id).corrective_action is None
    webhooks.take(charge.gateway_id, succeeded(charge), {})
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).corrective_action == ACTION_REQUIRED
    charge = db.session.get(type(charge), charge.id)
    assert "a clerk booked less for it" in charge.reason and charge.needs_finalization


def test_a_success_told_while_a_refund_and_unlock_is_under_way_stops_it_before_it_unlocks(
    make_invoice, run_for, sandbox, make_user, monkeypatch
):
    # Found by attack: the word was filed for a clerk, and the Refund & Unlock, whose lookup had
    # not seen the money, then unlocked the invoice and the next run charged again.
    from portal.transactions import lookups

    invoice = make_invoice(token="tok_hang", amount="100.00")
    run_for()
    (charge,) = calls.charges_of(invoice.id)
    for held in sandbox.ledger.all():
        sandbox.ledger.forget(held["id"])  # the gateway's search does not show it yet
    asked = lookups.find_unexplained

    def word_arrives_meanwhile(*args, **kwargs):
        webhooks.take(charge.gateway_id, succeeded(charge), {})
        return asked(*args, **kwargs)

    monkeypatch.setattr(lookups, "find_unexplained", word_arrives_meanwhile)
    outcome = finalize.refund_and_unlock(charge.id, make_user("clerk"))
    assert not outcome.unlocked
    assert any("the gateway told of money for this invoice" in p for p in outcome.problems)
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.corrective_action == ACTION_REQUIRED and invoice.finalizing_at is None
    charge = db.session.get(type(charge), charge.id)
    assert charge.needs_finalization and "stops before it unlocks" in charge.reason
