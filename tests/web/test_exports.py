"""CSV exports of the lists: the filters on screen, streamed, amounts as plain decimals with their
currency, times in UTC ISO 8601, and no cell a spreadsheet would run as a formula."""

import csv
import io

import pytest
from sqlalchemy import select

from portal.accounts.models import Account
from portal.extensions import db
from portal.transactions import finalize
from portal.transactions.models import PaymentTransaction


@pytest.fixture
def ledger_world(make_invoice, run_for, make_user):
    make_invoice(token="tok_approve", amount="1999.99")
    make_invoice(token="tok_approve", amount="15000", currency="JPY")
    held = make_invoice(token="tok_review", amount="10.00")
    make_invoice(token="tok_decline", amount="20.00")
    evil = db.session.get(Account, held.account_id)
    evil.name = '=HYPERLINK("http://evil.example","click")'
    db.session.commit()
    run_for()
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == held.id)
    )
    finalize.check_gateway_status(charge.id, make_user("clerk"))
    return held


def read(response) -> list[dict]:
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    assert "attachment;" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_the_transactions_export_is_the_list_on_screen_streamed(
    client, login, make_user, ledger_world
):
    login(make_user("auditor"))
    response = client.get("/transactions/export.csv")
    assert response.is_streamed
    rows = read(response)
    assert [r["kind"] for r in rows] == ["payment"] * 4  # the list's default: payments only
    by_currency = {r["currency"]: r for r in rows if r["status"] == "Success"}
    assert by_currency["USD"]["amount"] == "1999.99"
    assert by_currency["JPY"]["amount"] == "15000"
    assert by_currency["USD"]["requested_at_utc"].endswith("Z")
    assert "T" in by_currency["USD"]["requested_at_utc"]
    successes = read(client.get("/transactions/export.csv?status=Success"))
    assert len(successes) == 2
    checks = read(client.get("/transactions/export.csv?kind=checks"))
    assert [(r["kind"], r["amount"], r["status"], r["gateway_state"]) for r in checks] == [
        ("gateway check", "", "", "unsettled")
    ]


def test_a_bad_filter_exports_nothing_and_says_why(client, login, make_user, ledger_world):
    login(make_user("auditor"))
    response = client.get("/transactions/export.csv?since=last-week")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "From: &#39;last-week&#39; is not a date" in page


def test_no_cell_is_a_formula(client, login, make_user, ledger_world):
    login(make_user("auditor"))
    rows = read(client.get("/invoices/export.csv"))
    names = {r["account_name"] for r in rows}
    assert '\'=HYPERLINK("http://evil.example","click")' in names
    assert not any(name.startswith("=") for name in names)


def test_the_invoices_export_carries_states_and_plain_amounts(
    client, login, make_user, ledger_world
):
    login(make_user("auditor"))
    rows = read(client.get("/invoices/export.csv"))
    states = sorted(r["state"] for r in rows)
    assert states == ["Action Required", "Open", "Paid", "Paid"]
    locked = read(client.get("/invoices/export.csv?filter=action-required"))
    assert [(r["number"], r["balance"], r["currency"]) for r in locked] == [
        (ledger_world.number, "10.00", "USD")
    ]
    assert locked[0]["locked_at_utc"].endswith("Z")


def test_the_audit_export_has_who_what_and_when(client, login, make_user, ledger_world):
    login(make_user("auditor"))
    rows = read(client.get("/audit/export.csv?who=clerk"))
    assert [(r["who"], r["action"], r["what"]) for r in rows] == [
        ("clerk", "transaction.looked_up", "asked the gateway about this charge")
    ]
    assert rows[0]["record"] == "transaction" and rows[0]["at_utc"].endswith("Z")


@pytest.mark.parametrize("path", ["/transactions/export.csv", "/invoices/export.csv",
                                  "/audit/export.csv"])  # fmt: skip
def test_exports_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_cancelled_invoice_is_cancelled_in_the_export_as_on_its_page(
    client, login, make_user, make_invoice
):
    from datetime import datetime

    from portal.invoices.models import Invoice

    invoice = make_invoice(token="tok_approve")
    db.session.get(Invoice, invoice.id).cancelled_at = datetime(2026, 12, 1)
    db.session.commit()
    login(make_user("auditor"))
    (row,) = read(client.get("/invoices/export.csv"))
    assert row["state"] == "Cancelled"
    assert [r["number"] for r in read(client.get("/invoices/export.csv?filter=cancelled"))] == [
        invoice.number
    ]
    assert "Cancelled" in client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
