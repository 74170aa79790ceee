"""Two supervisors allocate one payment's free money to two invoices at the same moment (issue 26,
item 9), in two real processes: the payment is locked as well as the invoice, so the second sees
what the first allocated, and the payment is never allocated past its amount."""

import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.payments import service as payments
from portal.payments.models import Allocation, PaymentMethodKind

pytestmark = pytest.mark.integration

SUPERVISOR = textwrap.dedent(
    """
    import sys, time
    from decimal import Decimal
    from portal import create_app
    url, payment_id, invoice_id, user_id, start, hold = sys.argv[1:7]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        from portal.auth.models import User
        from portal.errors import DomainError
        from portal.extensions import db
        from portal.payments import service as payments
        real = payments.allocate
        def slow(*args, **kwargs):  # read the free amount, then take a while before writing
            time.sleep(float(hold))
            return real(*args, **kwargs)
        payments.allocate = slow
        time.sleep(max(0.0, float(start) - time.time()))
        try:
            payments.allocate_remainder(int(payment_id), int(invoice_id), Decimal("60.00"),
                                        db.session.get(User, int(user_id)))
            db.session.commit()
            print("allocated")
        except DomainError as exc:
            print("refused:", exc)
    """
)


def test_one_payments_free_money_is_never_allocated_twice(app, make_invoice, make_user):
    first, second = make_invoice(amount="100.00"), make_invoice(amount="100.00")
    second.account_id = first.account_id
    payment = payments.create_payment(account_id=first.account_id, amount=Decimal("100.00"),
                                       currency="USD", method=PaymentMethodKind.WIRE,
                                       reference="W-1")  # fmt: skip
    db.session.commit()
    user = make_user("supervisor")
    start = time.time() + 3
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SUPERVISOR,
                app.config["SQLALCHEMY_DATABASE_URI"],
                str(payment.id),
                str(invoice.id),
                str(user.id),
                str(start + delay),
                str(hold),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for invoice, delay, hold in ((first, 0, 2.0), (second, 0.5, 0))
    ]
    said = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        said.append(out.strip().splitlines()[-1])
    assert sorted(s.split(":")[0] for s in said) == ["allocated", "refused"], said
    db.session.expire_all()
    allocated = db.session.scalar(select(func.sum(Allocation.amount)))
    assert allocated == Decimal("60.00")
