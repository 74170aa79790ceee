"""The clerk's Correct the booking page: reached from a charge that reconciliation found held
for another amount than Settle booked, pre-filled only from a fresh gateway check, bad input
re-rendered with its message and nothing changed, one click counted once."""

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.reconciliation import service as reconciliation
from portal.transactions.models import PaymentTransaction


@pytest.fixture
def held(make_invoice, run_for, make_user, sandbox):
    """A paid charge that was refunded in full in the provider's portal, found by reconciliation."""
    invoice = make_invoice(amount="80.00")
    supervisor = make_user("supervisor")
    run = run_for(actor=supervisor)
    (row,) = sandbox.ledger.all()
    sandbox.ledger.refund("sandbox", row["id"], Decimal("80.00"))
    reconciliation.reconcile(supervisor, run=run)
    db.session.expire_all()
    return db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )


def _once(page: str) -> str:
    match = re.search(r'name="once"[^>]*value="([^"]+)"', page)
    assert match, "no one-time token on the page"
    return match.group(1)


def test_a_clerk_corrects_the_booking_from_the_transaction_page(client, login, make_user, held):
    login(make_user("clerk"))
    detail = client.get(f"/transactions/{held.id}").get_data(as_text=True)
    assert "Settle recommends: <strong>Correct the booking</strong>" in detail
    assert f"/transactions/{held.id}/correct-booking" in detail
    assert "Create manual payment" not in detail  # a second payment would book it twice
    # Not asked since the difference was found: nothing is pre-filled, and the page says so.
    form = client.get(f"/transactions/{held.id}/correct-booking").get_data(as_text=True)
    assert "has not been asked since the difference was found" in form
    client.post(f"/transactions/{held.id}/check-status", data={}, follow_redirects=True)
    form = client.get(f"/transactions/{held.id}/correct-booking").get_data(as_text=True)
    assert 'value="0.00"' in form and "Settle booked <strong>80.00 USD</strong>" in form
    token = _once(form)
    # Bad input: re-rendered with the message, nothing changed.
    for data, said in (
        ({"held": "abc", "reason": "refunded in the portal"}, "is not an amount"),
        ({"held": "80.01", "reason": "refunded in the portal"}, "more than the 80.00 USD"),
        ({"held": "0", "reason": "short"}, "at least 10 characters"),
        ({"held": "0", "reason": ""}, "Write why the booking changes"),
    ):
        response = client.post(
            f"/transactions/{held.id}/correct-booking", data={**data, "once": token}
        )
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and said in page, said
        token = _once(page)
        db.session.expire_all()
        assert db.session.get(Invoice, held.invoice_id).balance == 0
    done = client.post(
        f"/transactions/{held.id}/correct-booking",
        data={"held": "0.00", "reason": "Refunded in the provider's portal", "once": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "80.00 USD of the payment is reversed" in done and "the next payment run" in done
    db.session.expire_all()
    invoice = db.session.get(Invoice, held.invoice_id)
    assert (invoice.balance, invoice.corrective_action) == (Decimal("80.00"), None)
    # The same form again (a double click): refused, pointing at what was done.
    again = client.post(
        f"/transactions/{held.id}/correct-booking",
        data={"held": "0.00", "reason": "Refunded in the provider's portal", "once": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Already done by Clerk" in again, re.findall(r"flash[^>]*>([^<]*)", again)
    db.session.expire_all()
    assert db.session.get(Invoice, held.invoice_id).balance == Decimal("80.00")


def test_an_auditor_cannot_correct_a_booking(client, login, make_user, held):
    login(make_user("auditor"))
    assert client.get(f"/transactions/{held.id}/correct-booking").status_code == 403
    response = client.post(
        f"/transactions/{held.id}/correct-booking", data={"held": "0", "reason": "x" * 20}
    )
    assert response.status_code in (400, 403)
    db.session.expire_all()
    assert db.session.get(Invoice, held.invoice_id).balance == 0
