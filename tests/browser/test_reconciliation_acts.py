"""A clerk, in Chromium, follows what reconciliation found: a charge Settle took as declined that
the gateway captured is locked, its page says why and what to do, and Refund & Unlock ends it."""

import uuid

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.gateways.base import GatewayConfig, GatewayRequest
from portal.gateways.registry import plugin
from portal.money import Money
from portal.reconciliation import service as reconciliation
from portal.sandbox.server import sandbox_credentials
from portal.transactions import calls
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


@pytest.mark.parametrize("width", [1280, 1024, 390])
def test_a_clerk_corrects_a_booking_the_gateway_refunded_in_part(
    page, portal_url, make_user, make_invoice, run_for, sandbox, stripe_gateway, shot, width
):
    page.set_viewport_size({"width": width, "height": 900})
    make_user("clerk")
    supervisor = make_user("supervisor")
    invoice = make_invoice(amount="100.00", gateway=stripe_gateway)
    run = run_for(actor=supervisor)
    (charge,) = calls.charges_of(invoice.id)
    stripe = plugin(
        "stripe", GatewayConfig(sandbox.url_for("stripe"), sandbox_credentials("stripe"))
    )
    refund = GatewayRequest(
        "refund", uuid.uuid4().hex, invoice.number, Money.parse("30.00", "USD"),
        reference=charge.provider_reference,
    )  # fmt: skip
    assert stripe.refund(refund).status.value == "Success"  # in Stripe's dashboard, say
    report = reconciliation.reconcile(supervisor, run=run)
    db.session.commit()
    log_in(page, portal_url, "clerk")
    page.goto(f"{portal_url}/reconciliation/{report.id}")
    main = page.locator("main")
    expect(main).to_contain_text("Partly refunded at the gateway, 30.00 USD of 100.00 USD")
    expect(main).to_contain_text(f"Open: invoice {invoice.number} is locked")
    shot(page, f"correct-01-report-{width}")
    page.locator("main a[href^='/transactions/']").first.click()
    expect(main).to_contain_text("Settle recommends: Correct the booking")
    expect(main).to_contain_text("the gateway holds 70.00 USD (refunded 30.00 USD of 100.00 USD)")
    shot(page, f"correct-02-transaction-{width}")
    page.click("button:has-text('Check gateway status')")
    page.click("a:has-text('Correct the booking')")
    expect(page.locator("#held")).to_have_value("70.00")
    page.fill("#reason", "30.00 refunded at Stripe as a service credit")
    shot(page, f"correct-03-form-{width}")
    page.click("button:has-text('Correct the booking')")
    expect(page.locator(".flash.success")).to_contain_text("30.00 USD of the payment is reversed")
    expect(page.locator(".flash.success")).to_contain_text("owes 30.00 USD again")
    shot(page, f"correct-04-corrected-{width}")
    page.goto(f"{portal_url}/reconciliation/{report.id}")
    expect(main).to_contain_text("Resolved: Booking corrected by Clerk")
    page.goto(f"{portal_url}/payments/{charge.payment.id}")
    expect(main).to_contain_text("Reversals")
    expect(main).to_contain_text("Settle holds 70.00 USD of it")
    shot(page, f"correct-05-payment-{width}")
