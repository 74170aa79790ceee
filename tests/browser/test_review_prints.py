"""The printable transaction review fits on one A4 and one Letter page."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from portal.extensions import db
from portal.transactions import finalize
from portal.transactions.models import PaymentTransaction
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_clerk_finalizes import log_in

pytestmark = pytest.mark.browser


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


def test_an_auditor_prints_a_one_page_review(
    page, portal_url, make_user, make_invoice, run_for, shot
):
    make_user("auditor")
    clerk = make_user("clerk")
    number = make_invoice(token="tok_hang", amount="615.25").number
    run_for()
    charge_id = 1
    # Six gateway calls: the charge, two checks, and Refund & Unlock's lookup, void and the
    # invoice-wide lookup.
    finalize.check_gateway_status(charge_id, clerk)
    finalize.check_gateway_status(charge_id, clerk)
    finalize.refund_and_unlock(charge_id, clerk)
    assert db.session.scalar(select(func.count()).select_from(PaymentTransaction)) == 6
    db.session.remove()

    log_in(page, portal_url, "auditor")
    page.goto(f"{portal_url}/transactions/{charge_id}")
    page.click("text=Printable review")
    expect(page.locator("h1")).to_contain_text(f"Transaction review #{charge_id}")
    expect(page.locator("body")).to_contain_text(number)
    expect(page.locator("body")).to_contain_text("Refund & Unlock by Clerk")
    expect(page.locator("body")).to_contain_text("sandbox/codes.yaml line")
    expect(page.locator("table").first.locator("tbody tr")).to_have_count(6)
    expect(page.locator("body")).not_to_contain_text("earlier call")
    shot(page, "07-review")
    for paper in ["A4", "Letter"]:
        pdf = page.pdf(format=paper, print_background=False)
        (ARTIFACTS / f"review-{paper}.pdf").write_bytes(pdf)
        assert page_count(pdf) == 1, f"the review takes {page_count(pdf)} {paper} pages"
