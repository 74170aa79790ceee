"""Two clerks in two real processes confirm the same finalization at once: exactly one effect."""

import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.payments.models import Payment
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration

CLERK = textwrap.dedent(
    """
    import sys, time
    from decimal import Decimal
    from portal import create_app
    url, txn_id, user_id, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        from portal.auth.models import User
        from portal.errors import NotAllowed
        from portal.extensions import db
        from portal.payments.models import PaymentMethodKind
        from portal.transactions import manual_payment
        user = db.session.get(User, user_id)
        time.sleep(max(0.0, start - time.time()))  # both confirm at the same instant
        try:
            manual_payment.record_manual_payment(
                txn_id, amount=Decimal("60.00"), currency="USD", method=PaymentMethodKind.WIRE,
                reference="W-1", received_on=None, actor=user,
            )
            print("paid")
        except NotAllowed as exc:
            print("refused:", exc)
    """
)


@pytest.mark.parametrize("round_", range(3))
def test_two_processes_confirming_one_manual_payment_make_one_payment(
    app, make_invoice, make_user, run_for, round_
):
    invoice = make_invoice(token="tok_review", amount="60.00")
    run_for()
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )
    users = [make_user("clerk", f"clerk{i}") for i in (1, 2)]
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    start = time.time() + 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLERK, url, str(charge.id), str(u.id), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for u in users
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    answers = [out.strip().splitlines()[-1] if out.strip() else err for out, err in outputs]
    assert sorted(a.split(":")[0] for a in answers) == ["paid", "refused"], answers
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
    assert db.session.scalar(select(Payment.amount)) == Decimal("60.00")
