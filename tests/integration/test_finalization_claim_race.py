"""Attempt Refund & Unlock Invoice and a manual payment, in two real processes, in both orders
(issue 14, hole 6): whichever comes first wins and the other is refused, so money is never both
given back and booked. The claim is the invoice's, so a second clerk on another of its charges is
refused as well."""

import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.errors import NotAllowed
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.transactions import finalize
from portal.transactions.models import Operation, PaymentTransaction

pytestmark = pytest.mark.integration

CLERK = textwrap.dedent(
    """
    import sys, time
    from decimal import Decimal
    from portal import create_app
    url, what, txn_id, user_id, start, hold = sys.argv[1:7]
    txn_id, user_id, start, hold = int(txn_id), int(user_id), float(start), float(hold)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        from portal.auth.models import User
        from portal.errors import NotAllowed
        from portal.extensions import db
        from portal.payments.models import PaymentMethodKind
        from portal.transactions import finalize, lookups, manual_payment
        user = db.session.get(User, user_id)
        if what == "refund" and hold:
            asked = lookups.lookup_charge
            def slow(*args, **kwargs):  # the gateway takes its time: the other clerk acts meanwhile
                time.sleep(hold)
                return asked(*args, **kwargs)
            lookups.lookup_charge = slow
        if what == "pay" and hold:
            locked = manual_payment.locked_for_finalizing
            def slow(*args, **kwargs):  # holds the invoice's lock a while before it commits
                found = locked(*args, **kwargs)
                time.sleep(hold)
                return found
            manual_payment.locked_for_finalizing = slow
        time.sleep(max(0.0, start - time.time()))
        try:
            if what == "refund":
                outcome = finalize.refund_and_unlock(txn_id, user)
                print("refunded" if outcome.unlocked else "not unlocked: " + "; ".join(outcome.problems))
            else:
                manual_payment.record_manual_payment(
                    txn_id, amount=Decimal("45.00"), currency="USD", method=PaymentMethodKind.WIRE,
                    reference="W-9", received_on=None, actor=user,
                )
                print("paid")
        except NotAllowed as exc:
            print("refused:", exc)
    """
)


def spawn(app, what, charge, user, start, hold):
    return subprocess.Popen(
        [sys.executable, "-c", CLERK, app.config["SQLALCHEMY_DATABASE_URI"], what,
         str(charge.id), str(user.id), str(start), str(hold)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def answer(proc) -> str:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    return out.strip().splitlines()[-1]


@pytest.mark.parametrize("first", ["refund", "pay"])
def test_refund_and_unlock_and_a_manual_payment_never_both_happen(
    app, make_invoice, make_user, run_for, sandbox, first
):
    invoice = make_invoice(token="tok_review", amount="45.00")
    run_for()
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )
    assert charge.invoice.corrective_action == "Action Required"
    refunder, payer = make_user("clerk", "refunder"), make_user("clerk", "payer")
    start = time.time() + 4
    # The first one starts at `start` and holds its step for 3 s; the second starts 1 s later.
    procs = {
        "refund": spawn(app, "refund", charge, refunder, start + (first != "refund"),
                        3.0 if first == "refund" else 0),
        "pay": spawn(app, "pay", charge, payer, start + (first != "pay"),
                     3.0 if first == "pay" else 0),
    }  # fmt: skip
    said = {what: answer(p) for what, p in procs.items()}
    second = "pay" if first == "refund" else "refund"
    assert said[first] in ("refunded", "paid"), said
    assert said[second].startswith("refused"), said
    db.session.expire_all()
    paid = db.session.scalar(select(func.count()).select_from(Payment))
    undone = [c["state"] for c in sandbox.ledger.all() if c["state"] in ("voided", "refunded")]
    sent_back = db.session.scalar(
        select(func.count())
        .select_from(PaymentTransaction)
        .where(PaymentTransaction.operation.in_([Operation.VOID, Operation.REFUND]))
    )
    if first == "refund":
        assert (paid, sent_back) == (0, 1) and undone, said
    else:
        assert (paid, sent_back, undone) == (1, 0, []), said
        assert db.session.scalar(select(Payment.amount)) == Decimal("45.00")


def test_the_claim_is_the_invoices_so_another_charge_of_it_is_refused_too(
    make_invoice, make_user, run_for
):
    invoice = make_invoice(token="tok_review", amount="45.00")
    run_for()
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )
    # A second open charge of the same invoice (a late answer reopened it, say).
    twin = PaymentTransaction(
        invoice_id=invoice.id, gateway_id=charge.gateway_id, operation=Operation.CHARGE,
        amount=charge.amount, currency=charge.currency, status=charge.status,
        idempotency_key="k" * 32, requested_at=clock.now(), locked_invoice=True,
    )  # fmt: skip
    db.session.add(twin)
    first, second = make_user("clerk", "first"), make_user("clerk", "second")
    row = db.session.get(Invoice, invoice.id)
    row.finalizing_by_id, row.finalizing_at = first.id, clock.now()
    db.session.commit()
    with pytest.raises(NotAllowed, match="First is finalizing this invoice right now"):
        finalize.refund_and_unlock(twin.id, second)
    assert db.session.scalar(select(func.count()).select_from(PaymentTransaction)) == 2
