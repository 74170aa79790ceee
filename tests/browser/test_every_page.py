"""Every page at 1280, 1024 and 390 px: nothing cut off, the navigation folds on a phone, and
axe-core finds no serious or critical accessibility issue. Screenshots land in tests/artifacts/."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from portal.api import tokens as api_tokens
from portal.auth.models import User
from portal.extensions import db
from portal.reconciliation import service as reconciliation
from portal.runs.models import PaymentRun
from portal.transactions import finalize
from portal.transactions.models import PaymentTransaction
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_clerk_finalizes import log_in

pytestmark = pytest.mark.browser

WIDTHS = [1280, 1024, 390]
axe = Axe()


@pytest.fixture
def world(make_user, make_invoice, run_for, sandbox):
    """A supervisor's view of a working day: a run with every kind of answer, checks, a payment."""
    supervisor = make_user("supervisor")
    clerk = make_user("clerk")
    make_user("admin")
    tokens = ["tok_approve", "tok_decline", "tok_cvc", "tok_closed", "tok_review", "tok_hang",
              "tok_misconfigured", "tok_unknown", "tok_lost", "tok_short", "tok_twin",
              "tok_decline_captured"]  # fmt: skip
    for n, token in enumerate(tokens):
        make_invoice(token=token, amount=f"{1999 + n * 250}.99")
    run_id = run_for(actor=supervisor).id
    charges = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.operation == "charge")
    ).all()
    held = next(c for c in charges if c.status == "Requires Review")
    ids = {"run": run_id, "held": held.id, "invoice": held.invoice_id}
    finalize.check_gateway_status(held.id, clerk)
    run = db.session.get(PaymentRun, run_id)
    ids["report"] = reconciliation.reconcile(clerk, run=run).id
    api_tokens.create(db.session.get(User, 2), "billing system", supervisor)
    db.session.commit()
    db.session.remove()
    return ids


def pages(w) -> list[tuple[str, str]]:
    return [
        ("dashboard", "/"),
        ("runs", "/runs/"),
        ("run", f"/runs/{w['run']}"),
        ("run-new", "/runs/new"),
        ("invoices", "/invoices/"),
        ("action-required", "/invoices/?filter=action-required"),
        ("invoice", f"/invoices/{w['invoice']}"),
        ("import", "/invoices/import/"),
        ("payments", "/payments/"),
        ("payment", "/payments/1"),
        ("transactions", "/transactions/"),
        ("gateway-checks", "/transactions/?kind=checks"),
        ("transaction", f"/transactions/{w['held']}"),
        ("refund-unlock", f"/transactions/{w['held']}/refund-unlock"),
        ("manual-payment", f"/transactions/{w['held']}/manual-payment"),
        ("accounts", "/accounts/"),
        ("account", "/accounts/1"),
        ("gateways", "/gateways/"),
        ("mapping", "/gateways/mappings/sandbox"),
        ("gateway-edit", "/gateways/1/edit"),
        ("policy", "/policy/"),
        ("reconciliations", "/reconciliation/"),
        ("reconciliation", f"/reconciliation/{w['report']}"),
        ("reconciliation-matched", f"/reconciliation/{w['report']}?kind=matched"),
        ("audit", "/audit/"),
        ("users", "/users/"),
        ("user", "/users/2"),
        ("password", "/account/password"),
    ]


def serious(page) -> list[str]:
    results = axe.run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_every_page_reads_at_every_width_with_no_serious_accessibility_issue(
    browser, portal_url, world
):
    problems = []
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto(f"{portal_url}/login")
        problems += [f"login @{width}: {p}" for p in serious(page)]
        page.screenshot(path=str(ARTIFACTS / f"w{width}-login.png"), full_page=True)
        log_in(page, portal_url, "admin")  # an admin sees every page
        for name, path in pages(world):
            response = page.goto(f"{portal_url}{path}")
            assert response.status == 200, (path, response.status)
            # Nothing is cut off: only a table may scroll, inside its own box.
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                problems.append(f"{name} @{width}: the page is {overflow} px wider than the screen")
            problems += [f"{name} @{width}: {p}" for p in serious(page)]
            page.screenshot(path=str(ARTIFACTS / f"w{width}-{name}.png"), full_page=True)
        context.close()
    assert problems == [], "\n".join(problems)


def test_on_a_phone_the_navigation_folds_behind_a_menu_button(browser, portal_url, world):
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    log_in(page, portal_url, "supervisor")
    nav = page.locator("#site-nav")
    expect(nav).to_be_hidden()
    page.click("button.menu-toggle")
    expect(nav).to_be_visible()
    expect(page.locator(".menu-toggle")).to_have_attribute("aria-expanded", "true")
    page.screenshot(path=str(ARTIFACTS / "w390-menu-open.png"), full_page=True)
    nav.locator("text=Payment runs").click()
    expect(page.locator("#site-nav a[aria-current=page]")).to_have_text("Payment runs")
    context.close()


def test_a_skip_link_leads_past_the_navigation(page, portal_url, world):
    log_in(page, portal_url, "clerk")
    page.keyboard.press("Tab")
    expect(page.locator("a.skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))  # waits: the jump is not instant under load
