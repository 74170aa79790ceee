"""Found by the money model (shrunk): a charge timed out holding 10.00 at the gateway; a clerk
checked, then booked a guided manual payment of 9.99 with a reason. The invoice unlocked owing
0.01, and the next run charged it on top: the gateway held 10.01 for a 10.00 invoice. Where the
gateway holds money of the charge, the payment is that money, all of it."""

from decimal import Decimal

import pytest

from portal.errors import DomainError
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import PaymentMethodKind
from portal.statuses import GatewayStatus
from portal.transactions import calls, finalize
from portal.transactions import manual_payment as manual

pytestmark = pytest.mark.integration
WHY = "the customer says a cent was refunded"


def _pay(charge, clerk, amount, method=PaymentMethodKind.GATEWAY):
    return manual.record_manual_payment(
        charge.id, amount=Decimal(amount), currency="USD", method=method, reference=None,
        received_on=None, actor=clerk, difference_reason=WHY,
    )  # fmt: skip


def test_a_manual_payment_is_all_the_money_the_gateway_holds_of_the_charge(
    make_invoice, run_for, make_user, sandbox
):
    invoice = make_invoice(token="tok_timeout", amount="10.00")
    clerk = make_user("clerk")
    run_for()
    (charge,) = calls.charges_of(invoice.id)
    assert charge.gateway_status is GatewayStatus.INDETERMINATE
    # Without the gateway's word, less than the charge is refused.
    with pytest.raises(DomainError, match="Check gateway status first"):
        _pay(charge, clerk, "9.99")
    db.session.rollback()
    finalize.check_gateway_status(charge.id, clerk)
    with pytest.raises(DomainError, match=r"The gateway holds 10\.00 USD of this charge"):
        _pay(charge, clerk, "9.99")
    db.session.rollback()
    # A check beside the money the gateway holds would be the customer's money held twice.
    with pytest.raises(DomainError, match="received by Gateway"):
        _pay(charge, clerk, "10.00", PaymentMethodKind.CHECK)
    db.session.rollback()
    _pay(charge, clerk, "10.00")
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.balance, invoice.corrective_action) == (Decimal("0.00"), None)
    run_for()
    assert len(calls.charges_of(invoice.id)) == 1
    assert [c["amount"] for c in sandbox.ledger.all()] == ["10.00"]


def test_a_check_that_finds_money_held_without_its_amount_is_no_word_on_what_is_held(
    make_invoice, run_for, make_user, sandbox
):
    """A finding that holds money but tells no amount: Settle does not know what is held, so it
    is neither "nothing held" nor an amount a payment or a correction may take."""
    from portal.transactions import lookups

    invoice = make_invoice(token="tok_timeout", amount="10.00")
    clerk = make_user("clerk")
    run_for()
    (charge,) = calls.charges_of(invoice.id)
    lookup, _ = finalize.check_gateway_status(charge.id, clerk)
    lookup.findings = [{**lookup.findings[0], "amount": None, "currency": None}]
    db.session.commit()
    assert lookups.held_by_check(charge).held is None
    assert not manual.holds_nothing(charge)
    with pytest.raises(DomainError, match="Check gateway status first"):
        _pay(charge, clerk, "9.99")
