"""A manual payment never makes the customer pay twice: an amount other than the settled one is an
explicit, written choice; an invoice with money still held at the gateway stays locked; a charge
that never reached the gateway is unlocked without asking it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.payments.models import Payment, PaymentMethodKind
from portal.statuses import NOT_SENT_GUIDANCE
from portal.transactions import finalize, manual_payment, reviews
from portal.transactions.models import UNLOCK_UNSENT, Operation, PaymentTransaction

pytestmark = pytest.mark.integration


@pytest.fixture
def clerk(make_user):
    return make_user("clerk")


def charge_of(invoice) -> PaymentTransaction:
    db.session.expire_all()
    return db.session.scalar(
        select(PaymentTransaction).where(
            PaymentTransaction.invoice_id == invoice.id,
            PaymentTransaction.operation == Operation.CHARGE.value,
        )
    )


@pytest.fixture
def settled_1200(make_invoice, run_for, sandbox, clerk):
    """The issue's invoice: a 1,200.00 charge held for review, settled at the gateway, checked."""
    invoice = make_invoice(token="tok_review", amount="1200.00")
    run_for()
    sandbox.ledger.settle()
    charge = charge_of(invoice)
    finalize.check_gateway_status(charge.id, clerk)
    return charge_of(invoice)


def pay(charge, clerk, amount, method=PaymentMethodKind.GATEWAY, **kw):
    kw.setdefault("received_on", None)
    return manual_payment.record_manual_payment(
        charge.id, amount=Decimal(amount), currency="USD", method=method,
        reference=None, actor=clerk, **kw,
    )  # fmt: skip


def test_a_partial_payment_of_a_settled_charge_is_refused_and_the_next_run_charges_nothing(
    settled_1200, clerk, run_for, sandbox
):
    # The gateway holds 1,200.00 of it: the payment is that money, all of it, even with a reason.
    with pytest.raises(DomainError, match=r"The gateway holds 1,200.00 USD of this charge"):
        pay(settled_1200, clerk, "500.00", difference_reason="the customer asked for a discount")
    db.session.rollback()
    charge = charge_of(settled_1200.invoice)
    assert charge.invoice.corrective_action == "Action Required"
    assert charge.invoice.balance == Decimal("1200.00")
    assert db.session.scalars(select(Payment)).all() == []
    run_for()
    assert [c["amount"] for c in sandbox.ledger.all()] == ["1200.00"]


@pytest.fixture
def unchecked_1200(make_invoice, run_for):
    """A 1,200.00 charge held for review that nobody has asked the gateway about."""
    invoice = make_invoice(token="tok_review", amount="1200.00")
    run_for()
    return charge_of(invoice)


def test_a_reason_too_short_is_no_reason(unchecked_1200, clerk):
    with pytest.raises(DomainError, match="write why"):
        pay(unchecked_1200, clerk, "500.00", PaymentMethodKind.CHECK, difference_reason="  oops  ")


def test_a_differing_amount_with_its_reason_is_recorded_and_audited(unchecked_1200, clerk):
    reason = "500.00 received by check; the customer disputes the rest"
    pay(unchecked_1200, clerk, "500.00", PaymentMethodKind.CHECK, difference_reason=reason)
    charge = charge_of(unchecked_1200.invoice)
    assert charge.invoice.balance == Decimal("700.00")
    assert charge.finalization == "Manual payment"
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "transaction.finalized")
    )
    assert event.note == f"Amount differs from 1,200.00 USD: {reason}"


def test_the_settled_amount_needs_no_reason(settled_1200, clerk):
    pay(settled_1200, clerk, "1200.00")
    assert charge_of(settled_1200.invoice).invoice.corrective_action is None


def test_without_a_lookup_an_amount_other_than_settles_record_needs_a_reason(unchecked_1200, clerk):
    with pytest.raises(DomainError, match="is not the 1,200.00 USD that Settle charged"):
        pay(unchecked_1200, clerk, "500.00", PaymentMethodKind.CHECK)
    db.session.rollback()
    # Through the gateway, less than the charge needs the gateway's word first.
    with pytest.raises(DomainError, match="Check gateway status first"):
        pay(unchecked_1200, clerk, "500.00", difference_reason="partly approved, they said")


def test_the_received_on_date_cannot_be_in_the_future(settled_1200, clerk):
    with pytest.raises(DomainError, match="cannot be in the future"):
        pay(settled_1200, clerk, "1200.00", received_on=clock.today() + timedelta(days=2))
    db.session.rollback()
    pay(settled_1200, clerk, "1200.00", received_on=clock.today() - timedelta(days=1))


def _second_open_charge(invoice, status="Indeterminate") -> PaymentTransaction:
    """Another charge of the invoice that locked it and is not finalized (a late answer, say)."""
    first = charge_of(invoice)
    other = PaymentTransaction(
        operation="charge", invoice_id=invoice.id, gateway_id=first.gateway_id,
        payment_method_id=first.payment_method_id, amount=first.amount, currency="USD",
        idempotency_key="second-open-charge", status=status, locked_invoice=True,
        request_sent=True, answered_at=clock.now(),
    )  # fmt: skip
    db.session.add(other)
    db.session.commit()
    return other


def test_another_charge_that_may_hold_money_keeps_the_invoice_locked_and_says_why(
    settled_1200, clerk
):
    other = _second_open_charge(settled_1200.invoice)
    with pytest.raises(DomainError) as refused:
        pay(settled_1200, clerk, "1200.00")
    assert f"Charge #{other.id} of this invoice (Indeterminate, 1,200.00 USD)" in str(refused.value)
    assert "the gateway has not said what became of it" in str(refused.value)
    db.session.rollback()
    assert charge_of(settled_1200.invoice).invoice.corrective_action == "Action Required"
    assert db.session.scalars(select(Payment)).all() == []


def test_another_charge_the_gateway_holds_nothing_of_does_not_block(settled_1200, clerk, sandbox):
    other = _second_open_charge(settled_1200.invoice)
    finalize.check_gateway_status(other.id, clerk)  # the sandbox knows no such key: not found
    pay(settled_1200, clerk, "1200.00")
    assert charge_of(settled_1200.invoice).invoice.corrective_action is None


# A charge that never left ---------------------------------------------------------------------


@pytest.fixture
def unsent(make_invoice, make_gateway, run_for):
    """A charge to a gateway with nothing listening: connection refused, the request never left."""
    gateway = make_gateway(name="Down", url="http://127.0.0.1:9")
    invoice = make_invoice(token="tok_approve", gateway=gateway)
    run_for()
    return charge_of(invoice)


def test_a_refused_connection_is_known_never_sent_and_says_so(unsent):
    assert (unsent.status, unsent.request_sent, unsent.never_sent) == ("System Fail", False, True)
    assert unsent.invoice.corrective_action == "Action Required"
    assert finalize.recommendation(unsent, None) == UNLOCK_UNSENT
    assert reviews.guidance_for(unsent) == NOT_SENT_GUIDANCE


def test_a_clerk_unlocks_a_charge_that_never_left_without_asking_the_gateway(unsent, clerk):
    finalize.unlock_unsent(unsent.id, clerk)
    charge = charge_of(unsent.invoice)
    assert charge.invoice.corrective_action is None
    assert (charge.finalization, charge.finalized_by.username) == ("Unlocked: never sent", "clerk")
    calls = db.session.scalars(select(PaymentTransaction.operation)).all()
    assert calls == ["charge"]  # no lookup, no void: the gateway was not asked
    with pytest.raises(NotAllowed, match="Already done by Clerk"):
        finalize.unlock_unsent(unsent.id, clerk)


def test_a_charge_that_reached_the_gateway_cannot_be_unlocked_unasked(make_invoice, run_for, clerk):
    invoice = make_invoice(token="tok_refuse")  # the gateway answered 401: it was sent
    run_for()
    charge = charge_of(invoice)
    assert (charge.status, charge.request_sent) == ("System Fail", True)
    assert finalize.recommendation(charge, None) == finalize.REFUND_AND_UNLOCK
    with pytest.raises(NotAllowed, match="reached the gateway"):
        finalize.unlock_unsent(charge.id, clerk)
    db.session.rollback()
    assert charge_of(invoice).invoice.corrective_action == "Action Required"


def test_the_system_fail_guidance_is_addressed_to_a_supervisor(make_invoice, run_for):
    invoice = make_invoice(token="tok_misconfigured")
    run_for()
    assert reviews.guidance_for(charge_of(invoice)).startswith("A supervisor")
