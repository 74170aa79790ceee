"""A clerk, in Chromium, from login to an unlocked invoice: both finalization paths."""

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def log_in(page, portal_url, username):
    page.goto(f"{portal_url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("What needs action now")


def open_locked_transaction(page, portal_url, invoice_number):
    page.goto(f"{portal_url}/")
    page.click("text=Action Required")
    expect(page.locator("h1")).to_contain_text("Invoices with Action Required")
    page.click(f"text={invoice_number}")
    expect(page.locator("h1")).to_contain_text(f"Invoice {invoice_number}")
    page.locator("table.list a[href^='/transactions/']").first.click()
    expect(page.locator("h1")).to_contain_text("Transaction #")


def test_a_clerk_refunds_and_unlocks_a_locked_invoice(
    page, portal_url, make_user, make_invoice, run_for, shot
):
    make_user("clerk")
    invoice = make_invoice(token="tok_hang", amount="615.25")
    run_for()
    log_in(page, portal_url, "clerk")
    shot(page, "01-dashboard")
    open_locked_transaction(page, portal_url, invoice.number)
    expect(page.locator("text=Settle recommends")).to_contain_text(
        "Attempt Refund & Unlock Invoice"
    )
    shot(page, "02-locked-transaction")
    page.click("a:has-text('Attempt Refund & Unlock Invoice')")
    expect(page.locator("main")).to_contain_text("615.25 USD")  # the amount, before it goes out
    shot(page, "02b-confirm-refund-unlock")
    page.click("button:has-text('Confirm: Attempt Refund & Unlock Invoice')")
    expect(page.locator(".flash.success")).to_contain_text(
        "is unlocked and eligible for payment runs again"
    )
    expect(page.locator(".flash.info").first).to_contain_text("void of 615.25 USD")
    shot(page, "03-unlocked")
    page.click(f"text={invoice.number}")
    expect(page.locator("h1")).not_to_contain_text("Action Required")


def test_a_clerk_records_a_guided_manual_payment(
    page, portal_url, make_user, make_invoice, run_for, shot
):
    make_user("clerk")
    invoice = make_invoice(token="tok_review", amount="2400.00")
    run_for()
    log_in(page, portal_url, "clerk")
    open_locked_transaction(page, portal_url, invoice.number)
    page.click("text=Create manual payment")
    expect(page.locator("#amount")).to_have_value("2400.00")
    expect(page.locator("main form")).to_contain_text("In USD, the invoice's currency")
    page.fill("#amount", "1000.00")
    page.click("button:has-text('Confirm manual payment')")
    # Less than the charge, without the gateway's word on what it holds: refused.
    expect(page.locator(".flash.error")).to_contain_text(
        "1,000.00 USD is less than the charge's 2,400.00 USD: Check gateway status first"
    )
    shot(page, "04-manual-payment-partial-refused")
    page.fill("#amount", "2500.00")
    page.click("button:has-text('Confirm manual payment')")
    expect(page.locator(".flash.error")).to_contain_text("more than the invoice's balance")
    shot(page, "04-manual-payment-error")
    page.fill("#amount", "2400.00")
    page.click("button:has-text('Confirm manual payment')")
    expect(page.locator(".flash.success")).to_contain_text(
        "Payment of 2,400.00 USD recorded and allocated"
    )
    shot(page, "05-manual-payment-done")
    page.click(f"text={invoice.number}")
    expect(page.locator("dl.facts")).to_contain_text("0.00 USD")
    shot(page, "06-invoice-after")
