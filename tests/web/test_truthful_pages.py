"""Pages say what is true: gateway checks are not payments, counts agree with their lists, the
gateway's state is the one after the last call, and people read sentences, not internal names."""

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.transactions import finalize
from portal.transactions.models import PaymentTransaction


@pytest.fixture
def checked_world(make_invoice, run_for, make_user):
    """A success, a decline, and a held charge the clerk checked three times."""
    clerk = make_user("clerk")
    make_invoice(token="tok_approve")
    make_invoice(token="tok_decline")
    held = make_invoice(token="tok_review")
    run_for()
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == held.id)
    )
    for _ in range(3):
        finalize.check_gateway_status(charge.id, clerk)
    return charge


def rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [r for r in body.split("<tr>")[1:] if "transactions/" in r]


def test_a_gateway_check_is_never_listed_as_a_successful_payment(
    client, login, make_user, checked_world
):
    login(make_user("auditor"))
    successes = client.get("/transactions/?status=Success").get_data(as_text=True)
    assert len(rows(successes)) == 1  # the one charge that moved money, not the three lookups
    assert "gateway check" not in successes
    payments = client.get("/transactions/").get_data(as_text=True)
    assert len(rows(payments)) == 3 and "<td>lookup</td>" not in payments
    checks = client.get("/transactions/?kind=checks").get_data(as_text=True)
    assert len(rows(checks)) == 3
    assert checks.count("gateway check</span> unsettled") == 3
    assert "status-success" not in checks
    everything = client.get("/transactions/?kind=all").get_data(as_text=True)
    assert len(rows(everything)) == 6


def test_a_gateway_checks_page_shows_its_finding_not_a_payment_status(
    client, login, make_user, checked_world
):
    login(make_user("auditor"))
    lookup = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.operation == "lookup").limit(1)
    )
    page = client.get(f"/transactions/{lookup.id}").get_data(as_text=True)
    assert f"Gateway check #{lookup.id}" in page
    assert "A gateway check moves no money" in page
    assert "status-success" not in page
    assert "Create a payment and allocate it" not in page


def test_the_transaction_filters_are_kept_in_the_url_and_bad_values_are_said(
    client, login, make_user, checked_world
):
    login(make_user("auditor"))
    page = client.get("/transactions/?invoice=INV-0002&min=50&max=150&sort=amount&dir=asc")
    text = page.get_data(as_text=True)
    assert len(rows(text)) == 1 and "INV-0002" in text
    assert 'aria-sort="ascending"' in text
    # The pager and the sort links keep the filters.
    assert re.search(r'href="[^"]*invoice=INV-0002[^"]*sort=amount', text)
    bad = client.get("/transactions/?since=yesterday&min=1e2").get_data(as_text=True)
    assert "From: &#39;yesterday&#39; is not a date (YYYY-MM-DD); left out" in bad
    assert "Amount from: &#39;1e2&#39; is not an amount" in bad
    assert len(rows(bad)) == 3


def test_after_a_void_the_finalize_panel_says_voided_not_unsettled(
    client, login, make_user, checked_world
):
    finalize.refund_and_unlock(checked_world.id, None)
    login(make_user("auditor"))
    page = client.get(f"/transactions/{checked_world.id}").get_data(as_text=True)
    assert "the gateway holds it <strong>voided</strong>" in page
    assert "the gateway holds <strong>unsettled</strong>" not in page


def test_the_dashboard_counts_every_locked_invoice_and_agree_with_the_lists(
    client, login, make_user, make_invoice, run_for
):
    for token in ["tok_approve", "tok_review", "tok_hang", "tok_misconfigured", "tok_refuse"]:
        make_invoice(token=token)
    run = run_for()
    login(make_user("auditor"))
    dashboard = client.get("/").get_data(as_text=True)
    # Four locked: Requires Review, Indeterminate and two System Fail.
    assert '<span class="count">4</span>' in dashboard
    run_row = dashboard.split(f'href="/runs/{run.id}"')[1].split("</tr>")[0]
    assert re.findall(r'class="num">(\d+)<', run_row) == ["1", "4"]  # success, locked
    listed = client.get("/invoices/?filter=action-required").get_data(as_text=True)
    assert len(re.findall(r'href="/invoices/\d+"', listed)) == 4
    runs = client.get("/runs/").get_data(as_text=True)
    cells = re.findall(r'class="num">([^<]*)<', runs.split(f'href="/runs/{run.id}"')[1])
    assert cells[:6] == ["5", "1", "0", "2", "4", "0"]  # selected, success, declined, failed...
    assert "100.00 USD" in runs  # collected


def test_people_read_sentences_not_internal_event_names(client, login, make_user, checked_world):
    login(make_user("auditor"))
    audit = client.get("/audit/").get_data(as_text=True).split("<tbody>")[1]
    assert "asked the gateway about this charge" in audit
    assert "transaction.looked_up" not in audit and "payment_transactions #" not in audit
    assert f"transaction #{checked_world.id}" in audit
    page = client.get(f"/transactions/{checked_world.id}").get_data(as_text=True)
    assert "transaction.looked_up" not in page and "invoice.locked" not in page


def test_the_printable_review_folds_calls_beyond_six(client, login, make_user, checked_world):
    for _ in range(7):
        finalize.check_gateway_status(checked_world.id, None)
    login(make_user("auditor"))
    page = client.get(f"/transactions/{checked_world.id}/review").get_data(as_text=True)
    assert "5 earlier calls not printed: see invoice INV-0003 in Settle." in page
    assert "1 earlier event not printed" in page
    assert page.count('<td class="when">') <= 6 + 10


def test_the_audit_log_filters_by_who_what_record_and_when(client, login, make_user, checked_world):
    login(make_user("auditor"))
    by_clerk = client.get("/audit/?who=clerk").get_data(as_text=True).split("<tbody>")[1]
    assert by_clerk.count("asked the gateway about this charge") == 3
    assert "locked the invoice" not in by_clerk
    by_settle = client.get("/audit/?who=settle&what=invoice.locked").get_data(as_text=True)
    assert by_settle.count("<td>locked the invoice (Action Required)</td>") == 1
    one = client.get(f"/audit/?record=payment_transactions&id={checked_world.id}")
    assert one.get_data(as_text=True).count(f"transaction #{checked_world.id}") >= 3
    none = client.get("/audit/?since=2999-01-01").get_data(as_text=True)
    assert "No event matches." in none
    bad = client.get("/audit/?until=tomorrow").get_data(as_text=True)
    assert "To: &#39;tomorrow&#39; is not a date" in bad


def test_a_run_pages_counts_agree_with_its_transactions(
    client, login, make_user, make_invoice, run_for
):
    tokens = ["tok_approve", "tok_approve", "tok_decline", "tok_cvc", "tok_closed", "tok_review",
              "tok_hang", "tok_misconfigured"]  # fmt: skip
    for token in tokens:
        make_invoice(token=token)
    make_invoice(token="tok_approve", due_days=3)  # not due: not selected
    run = run_for()
    login(make_user("auditor"))
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', page))
    listed = page.split("Transactions of this run")[1]
    shown = {
        "success_count": listed.count("status-success"),
        "decline_count": listed.count("status-decline"),
        "review_count": listed.count("status-requires-review"),
        "indeterminate_count": listed.count("status-indeterminate"),
        "failure_count": sum(
            listed.count(f"status-{s}")
            for s in ("validation-error", "permanent-fail", "system-fail")
        ),
    }
    assert {k: int(counts[k]) for k in shown} == shown
    assert int(counts["selected_count"]) == len(tokens) == sum(shown.values())
