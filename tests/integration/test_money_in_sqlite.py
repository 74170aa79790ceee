"""Balances stay exact to the cent on the embedded SQLite, never drifting through binary floats."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import PaymentMethodKind
from portal.transactions import manual_payment
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


def test_a_partial_manual_payment_then_a_charge_of_the_rest_pays_to_the_cent(
    make_invoice, make_user, run_for
):
    invoice = make_invoice(token="tok_review", amount="100.30")
    run_for()
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )
    manual_payment.record_manual_payment(
        charge.id, amount=Decimal("50.10"), currency="USD", method=PaymentMethodKind.CHECK,
        reference="CHK-1", received_on=None, actor=make_user("clerk"),
        difference_reason="Half was paid by check; the card is charged for the rest",
    )  # fmt: skip
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).balance == Decimal("50.20")
    method = db.session.get(Invoice, invoice.id).account.payment_methods[0]
    method.token = "tok_approve"
    db.session.commit()
    run = run_for(currency="USD")
    assert run.success_count == 1
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).balance == Decimal("0")
