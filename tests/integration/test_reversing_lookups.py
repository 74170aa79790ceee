"""A gateway whose only lookup reverses a charge (Payeezy): Settle never asks it just to look."""

import pytest
from sqlalchemy import select

from portal.errors import NotAllowed
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.sandbox.server import sandbox_credentials
from portal.transactions import finalize
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


@pytest.fixture
def payeezy_locked(make_invoice, make_user, sandbox, run_for):
    gateway = Gateway(name="Payeezy", plugin="payeezy", base_url=sandbox.url_for("payeezy"),
                      credentials=sandbox_credentials("payeezy"), timeout_seconds=1)  # fmt: skip
    db.session.add(gateway)
    db.session.commit()
    invoice = make_invoice(token="tok_hang", gateway=gateway)
    run_for()
    return db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )


def test_check_gateway_status_is_refused_and_the_page_says_why(
    client, login, make_user, payeezy_locked, sandbox
):
    clerk = make_user("clerk")
    with pytest.raises(NotAllowed, match="cannot be asked without reversing"):
        finalize.check_gateway_status(payeezy_locked.id, clerk)
    assert [c["state"] for c in sandbox.ledger.all()] == ["unsettled"]
    login(clerk)
    page = client.get(f"/transactions/{payeezy_locked.id}").get_data(as_text=True)
    assert "Check gateway status" not in page
    assert "has no read-only status lookup" in page


def test_refund_and_unlock_reverses_the_charge_once_and_unlocks(make_user, payeezy_locked, sandbox):
    outcome = finalize.refund_and_unlock(payeezy_locked.id, make_user("clerk"))
    assert outcome.unlocked, outcome.problems
    assert [c["state"] for c in sandbox.ledger.all()] == ["voided"]
    db.session.expire_all()
    assert db.session.get(Invoice, payeezy_locked.invoice_id).corrective_action is None
