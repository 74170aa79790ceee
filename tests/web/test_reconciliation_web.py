"""A run's and a day's reconciliation report, over HTTP to the sandbox: every kind of line, the
CSV, who may ask, bad input, a gateway that cannot be compared and one that is down."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.reconciliation.models import ReconciliationLine, ReconciliationReport
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration

# Each token makes the sandbox agree or disagree with its own answer in one way.
TOKENS = {
    "tok_approve": "matched",
    "tok_decline": "matched",
    "tok_lost": "settle_only",  # answers Success, then the gateway forgets the charge
    "tok_twin": "matched",  # ...and holds a second charge Settle never sent (gateway_only)
    "tok_short": "amount",  # holds one unit less than it answered
    "tok_decline_captured": "status",  # answers a decline, but holds the money
    "tok_timeout": "status",  # Indeterminate at Settle, held at the gateway
}


def csrf(client, path):
    import re

    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def report_lines(report_id):
    rows = db.session.execute(
        select(
            ReconciliationLine.kind, PaymentTransaction.provider_code, ReconciliationLine.order_id
        )
        .outerjoin(PaymentTransaction, PaymentTransaction.id == ReconciliationLine.transaction_id)
        .where(ReconciliationLine.report_id == report_id)
    ).all()
    return rows


@pytest.fixture
def reconciled_run(make_invoice, run_for, make_user, client, login, sandbox):
    invoices = {token: make_invoice(token=token, amount="50.00") for token in TOKENS}
    run = run_for(actor=make_user("supervisor"))
    # And the gateway holds a charge made at its own terminal, for one of these invoices.
    requests.post(f"{sandbox.url}/_sandbox/phantom",
                  params={"order_id": invoices["tok_approve"].number, "amount": "7.00",
                          "currency": "USD"}, timeout=5).raise_for_status()  # fmt: skip
    clerk = make_user("clerk")
    login(clerk)
    path = f"/runs/{run.id}"
    response = client.post(f"/reconciliation/run/{run.id}", data={"csrf_token": csrf(client, path)})
    assert response.status_code == 302
    report = db.session.scalar(select(ReconciliationReport))
    return run, report, invoices


def test_a_runs_report_shows_every_kind_of_line_and_what_to_do(client, reconciled_run):
    run, report, invoices = reconciled_run
    assert report.state == "Done" and report.run_id == run.id
    assert report.counts == {"matched": 3, "gateway_only": 2, "settle_only": 1, "amount": 1,
                             "status": 2}  # fmt: skip
    kinds = {}
    for kind, _, order_id in report_lines(report.id):
        kinds.setdefault(kind, set()).add(order_id)
    number = {t: i.number for t, i in invoices.items()}
    assert kinds["settle_only"] == {number["tok_lost"]}
    assert kinds["amount"] == {number["tok_short"]}
    assert kinds["status"] == {number["tok_decline_captured"], number["tok_timeout"]}
    assert kinds["gateway_only"] == {number["tok_twin"], number["tok_approve"]}

    page = client.get(f"/reconciliation/{report.id}").get_data(as_text=True)
    assert "Settle says Decline, but the gateway captured the money" in page
    assert "Settle booked a payment for money the gateway does not hold" in page
    assert "A charge Settle never sent" in page
    assert "Settle charged 50.00 USD, the gateway holds 49.00 USD" in page
    # Each line links to its transaction, or to the invoice a gateway-only charge names.
    lost = db.session.scalar(
        select(PaymentTransaction.id).where(
            PaymentTransaction.invoice_id == invoices["tok_lost"].id
        )
    )
    assert f'href="/transactions/{lost}"' in page
    assert f'href="/invoices/{invoices["tok_twin"].id}"' in page
    # The matched lines are one click away, not in the way.
    assert "Nothing to do: both hold the payment" not in page
    matched = client.get(f"/reconciliation/{report.id}?kind=matched").get_data(as_text=True)
    assert "Nothing to do: both hold the payment" in matched
    assert client.get(f"/reconciliation/{report.id}?kind=nonsense").status_code == 404
    # The run page links to it.
    run_page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert f'href="/reconciliation/{report.id}"' in run_page and "6 need a look" in run_page
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "reconciliation.asked"))
    assert event.after["counts"]["status"] == 2 and event.actor.role == "clerk"


def test_the_report_exports_as_csv(client, reconciled_run):
    _, report, invoices = reconciled_run
    response = client.get(f"/reconciliation/{report.id}/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 9
    short = next(r for r in rows if r["invoice"] == invoices["tok_short"].number)
    assert (short["kind"], short["settle_amount"], short["gateway_amount"]) == (
        "Amount or currency differs", "50.00", "49.00")  # fmt: skip
    assert short["gateway_at_utc"].endswith("Z") and short["settle_currency"] == "USD"
    only = client.get(f"/reconciliation/{report.id}/export.csv?kind=status").get_data(as_text=True)
    assert len(list(csv.DictReader(io.StringIO(only)))) == 2


def test_an_auditor_reads_reports_but_does_not_ask_the_gateways(client, login, make_user,
                                                                reconciled_run):  # fmt: skip
    run, report, _ = reconciled_run
    client.post("/logout")
    login(make_user("auditor"))
    assert client.get(f"/reconciliation/{report.id}").status_code == 200
    assert client.get("/reconciliation/").status_code == 200
    token = csrf(client, "/reconciliation/")
    assert (
        client.post(f"/reconciliation/run/{run.id}", data={"csrf_token": token}).status_code == 403
    )
    assert client.post("/reconciliation/day", data={"csrf_token": token,
                                                    "day": date.today()}).status_code == 403  # fmt: skip
    assert "Reconcile with the gateway" not in client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert db.session.scalar(select(func.count(ReconciliationReport.id))) == 1


def test_a_days_report_covers_charges_made_outside_runs_and_names_what_it_cannot_compare(
    client, login, make_user, make_invoice, run_for, sandbox
):
    make_invoice(token="tok_approve")
    make_invoice(token="tok_lost")
    run_for()
    db.session.add(Gateway(name="Payeezy", plugin="payeezy", base_url=sandbox.url_for("payeezy"),
                           credentials={}, timeout_seconds=Decimal("1")))  # fmt: skip
    db.session.commit()
    login(make_user("clerk"))
    token = csrf(client, "/reconciliation/")
    response = client.post("/reconciliation/day", data={"csrf_token": token, "day": date.today()})
    assert response.status_code == 302
    report = db.session.scalar(select(ReconciliationReport))
    assert report.day == date.today() and report.run_id is None
    assert report.counts["matched"] == 1 and report.counts["settle_only"] == 1
    assert report.state == "Incomplete"
    (problem,) = report.problems
    assert problem["name"] == "Payeezy" and "Not reconciled" in problem["problem"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Payeezy" in page and "Not reconciled" in page


@pytest.mark.parametrize(
    "day, message",
    [("", "Give the day as YYYY-MM-DD"), ("31/12/2026", "Give the day as YYYY-MM-DD"),
     ((date.today() + timedelta(days=2)).isoformat(), "is in the future")],
)  # fmt: skip
def test_a_bad_day_is_refused_with_its_reason_and_asks_nothing(client, login, make_user, day,
                                                               message):  # fmt: skip
    login(make_user("clerk"))
    token = csrf(client, "/reconciliation/")
    response = client.post("/reconciliation/day", data={"csrf_token": token, "day": day})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ReconciliationReport.id))) == 0


def test_a_gateway_that_is_down_leaves_an_incomplete_report_not_a_false_one(
    client, login, make_user, make_invoice, run_for
):
    make_invoice(token="tok_approve")
    run = run_for()
    gateway = db.session.scalar(select(Gateway))
    gateway.base_url = "http://127.0.0.1:9"  # nothing listens there
    db.session.commit()
    login(make_user("clerk"))
    client.post(
        f"/reconciliation/run/{run.id}", data={"csrf_token": csrf(client, f"/runs/{run.id}")}
    )
    report = db.session.scalar(select(ReconciliationReport))
    assert report.state == "Incomplete" and report.counts.get("settle_only") == 0
    assert "listing failed" in report.problems[0]["problem"]
    assert db.session.scalar(select(func.count(ReconciliationLine.id))) == 0


def test_the_report_is_on_record_before_the_gateway_is_asked(client, login, make_user,
                                                             make_invoice, run_for, monkeypatch):  # fmt: skip
    from portal.gateways.sandbox.plugin import SandboxGateway

    make_invoice(token="tok_approve")
    run = run_for()
    seen = []

    def holdings(self, since, until):
        seen.append(db.session.scalar(select(func.count(ReconciliationReport.id))))
        raise RuntimeError("the listing broke")

    monkeypatch.setattr(SandboxGateway, "holdings", holdings)
    login(make_user("clerk"))
    client.post(
        f"/reconciliation/run/{run.id}", data={"csrf_token": csrf(client, f"/runs/{run.id}")}
    )
    assert seen == [1]
    report = db.session.scalar(select(ReconciliationReport))
    assert report.state == "Incomplete" and report.finished_at is not None
    assert "Settle failed while comparing" in report.problems[0]["problem"]
