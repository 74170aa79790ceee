"""In Chromium: a run meets a code no mapping knows (tok_unknown); a supervisor finds it on
Gateways → Unmapped codes, copies the suggested codes.yaml entry, and marks the code reviewed."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_clerk_finalizes import log_in

pytestmark = pytest.mark.browser


def test_from_a_tok_unknown_run_to_the_copied_suggestion(
    browser, portal_url, make_user, make_invoice, run_for, shot
):
    make_user("supervisor")
    make_invoice(token="tok_unknown")
    run_for()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal_url)
    page = context.new_page()
    try:
        log_in(page, portal_url, "supervisor")
        page.click("nav >> text=Gateways")
        page.click("a:has-text('Unmapped codes')")
        card = page.locator("section.card", has_text="zz_unlisted_code")
        expect(card).to_contain_text("1 time")
        expect(card).to_contain_text("Not reviewed yet.")
        suggestion = card.locator("pre.error-box").inner_text()
        assert "zz_unlisted_code" in suggestion and "GUESSED" in suggestion
        card.locator("button:has-text('Copy the entry')").click()
        expect(card.locator("[role=status]")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == suggestion
        shot(page, "14-unmapped-copied")
        card.locator("input[name=note]").fill("asked the provider")
        card.locator("button:has-text('Mark reviewed')").click()
        expect(page.locator("body")).to_contain_text("asked the provider")
    finally:
        context.close()
