"""The clerk's finalization pages: buttons, the manual payment form, and who may use them."""

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.transactions.models import PaymentTransaction


@pytest.fixture
def locked(make_invoice, run_for):
    invoice = make_invoice(token="tok_review", amount="250.00")
    run_for()
    return db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )


def invoice_of(txn):
    db.session.expire_all()
    return db.session.get(Invoice, txn.invoice_id)


def once_from(client, path):
    """The one-time token of the money-action form on a page, as the browser would send it."""
    match = re.search(r'name="once"[^>]*value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"no one-time token on {path}"
    return match.group(1)


def test_a_clerk_refunds_and_unlocks(client, login, make_user, locked):
    login(make_user("clerk"))
    confirm = client.get(f"/transactions/{locked.id}/refund-unlock").get_data(as_text=True)
    assert "<strong>250.00 USD</strong>" in confirm and "Confirm: Attempt Refund" in confirm
    token = once_from(client, f"/transactions/{locked.id}/refund-unlock")
    response = client.post(
        f"/transactions/{locked.id}/refund-unlock", data={"once": token}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "is unlocked and eligible for payment runs again" in page
    assert "void of 250.00 USD" in page
    assert invoice_of(locked).corrective_action is None
    # The same form again (a double click, the back button): refused, pointing at what happened.
    again = client.post(
        f"/transactions/{locked.id}/refund-unlock", data={"once": token}, follow_redirects=True
    )
    assert "Already done by Clerk at" in again.get_data(as_text=True)
    assert "Refund &amp; Unlock by Clerk" in again.get_data(as_text=True)
    assert f'href="/transactions/{locked.id}#who-did-what">See who did what' in again.get_data(
        as_text=True
    )


def test_a_refund_without_its_one_time_token_changes_nothing(client, login, make_user, locked):
    login(make_user("clerk"))
    page = client.post(f"/transactions/{locked.id}/refund-unlock", follow_redirects=True)
    assert "This form is stale" in page.get_data(as_text=True)
    assert invoice_of(locked).corrective_action == "Action Required"


def test_a_clerk_checks_the_gateway_status(client, login, make_user, locked):
    login(make_user("clerk"))
    page = client.post(f"/transactions/{locked.id}/check-status", follow_redirects=True).get_data(
        as_text=True
    )
    assert "The gateway says: unsettled." in page
    assert "the gateway holds <strong>unsettled</strong>" in page


def test_the_manual_payment_form_is_prefilled_from_the_transaction(
    client, login, make_user, locked
):
    login(make_user("clerk"))
    page = client.get(f"/transactions/{locked.id}/manual-payment").get_data(as_text=True)
    assert 'value="250.00"' in page
    assert "In USD, the invoice&#39;s currency" in page
    assert 'name="currency"' not in page  # the invoice's currency, not the clerk's choice
    assert f'value="{locked.provider_reference}"' in page


def test_a_clerk_records_a_manual_payment(client, login, make_user, locked):
    login(make_user("clerk"))
    path = f"/transactions/{locked.id}/manual-payment"
    data = {"amount": "250.00", "method": "Gateway", "reference": "ch_x",
            "once": once_from(client, path)}  # fmt: skip
    response = client.post(path, data=data, follow_redirects=True)
    assert "Payment of 250.00 USD recorded and allocated" in response.get_data(as_text=True)
    invoice = invoice_of(locked)
    assert (invoice.balance, invoice.corrective_action) == (Decimal("0"), None)
    resubmitted = client.post(path, data=data, follow_redirects=True).get_data(as_text=True)
    assert "This form was already submitted at" in resubmitted
    assert len(db.session.scalars(select(Payment)).all()) == 1
    again = client.get(path, follow_redirects=True).get_data(as_text=True)
    assert "Already done by Clerk" in again
    assert f'href="/invoices/{invoice.id}#payments">See the payment on invoice' in again


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": ""}, "Give the amount received"),
        ({"amount": "abc"}, "is not an amount"),
        ({"amount": "1e2"}, "write digits, as in 1234.50"),
        ({"amount": "0"}, "must be more than zero"),
        ({"amount": "250.001"}, "2 decimal places at most"),
        ({"amount": "300"}, "more than the invoice&#39;s balance"),
        ({"amount": "250", "method": "Bitcoin"}, "Not a valid choice"),
        ({"amount": "250", "received_on": "2999-01-01"}, "cannot be in the future"),
        ({"amount": "250", "received_on": "31/12/2026"}, "Not a valid date value"),
        ({"amount": "100"}, "100.00 USD is not the 250.00 USD that Settle charged"),
        ({"amount": "100", "difference_reason": "the rest came by check"}, "confirm that the"),
        ({"amount": "100", "amount_differs": "y"}, "write why"),
    ],
)
def test_a_bad_manual_payment_rerenders_and_changes_nothing(
    client, login, make_user, locked, data, message
):
    login(make_user("clerk"))
    path = f"/transactions/{locked.id}/manual-payment"
    data = {"method": "Check", "once": once_from(client, path), **data}
    response = client.post(path, data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert invoice_of(locked).corrective_action == "Action Required"
    assert db.session.scalars(select(Payment)).all() == []


def test_an_auditor_cannot_finalize(client, login, make_user, locked):
    login(make_user("auditor"))
    assert client.post(f"/transactions/{locked.id}/refund-unlock").status_code == 403
    assert client.post(f"/transactions/{locked.id}/check-status").status_code == 403
    assert client.get(f"/transactions/{locked.id}/manual-payment").status_code == 403
    response = client.post(f"/transactions/{locked.id}/manual-payment", data={"amount": "250"})
    assert response.status_code == 403
    assert invoice_of(locked).corrective_action == "Action Required"
    assert db.session.scalars(select(Payment)).all() == []


def test_finalizing_a_transaction_that_does_not_lock_is_refused(
    client, login, make_user, make_invoice, run_for
):
    login(make_user("clerk"))
    make_invoice(token="tok_approve")
    run_for()
    page = client.post(
        "/transactions/1/refund-unlock", data={"once": "x"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "A Success transaction did not lock its invoice" in page
    assert client.get("/transactions/999/manual-payment").status_code == 404


def test_a_settled_charge_is_recommended_for_a_manual_payment_prefilled_from_the_gateway(
    client, login, make_user, locked, sandbox
):
    login(make_user("clerk"))
    sandbox.ledger.settle()
    # The gateway settled less than Settle asked for (a partial approval, say).
    with sandbox.ledger._tx() as ledger_db:
        ledger_db.execute("UPDATE charges SET amount = '240.00'")
    page = client.post(f"/transactions/{locked.id}/check-status", follow_redirects=True).get_data(
        as_text=True
    )
    assert "Settle recommends: <strong>Create manual payment</strong>" in page
    assert "240.00 USD" in page
    form = client.get(f"/transactions/{locked.id}/manual-payment").get_data(as_text=True)
    assert "as the gateway reports it" in form
    assert 'value="240.00"' in form
    assert "differs from Settle's record of 250.00 USD" in form


def test_without_a_settled_charge_the_form_says_it_holds_settles_own_record(
    client, login, make_user, locked
):
    login(make_user("clerk"))
    form = client.get(f"/transactions/{locked.id}/manual-payment").get_data(as_text=True)
    assert "has not reported a settled charge" in form
    assert 'value="250.00"' in form


def test_a_differing_amount_with_the_choice_and_a_reason_is_recorded(
    client, login, make_user, locked
):
    login(make_user("clerk"))
    path = f"/transactions/{locked.id}/manual-payment"
    data = {"amount": "100", "method": "Check", "amount_differs": "y",
            "difference_reason": "150.00 was refunded by the bank", "once": once_from(client, path)}  # fmt: skip
    page = client.post(path, data=data, follow_redirects=True).get_data(as_text=True)
    assert "Payment of 100.00 USD recorded and allocated" in page
    assert invoice_of(locked).balance == Decimal("150.00")


def test_a_charge_that_never_left_is_unlocked_from_its_page(
    client, login, make_user, make_invoice, make_gateway, run_for
):
    invoice = make_invoice(gateway=make_gateway(name="Down", url="http://127.0.0.1:9"))
    run_for()
    txn = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )
    login(make_user("clerk"))
    page = client.get(f"/transactions/{txn.id}").get_data(as_text=True)
    assert "Settle recommends: <strong>Unlock Invoice (never sent)</strong>" in page
    assert "The request never reached the gateway, so no money moved" in page
    token = once_from(client, f"/transactions/{txn.id}")
    done = client.post(f"/transactions/{txn.id}/unlock-unsent", data={"once": token},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "the gateway was not asked, since the request never reached it" in done
    assert invoice_of(txn).corrective_action is None
    again = client.post(f"/transactions/{txn.id}/unlock-unsent", data={"once": token},
                        follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "already submitted" in again or "Already done by Clerk" in again


def test_an_auditor_cannot_unlock_a_charge_that_never_left(client, login, make_user, locked):
    login(make_user("auditor"))
    assert client.post(f"/transactions/{locked.id}/unlock-unsent").status_code == 403
    assert invoice_of(locked).corrective_action == "Action Required"
