"""The `flask settle` commands."""

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


def test_check_mappings_lists_every_shipped_mapping(app):
    result = app.test_cli_runner().invoke(args=["settle", "check-mappings"])
    assert result.exit_code == 0, result.output
    assert "sandbox:" in result.output and "default System Fail" in result.output


def test_demo_data_loads_once_and_a_second_load_duplicates_nothing(app, monkeypatch):
    monkeypatch.setitem(app.config, "SETTLE_DEMO_PASSWORD", "demo password 1")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["settle", "demo"])
    assert first.exit_code == 0, first.output
    assert "Demo data loaded." in first.output
    assert "Password for all of them: demo password 1" in first.output
    count = db.session.scalar(select(func.count()).select_from(Invoice))
    second = runner.invoke(args=["settle", "demo"])
    assert "nothing duplicated" in second.output
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == count


def test_a_run_over_the_demo_data_gives_all_seven_statuses_and_every_reconciliation_line(
    app, sandbox, monkeypatch, run_for
):
    monkeypatch.setitem(app.config, "SETTLE_SANDBOX_PORT", int(sandbox.url.rsplit(":", 1)[1]))
    assert app.test_cli_runner().invoke(args=["settle", "demo"]).exit_code == 0
    from portal.gateways.models import Gateway

    for gateway in db.session.scalars(select(Gateway)):
        gateway.timeout_seconds = 1  # the demo waits 3 s for the hanging charge; tests need not
    db.session.commit()
    run = run_for()
    statuses = set(db.session.scalars(select(PaymentTransaction.status)))
    assert statuses == {"Success", "Decline", "Validation Error", "Permanent Fail",
                        "Requires Review", "Indeterminate", "System Fail"}  # fmt: skip
    from portal.reconciliation.service import reconcile

    report = reconcile(None, run=run)
    assert all(report.counts[kind] > 0 for kind in
               ("matched", "gateway_only", "settle_only", "amount", "status")), report.counts  # fmt: skip
    # A gateway that cannot be listed (offline, or a provider Settle cannot list yet) is named
    # with its reason instead of guessed at.
    problems = {g["name"]: g["problem"] for g in report.problems}
    assert "listing failed" in problems.pop("Sandbox (offline)")
    assert set(problems) == {"Adyen (sandbox)", "CyberSource (sandbox)",
                             "Payeezy (First Data) (sandbox)", "PayPal Payflow Pro (sandbox)"}, problems  # fmt: skip


def test_recover_with_nothing_to_do_says_so(app):
    result = app.test_cli_runner().invoke(args=["settle", "recover"])
    assert result.exit_code == 0
    assert "Nothing to recover." in result.output


def test_settle_run_runs_and_prints_its_counts(app, make_invoice, make_gateway):
    make_invoice(token="tok_approve")
    make_invoice(token="tok_decline")
    result = app.test_cli_runner().invoke(args=["settle", "run", "--due", "2099-01-01", "--wait"])
    assert result.exit_code == 0, result.output
    assert "Completed; selected 2, success 1, decline 1" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--due", "23/11/2026", "--wait"], "is not a date"),
        (["--due", "2026-11-23", "--wait", "--gateway", "Nope"], "no gateway named 'Nope'"),
        (["--due", "2026-11-23", "--wait", "--currency", "XYZ"], "Unknown currency"),
        (["--due", "2026-11-23", "--wait", "--limit", "-1"], "at least 1"),
        (["--due", "2026-11-23"], "add --wait"),
    ],
)
def test_settle_run_with_bad_arguments_exits_non_zero_with_the_reason(app, args, message):
    result = app.test_cli_runner().invoke(args=["settle", "run", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_seed_adds_many_invoices_a_run_can_charge(app, make_gateway):
    make_gateway(name="Sandbox")
    result = app.test_cli_runner().invoke(args=["settle", "seed", "--invoices", "120"])
    assert result.exit_code == 0, result.output
    run = app.test_cli_runner().invoke(args=["settle", "run", "--due", "2099-01-01", "--wait"])
    assert "selected 120, success 120" in run.output
    bad = app.test_cli_runner().invoke(args=["settle", "seed", "--invoices", "0"])
    assert bad.exit_code != 0 and "at least 1" in bad.output
