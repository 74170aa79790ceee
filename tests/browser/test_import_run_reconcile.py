"""A new team's first month-end, in Chromium: import the shipped example, see its bad rows named
by line, confirm, run a payment run on it, and open the run's reconciliation report with every
kind of line the sandbox can make."""

import pytest
from playwright.sync_api import expect

from portal.imports import service
from tests.browser.test_clerk_finalizes import log_in

pytestmark = pytest.mark.browser


def test_import_then_run_then_reconcile(page, portal_url, make_user, make_gateway, sandbox, shot):
    make_gateway(name="Sandbox")
    make_user("supervisor")
    page.set_default_timeout(180_000)  # the run charges about a thousand invoices in the request
    log_in(page, portal_url, "supervisor")
    page.click("nav >> text=Invoices")
    page.click("text=Import")
    expect(page.locator("h1")).to_contain_text("Import")
    page.set_input_files("#file", str(service.EXAMPLE))
    page.click("button:has-text('Preview the import')")
    expect(page.locator("h2").first).to_contain_text("Preview: nothing is written yet")
    refused = page.locator("table.list").first
    for line in (1397, 1398, 1399, 1400, 1401):
        expect(refused).to_contain_text(str(line))
    shot(page, "import-01-preview")
    page.click("button:has-text('Confirm the import')")
    expect(page.locator(".flash.success")).to_contain_text("1395 created")

    page.click("nav >> text=Payment runs")
    page.click("text=Start a payment run")
    page.click("button:has-text('Start payment run')")
    expect(page.locator("h1")).to_contain_text("Payment run #")
    expect(page.locator("#run-state")).to_contain_text("Completed")
    shot(page, "import-02-run")

    page.click("button:has-text('Reconcile with the gateway')")
    expect(page.locator("h1")).to_contain_text("Reconciliation #1: Payment run #")
    counts = page.locator("dl.counts")
    for kind in ("Matched", "At the gateway, unknown to Settle", "In Settle, not at the gateway",
                 "Amount or currency differs", "Status differs"):  # fmt: skip
        number = counts.locator(f"div:has(dt:text-is('{kind}')) dd").inner_text()
        assert int(number) > 0, kind
    lines = page.locator("#lines tbody tr")
    expect(lines.first).to_be_visible()
    shot(page, "import-03-report")
    # Each line leads to its transaction.
    page.locator("#lines a[href^='/transactions/']").first.click()
    expect(page.locator("h1")).to_contain_text("Transaction #")
    page.go_back()
    with page.expect_download() as download:
        page.click("text=Export every line (CSV)")
    assert download.value.suggested_filename == "settle-reconciliation-1.csv"
