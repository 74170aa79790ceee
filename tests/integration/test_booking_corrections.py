"""A payment Settle booked for money the gateway does not hold (refunded in the provider's portal,
in part or in whole) is found by reconciliation, locks its invoice, and a clerk corrects the
booking to what the gateway holds (issue 26: "the transaction page offers the action that ends
it ... correct the booking"). The rest of the payment is reversed by a movement of its own, the
invoice owes it again, and the next run charges it: never twice, never silently."""

import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.gateways.base import GatewayConfig, GatewayRequest
from portal.gateways.registry import plugin
from portal.invoices import service as invoices
from portal.invoices.models import Invoice
from portal.listings.payments import ledger_rows
from portal.money import Money
from portal.payments import service as payments
from portal.payments.models import Payment, PaymentMethodKind, PaymentReversal
from portal.reconciliation import service as reconciliation
from portal.reconciliation.models import ReconciliationLine
from portal.sandbox.server import sandbox_credentials
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.transactions import calls, corrections, effects, finalize
from portal.transactions import manual_payment as manual
from portal.transactions.models import CORRECT_BOOKING, Finalization, PaymentTransaction

pytestmark = pytest.mark.integration
REASON_TEXT = "Refunded in the provider's portal on the customer's call"


def _lines(report):
    return db.session.scalars(
        select(ReconciliationLine).where(ReconciliationLine.report_id == report.id)
    ).all()


def _fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def test_a_charge_refunded_in_the_providers_portal_is_not_left_booked_as_paid(
    make_invoice, run_for, make_user, sandbox
):
    invoice = make_invoice(amount="80.00")
    supervisor, clerk = make_user("supervisor"), make_user("clerk")
    run = run_for(actor=supervisor)
    (charge,) = calls.charges_of(invoice.id)
    assert charge.gateway_status is GatewayStatus.SUCCESS
    assert _fresh(Invoice, invoice.id).balance == 0
    # Someone refunds it all in the provider's portal; Settle still books it as paid.
    (held,) = sandbox.ledger.all()
    sandbox.ledger.refund("sandbox", held["id"], Decimal("80.00"))
    report = reconciliation.reconcile(supervisor, run=run)
    (line,) = _lines(report)
    assert line.kind == "status" and line.transaction_id == charge.id
    assert "Settle locked the invoice (Action Required)" in line.advice
    charge = _fresh(PaymentTransaction, charge.id)
    assert charge.invoice.corrective_action == ACTION_REQUIRED and charge.needs_finalization
    assert "Settle books 80.00 USD, the gateway holds none of it (refunded)" in charge.reason
    assert finalize.recommendation(charge, None) == CORRECT_BOOKING
    # A second payment for it would book the money twice: refused, with the way out.
    with pytest.raises(NotAllowed, match="correct the booking"):
        manual.record_manual_payment(
            charge.id, amount=Decimal("80.00"), currency="USD",
            method=PaymentMethodKind.GATEWAY, reference=None, received_on=None, actor=clerk,
        )  # fmt: skip
    db.session.rollback()
    # Asked again, the report holds nothing more: the charge is in a clerk's hands.
    (again,) = _lines(reconciliation.reconcile(supervisor, run=run))
    assert "open for a clerk already" in again.advice
    # No run charges the locked invoice meanwhile.
    run_for(actor=supervisor)
    assert len(calls.charges_of(invoice.id)) == 1
    # The clerk corrects the booking to what the gateway holds: nothing, as a check says first.
    with pytest.raises(DomainError, match="Check gateway status first"):
        corrections.correct_booking(
            charge.id, held=Decimal("0"), currency="USD", reason=REASON_TEXT, actor=clerk
        )
    db.session.rollback()
    finalize.check_gateway_status(charge.id, clerk)
    with pytest.raises(DomainError, match="at least 10 characters"):
        corrections.correct_booking(
            charge.id, held=Decimal("0"), currency="USD", reason="gone", actor=clerk
        )
    db.session.rollback()
    reversed_ = corrections.correct_booking(
        charge.id, held=Decimal("0.00"), currency="USD",
        reason="Refunded in the provider's portal on the customer's call", actor=clerk,
    )  # fmt: skip
    assert str(reversed_) == "80.00 USD"
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.balance, invoice.corrective_action) == (Decimal("80.00"), None)
    charge = db.session.get(PaymentTransaction, charge.id)
    assert charge.finalization == Finalization.BOOKING_CORRECTED
    payment = charge.payment
    # The payment is not edited: a reversal of its own takes it back, and nothing is free to
    # allocate elsewhere.
    assert payment.amount == Decimal("80.00") and payment.net.amount == 0
    assert not payment.unallocated.is_positive()
    (reversal,) = payment.reversals
    assert reversal.transaction_id == charge.id and reversal.created_by_id == clerk.id
    # The ledger shows the money Settle had booked and never had going out, with its charge.
    moves = [(r[1], r[2], r[7]) for r in ledger_rows(date.today(), date.today())]
    assert ("reversal", "-80.00", charge.id) in moves
    # The report now matches; the invoice is owed again, and the next run charges it once.
    (matched,) = _lines(reconciliation.reconcile(supervisor, run=run))
    assert matched.kind == "matched"
    run_for(actor=supervisor)
    charges = calls.charges_of(invoice.id)
    assert [c.gateway_status for c in charges] == [GatewayStatus.SUCCESS] * 2
    assert _fresh(Invoice, invoice.id).balance == 0


def test_a_partial_refund_at_stripe_is_corrected_to_what_it_holds_and_the_rest_charged_again(
    make_invoice, run_for, make_user, sandbox, stripe_gateway
):
    invoice = make_invoice(amount="100.00", gateway=stripe_gateway)
    supervisor, clerk = make_user("supervisor"), make_user("clerk")
    run = run_for(actor=supervisor)
    (charge,) = calls.charges_of(invoice.id)
    assert charge.gateway_status is GatewayStatus.SUCCESS
    # 30.00 refunded in Stripe's dashboard: a refund Settle never made.
    stripe = plugin(
        "stripe", GatewayConfig(sandbox.url_for("stripe"), sandbox_credentials("stripe"))
    )
    outside = GatewayRequest(
        "refund", uuid.uuid4().hex, invoice.number, Money.parse("30.00", "USD"),
        reference=charge.provider_reference,
    )  # fmt: skip
    assert stripe.refund(outside).status is GatewayStatus.SUCCESS
    (line,) = _lines(reconciliation.reconcile(supervisor, run=run))
    assert line.kind == "amount" and "partly refunded" in line.advice.lower()
    charge = _fresh(PaymentTransaction, charge.id)
    assert charge.needs_finalization
    assert "the gateway holds 70.00 USD (refunded 30.00 USD of 100.00 USD)" in charge.reason
    # The form is pre-filled only from a check made after the difference was found.
    assert corrections.held_now(charge).held is None
    finalize.check_gateway_status(charge.id, clerk)
    now = corrections.held_now(_fresh(PaymentTransaction, charge.id))
    assert str(now.held) == "70.00 USD" and str(now.booked) == "100.00 USD"
    # More than Settle booked is not a correction: the clerk is sent to Refund & Unlock.
    with pytest.raises(DomainError, match="Refund & Unlock"):
        corrections.correct_booking(
            charge.id, held=Decimal("100.01"), currency="USD", reason="the gateway says so",
            actor=clerk,
        )  # fmt: skip
    db.session.rollback()
    corrections.correct_booking(
        charge.id, held=now.held.amount, currency="USD",
        reason="30.00 refunded at Stripe for a service credit", actor=clerk,
    )  # fmt: skip
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.balance, invoice.corrective_action) == (Decimal("30.00"), None)
    payment = db.session.get(PaymentTransaction, charge.id).payment
    assert payment.net.amount == Decimal("70.00") and payment.allocated == Decimal("70.00")
    # Reconciled again, Settle's booking is what Stripe holds: matched.
    (matched,) = _lines(reconciliation.reconcile(supervisor, run=run))
    assert matched.kind == "matched", matched.advice
    # The next run charges the 30.00 the invoice owes, once.
    run_for(actor=supervisor)
    second = calls.charges_of(invoice.id)[-1]
    assert (second.amount, second.gateway_status) == (Decimal("30.00"), GatewayStatus.SUCCESS)
    assert _fresh(Invoice, invoice.id).balance == 0


def test_refund_and_unlock_of_money_held_twice_reverses_its_payment_so_the_ledger_is_true(
    make_invoice, run_for, make_user, sandbox
):
    """A Success answered for an invoice a clerk had paid in part meanwhile: the charge's payment
    is booked for what the invoice owed and the rest is held twice. Refund & Unlock gives it all
    back at the gateway; its payment is then reversed (before, it stayed booked, with money
    'free to allocate' that the customer already had back)."""
    invoice = make_invoice(amount="100.00")
    supervisor, clerk = make_user("supervisor"), make_user("clerk")
    run_for(actor=supervisor)
    (charge,) = calls.charges_of(invoice.id)
    payment = charge.payment
    # As if a check for 60.00 had come in before the answer: the charge's payment then took 40.
    inv = invoices.lock_invoice(invoice.id)
    (allocation,) = payment.allocations
    payments.unallocate(allocation.id, "made room for a check received", supervisor)
    check = payments.create_payment(
        account_id=inv.account_id, amount=Decimal("60.00"), currency="USD",
        method=PaymentMethodKind.CHECK, reference="CHK-1",
    )  # fmt: skip
    payments.allocate(check, inv, Decimal("60.00"))
    payments.allocate(payment, inv, Decimal("40.00"))
    charge = db.session.get(PaymentTransaction, charge.id)
    charge.locked_invoice = True
    effects.lock(inv, "held twice")
    db.session.commit()
    assert finalize.recommendation(_fresh(PaymentTransaction, charge.id), None) == (
        finalize.REFUND_AND_UNLOCK
    )
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert outcome.unlocked, outcome.problems
    assert any("its payment is reversed" in a for a in outcome.actions), outcome.actions
    payment = _fresh(Payment, payment.id)
    assert payment.net.amount == 0 and not payment.unallocated.is_positive()
    (reversal,) = payment.reversals
    # The sandbox had not settled it: a void, no refund, so the reversal is the money going out.
    assert reversal.refund_id is None and reversal.transaction_id == charge.id
    # The invoice owes again what the refunded charge had paid of it.
    assert _fresh(Invoice, invoice.id).balance == Decimal("40.00")
    assert (
        db.session.scalar(select(PaymentReversal.id).where(PaymentReversal.id != reversal.id))
        is None
    )
    moves = [(r[1], r[2]) for r in ledger_rows(date.today(), date.today())]
    assert ("reversal", "-100.00") in moves and not any(m == "refund" for m, _ in moves)
