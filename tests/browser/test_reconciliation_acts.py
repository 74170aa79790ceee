"""A clerk, in Chromium, follows what reconciliation found: a charge Settle took as declined that
the gateway captured is locked, its page says why and what to do, and Refund & Unlock ends it."""

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.reconciliation import service as reconciliation
from tests.browser.test_clerk_finalizes import log_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1280, 1024, 390])
def test_a_clerk_follows_a_reconciliation_line_to_the_locked_charge(
    page, portal_url, make_user, make_invoice, run_for, shot, width
):
    page.set_viewport_size({"width": width, "height": 900})
    make_user("clerk")
    supervisor = make_user("supervisor")
    invoice = make_invoice(token="tok_decline_captured", amount="50.00")
    run = run_for(actor=supervisor)
    report = reconciliation.reconcile(supervisor, run=run)
    db.session.commit()
    log_in(page, portal_url, "clerk")
    page.goto(f"{portal_url}/reconciliation/{report.id}")
    expect(page.locator("main")).to_contain_text("Settle locked the invoice (Action Required)")
    expect(page.locator("main")).to_contain_text(f"Open: invoice {invoice.number} is locked")
    shot(page, f"recon-01-report-{width}")
    page.locator("main a[href^='/transactions/']").first.click()
    expect(page.locator("h1")).to_contain_text("Transaction #")
    main = page.locator("main")
    expect(main).to_contain_text("the gateway holds it")
    expect(main).to_contain_text("The gateway holds money for this charge that Settle has not")
    expect(main).not_to_contain_text("the next run retries it")
    shot(page, f"recon-02-transaction-{width}")
    page.click("a:has-text('Attempt Refund & Unlock Invoice')")
    page.click("button:has-text('Confirm: Attempt Refund & Unlock Invoice')")
    expect(page.locator(".flash.success")).to_contain_text("unlocked")
    shot(page, f"recon-03-unlocked-{width}")
    page.goto(f"{portal_url}/reconciliation/{report.id}")
    expect(page.locator("main")).to_contain_text("Resolved: Refund & Unlock by Clerk")
    shot(page, f"recon-04-resolved-{width}")
