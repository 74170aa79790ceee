"""In Chromium: the clerk asks the gateway, follows the recommendation to a guided manual payment;
two pages confirming the same Refund & Unlock make one effect."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_clerk_finalizes import log_in, open_locked_transaction
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_a_settled_charge_is_paid_with_the_gateways_amount(
    page, portal_url, make_user, make_invoice, run_for, sandbox, shot
):
    make_user("clerk")
    number = make_invoice(token="tok_review", amount="2400.00").number
    run_for()
    sandbox.ledger.settle()
    log_in(page, portal_url, "clerk")
    open_locked_transaction(page, portal_url, number)
    page.click("button:has-text('Check gateway status')")
    expect(page.locator(".flash.info")).to_contain_text("The gateway says: settled.")
    expect(page.locator(".recommend")).to_contain_text("Create manual payment")
    shot(page, "08-checked-settled")
    page.click("a:has-text('Create manual payment')")
    expect(page.locator("body")).to_contain_text("as the gateway reports it")
    expect(page.locator("#amount")).to_have_value("2400.00")
    page.click("button:has-text('Confirm manual payment')")
    expect(page.locator(".flash.success")).to_contain_text("recorded and allocated")
    shot(page, "09-paid-as-settled")


def test_two_pages_confirming_one_refund_and_unlock_make_one_effect(
    browser, portal_url, make_user, make_invoice, run_for, sandbox, shot
):
    make_user("clerk")
    make_user("clerk", "clerk2")
    number = make_invoice(token="tok_hang", amount="615.25").number
    run_for()
    pages = []
    for username in ("clerk", "clerk2"):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        tab.goto(f"{portal_url}/login")
        tab.fill("#username", username)
        tab.fill("#password", PASSWORD)
        tab.click("button[type=submit]")
        open_locked_transaction(tab, portal_url, number)
        tab.click("a:has-text('Attempt Refund & Unlock Invoice')")
        pages.append(tab)
    # Both pages show the confirmation; both clerks confirm.
    for tab in pages:
        tab.locator("button:has-text('Confirm: Attempt Refund & Unlock')").click(no_wait_after=True)
    for tab in pages:
        tab.wait_for_load_state()
        expect(tab.locator(".flash").first).to_be_visible()
    texts = [tab.locator(".flashes").inner_text() for tab in pages]
    assert sum("is unlocked and eligible" in t for t in texts) == 1, texts
    assert any("Already done by" in t or "is finalizing this invoice" in t for t in texts), texts
    assert [c["state"] for c in sandbox.ledger.all()] == ["voided"]
    shot(pages[0], "10-race-first")
    shot(pages[1], "11-race-second")
    for tab in pages:
        tab.context.close()
