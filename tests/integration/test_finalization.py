"""Finalization against the real sandbox server: refund and unlock, and the manual payment."""

import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal import clock
from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.payments.models import Payment, PaymentMethodKind
from portal.transactions import finalize, manual_payment
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


@pytest.fixture
def clerk(make_user):
    return make_user("clerk")


@pytest.fixture
def locked_charge(make_invoice, run_for):
    def make(token, **kw):
        invoice = make_invoice(token=token, **kw)
        run_for()
        charge = db.session.scalar(
            select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
        )
        assert charge.invoice.corrective_action == "Action Required", charge.status
        return charge

    return make


def reload(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def test_indeterminate_and_unsettled_is_voided_and_the_invoice_unlocked(
    locked_charge, clerk, sandbox
):
    charge = locked_charge("tok_hang")
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert outcome.unlocked, outcome.problems
    assert [c["state"] for c in sandbox.ledger.all()] == ["voided"]
    charge = reload(charge)
    assert charge.invoice.corrective_action is None
    assert (charge.finalization, charge.finalized_by.username) == ("Refund & Unlock", "clerk")
    operations = [t.operation for t in db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.parent_id == charge.id))]  # fmt: skip
    assert operations == ["lookup", "void"]


def test_a_settled_charge_is_refunded(locked_charge, clerk, sandbox):
    charge = locked_charge("tok_review", amount="40.00")
    sandbox.ledger.settle()
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert outcome.unlocked, outcome.problems
    assert [c["state"] for c in sandbox.ledger.all()] == ["refunded"]


def test_when_the_gateway_holds_nothing_the_invoice_is_simply_unlocked(
    locked_charge, clerk, sandbox
):
    charge = locked_charge("tok_refuse")
    assert sandbox.ledger.all() == []
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert outcome.unlocked
    assert "holds nothing" in outcome.actions[0]


def test_a_gateway_that_cannot_answer_keeps_the_lock_and_a_retry_voids_once(
    locked_charge, clerk, sandbox
):
    charge = locked_charge("tok_hang")
    gateway = charge.gateway
    real_url = gateway.base_url
    gateway.base_url = "http://127.0.0.1:9"
    db.session.commit()
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert not outcome.unlocked
    assert "could not say what it holds" in outcome.problems[0]
    assert reload(charge).invoice.corrective_action == "Action Required"
    assert reload(charge).invoice.finalizing_at is None  # the claim is released for the next try

    gateway = reload(gateway)
    gateway.base_url = real_url
    db.session.commit()
    assert finalize.refund_and_unlock(charge.id, clerk).unlocked
    assert [c["state"] for c in sandbox.ledger.all()] == ["voided"]


def test_a_second_refund_and_unlock_is_refused_with_who_did_it(locked_charge, clerk):
    charge = locked_charge("tok_hang")
    finalize.refund_and_unlock(charge.id, clerk)
    with pytest.raises(NotAllowed, match=r"Already done by Clerk at .* \(Refund & Unlock\)"):
        finalize.refund_and_unlock(charge.id, clerk)


def test_a_manual_payment_is_allocated_and_unlocks_the_invoice(locked_charge, clerk):
    charge = locked_charge("tok_review", amount="75.50")
    manual_payment.record_manual_payment(
        charge.id, amount=Decimal("75.50"), currency="USD", method=PaymentMethodKind.GATEWAY,
        reference=charge.provider_reference, received_on=None, actor=clerk,
    )  # fmt: skip
    charge = reload(charge)
    invoice = charge.invoice
    assert (invoice.balance, invoice.corrective_action) == (Decimal("0"), None)
    assert charge.finalization == "Manual payment"
    assert charge.payment.amount == Decimal("75.50")
    assert charge.payment.created_by.username == "clerk"


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("0", "USD", "more than zero"),
        ("-5", "USD", "more than zero"),
        ("100.01", "USD", "more than the invoice's balance"),
        ("10", "EUR", "is in USD, not EUR"),
    ],
)
def test_a_bad_manual_payment_changes_nothing(locked_charge, clerk, amount, currency, message):
    charge = locked_charge("tok_review", amount="100.00")
    with pytest.raises(DomainError, match=message):
        manual_payment.record_manual_payment(
            charge.id, amount=Decimal(amount), currency=currency, method=PaymentMethodKind.CHECK,
            reference=None, received_on=None, actor=clerk,
        )  # fmt: skip
    db.session.rollback()
    assert reload(charge).invoice.corrective_action == "Action Required"
    assert db.session.scalars(select(Payment)).all() == []


def test_a_charge_that_did_not_lock_cannot_be_finalized(make_invoice, run_for, clerk):
    invoice = make_invoice(token="tok_decline")
    run_for()
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )
    with pytest.raises(NotAllowed, match="did not lock its invoice"):
        finalize.refund_and_unlock(charge.id, clerk)


def test_two_clerks_confirming_at_once_create_exactly_one_payment(app, locked_charge, make_user):
    charge = locked_charge("tok_review", amount="60.00")
    clerks = [make_user("clerk", "clerk1"), make_user("clerk", "clerk2")]
    start = threading.Barrier(2)
    results = []

    def confirm(user_id):
        with app.app_context():
            from portal.auth.models import User

            user = db.session.get(User, user_id)
            start.wait()
            try:
                manual_payment.record_manual_payment(
                    charge.id, amount=Decimal("60.00"), currency="USD", method=PaymentMethodKind.WIRE,
                    reference="W-1", received_on=None, actor=user,
                )  # fmt: skip
                results.append("paid")
            except NotAllowed as exc:
                db.session.rollback()
                results.append(str(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=confirm, args=(c.id,)) for c in clerks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results.count("paid") == 1, results
    (refused,) = [r for r in results if r != "paid"]
    assert refused.startswith(("Already done by Clerk", "Invoice INV-0001 is not locked any more"))
    assert len(db.session.scalars(select(Payment)).all()) == 1
    assert reload(charge).invoice.balance == Decimal("0")


def test_a_manual_payment_is_refused_while_another_clerk_refunds(locked_charge, clerk, make_user):
    charge = locked_charge("tok_review", amount="30.00")
    other = make_user("clerk", "clerk2")
    charge.invoice.finalizing_by_id, charge.invoice.finalizing_at = other.id, clock.now()
    db.session.commit()
    with pytest.raises(NotAllowed, match="is attempting a refund and unlock of this invoice"):
        manual_payment.record_manual_payment(
            charge.id, amount=Decimal("30.00"), currency="USD", method=PaymentMethodKind.GATEWAY,
            reference=None, received_on=None, actor=clerk,
        )  # fmt: skip
    db.session.rollback()
    assert reload(charge).invoice.corrective_action == "Action Required"


def test_a_new_active_card_is_charged_after_a_permanent_fail(make_invoice, run_for):
    from portal.accounts.models import PaymentMethod

    invoice = make_invoice(token="tok_closed")
    run_for()
    old = invoice.account.payment_methods[0]
    db.session.add(PaymentMethod(account_id=invoice.account_id, gateway_id=old.gateway_id,
                                 token="tok_approve", brand="Visa", last4="1111"))  # fmt: skip
    db.session.commit()
    run = run_for(currency="USD")
    assert run.success_count == 1


def _charge_outside_settle(sandbox, invoice_number: str) -> str:
    """A charge made for the invoice in the provider's own portal: Settle never sent it."""
    import uuid

    import requests

    from portal.sandbox.server import sandbox_credentials

    key = sandbox_credentials("sandbox")["api_key"]
    answer = requests.post(
        f"{sandbox.url}/v1/charges",
        json={"amount": "25.00", "currency": "USD", "source": "tok_approve",
              "order_id": invoice_number},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=10,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def test_a_charge_settle_did_not_send_keeps_the_invoice_locked_and_is_named(
    locked_charge, clerk, sandbox
):
    charge = locked_charge("tok_hang")
    outside = _charge_outside_settle(sandbox, charge.invoice.number)
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert not outcome.unlocked
    (problem,) = outcome.problems
    assert outside in problem and "Settle did not send" in problem and "25.00" in problem
    charge = reload(charge)
    assert charge.invoice.corrective_action == "Action Required"
    assert charge.finalized_at is None
    # Settle's own charge was voided and is not voided twice when the clerk tries again.
    assert sorted(c["state"] for c in sandbox.ledger.all()) == ["unsettled", "voided"]
    sandbox.ledger.void("sandbox", outside)  # someone refunds it in the provider's portal
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert outcome.unlocked, outcome.problems
    voids = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.operation == "void")
    ).all()
    assert len(voids) == 1


def test_a_portal_charge_is_found_when_settles_own_charge_never_reached_the_gateway(
    locked_charge, clerk, sandbox
):
    charge = locked_charge("tok_refuse")  # refused: Settle's charge never reached the gateway
    outside = _charge_outside_settle(sandbox, charge.invoice.number)
    for _ in range(2):  # and the refusal holds when the clerk simply tries again
        outcome = finalize.refund_and_unlock(charge.id, clerk)
        assert not outcome.unlocked
        assert any(outside in p for p in outcome.problems), outcome.problems
    assert reload(charge).invoice.corrective_action == "Action Required"
