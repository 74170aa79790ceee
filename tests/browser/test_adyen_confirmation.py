"""In Chromium: a clerk attempts a Refund & Unlock of an Adyen payment; Adyen only takes the
reversal ("received"), the page says it waits for Adyen's confirmation, and when the sandbox's
CANCEL_OR_REFUND webhook arrives the invoice unlocks by itself, recorded as the clerk's."""

import time

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.sandbox.server import register_webhook
from tests.browser.test_clerk_finalizes import log_in, open_locked_transaction

pytestmark = pytest.mark.browser


def test_a_refund_and_unlock_finishes_when_adyen_confirms_it(
    page, portal_url, sandbox, adyen_gateway, make_user, make_invoice, run_for, shot
):
    register_webhook(sandbox.url, "adyen", f"{portal_url}/webhooks/{adyen_gateway.id}")
    make_user("clerk")
    invoice = make_invoice(token="shopper_1|tok_review", amount="1200.00", gateway=adyen_gateway)
    run_for()
    log_in(page, portal_url, "clerk")
    open_locked_transaction(page, portal_url, invoice.number)
    page.click("a:has-text('Attempt Refund & Unlock Invoice')")
    page.click("button:has-text('Confirm: Attempt Refund & Unlock Invoice')")
    expect(page.locator("main")).to_contain_text("waiting for Adyen's confirmation")
    expect(page.locator("main")).to_contain_text("unlocks by itself")
    shot(page, "15-adyen-waiting-for-confirmation")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        db.session.expire_all()
        if db.session.get(Invoice, invoice.id).corrective_action is None:
            break
        time.sleep(0.2)
    page.goto(f"{portal_url}/invoices/{invoice.id}")
    expect(page.locator("h1")).not_to_contain_text("Action Required")
    expect(page.locator("main")).to_contain_text("Refund & Unlock")
    shot(page, "16-adyen-confirmed-unlocked")
