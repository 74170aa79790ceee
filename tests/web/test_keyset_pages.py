"""Lists that grow with the business turn pages by keyset: walking Next from the first page and
Previous from the last meets every row once, in the list's own order (the export's), for every
sort, ties and empty values included; a link that no longer reads says so and starts over."""

import html
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.pagination import STALE_LINK
from portal.statuses import ACTION_REQUIRED
from portal.transactions.models import PaymentTransaction


def _links(page: str) -> dict[str, str]:
    found = {}
    for match in re.finditer(
        r'<a href="([^"]+)"[^>]*>(« First|← Previous|Next →|Last »)</a>', page
    ):
        found[match.group(2)] = html.unescape(match.group(1))
    return found


def _walk(client, url: str, pattern: str, start: str, step: str) -> list[str]:
    """Every row's name met from the page at `start`, following `step` to the end."""
    seen, url, pages = [], f"{url}&{start}" if start else url, 0
    while url and pages < 50:
        page = client.get(url).get_data(as_text=True)
        rows = re.findall(pattern, page)
        # Going back, the first page is a full one, so it may repeat rows of the page after it.
        seen = seen + rows if step == "Next →" else [r for r in rows if r not in seen] + seen
        url, pages = _links(page).get(step), pages + 1
    return seen


@pytest.fixture
def invoices(app, make_invoice, monkeypatch):
    """Seven invoices with ties in due date and balance, and three locked at different times."""
    monkeypatch.setitem(app.config, "SETTLE_PAGE_SIZE", 2)
    made = []
    for n, (due, balance) in enumerate([(-3, "10"), (-1, "30"), (-3, "10"), (-2, "20"),
                                        (-1, "30"), (-5, "50"), (-3, "10")]):  # fmt: skip
        invoice = make_invoice(due_days=due, amount=balance)
        if n in (1, 3, 4):
            invoice.corrective_action = ACTION_REQUIRED
            invoice.locked_at = datetime(2026, 12, 1) + timedelta(hours=n % 2)  # two alike
        made.append(invoice)
    db.session.commit()
    return made


@pytest.mark.parametrize("sort", ["due", "balance", "number", "created", "locked"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("tab", ["all", "action-required"])
def test_walking_the_invoices_meets_each_once_in_the_exports_order(
    client, login, make_user, invoices, sort, direction, tab
):
    login(make_user("auditor"))
    url = f"/invoices/?filter={tab}&sort={sort}&dir={direction}"
    export = client.get(f"/invoices/export.csv?filter={tab}&sort={sort}&dir={direction}")
    expected = re.findall(r"^(INV-\d{4}),", export.get_data(as_text=True), re.MULTILINE)
    assert len(expected) == (3 if tab == "action-required" else 7)
    pattern = r">(INV-\d{4})</a></td>"
    assert _walk(client, url, pattern, "", "Next →") == expected
    assert _walk(client, url, pattern, "end=last", "← Previous") == expected
    db.session.remove()


def _charges(invoices, amounts):
    for n, amount in enumerate(amounts):
        db.session.add(PaymentTransaction(
            operation="charge", invoice_id=invoices[n % len(invoices)].id, gateway_id=1,
            amount=Decimal(amount), currency="USD", idempotency_key=f"k-{n}", status="Decline",
        ))  # fmt: skip
    db.session.commit()


@pytest.mark.parametrize("sort", ["requested", "amount"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_walking_the_transactions_meets_each_once_in_the_exports_order(
    client, login, make_user, invoices, sort, direction
):
    _charges(invoices, ["5", "7", "5", "9", "7", "5", "1"])
    login(make_user("auditor"))
    url = f"/transactions/?sort={sort}&dir={direction}"
    export = client.get(f"/transactions/export.csv?sort={sort}&dir={direction}")
    expected = ["#" + i for i in re.findall(r"^(\d+),charge", export.get_data(as_text=True), re.M)]
    assert len(expected) == 7
    pattern = r">(#\d+)</a></td>"
    assert _walk(client, url, pattern, "", "Next →") == expected
    assert _walk(client, url, pattern, "end=last", "← Previous") == expected
    # A filter is kept from page to page.
    declines = _walk(client, url + "&min=6", pattern, "", "Next →")
    assert len(declines) == 3
    db.session.remove()


def test_the_pager_says_how_many_and_where_it_is(client, login, make_user, invoices):
    login(make_user("auditor"))
    first = client.get("/invoices/").get_data(as_text=True)
    assert "2 shown of 7" in first
    links = _links(first)
    assert set(links) == {"Next →", "Last »"}
    second = client.get(links["Next →"]).get_data(as_text=True)
    assert set(_links(second)) == {"« First", "← Previous", "Next →", "Last »"}
    last = client.get(links["Last »"]).get_data(as_text=True)
    assert set(_links(last)) == {"« First", "← Previous"}
    db.session.remove()


def test_a_long_list_counts_up_to_its_cap(client, login, make_user, invoices, monkeypatch):
    monkeypatch.setattr("portal.pagination.KeysetPage.cap", 5)
    login(make_user("auditor"))
    assert "2 shown of more than 5" in client.get("/invoices/").get_data(as_text=True)
    db.session.remove()


@pytest.mark.parametrize(
    "key",
    ["garbage!", "bm90IGpzb24", "WzEsMiwzXQ", "WyJ4Il0", "WzE4NDQ2NzQ0MDczNzA5NTUxNjE2XQ",
     "WyJOYU4iLDFd", "WzEuNSwxXQ"],
)  # fmt: skip
def test_a_page_link_that_does_not_read_starts_over_with_a_word(
    client, login, make_user, invoices, key
):
    login(make_user("auditor"))
    for url in (f"/invoices/?after={key}", f"/transactions/?before={key}&sort=amount",
                f"/invoices/?sort=balance&after={key}", f"/audit/?after={key}"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.get_data(as_text=True)
        assert html.escape(STALE_LINK, quote=True) in page or STALE_LINK in page, url
    db.session.remove()


def test_a_key_past_the_end_shows_the_last_page(client, login, make_user, invoices):
    login(make_user("auditor"))
    last = client.get("/invoices/?end=last").get_data(as_text=True)
    beyond = client.get("/invoices/?after=WzFd").get_data(as_text=True)  # after id 1, going down
    assert re.findall(r">(INV-\d{4})</a></td>", beyond) == re.findall(
        r">(INV-\d{4})</a></td>", last
    )
    db.session.remove()
