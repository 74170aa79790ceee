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


def test_a_run_over_the_demo_data_gives_all_seven_statuses(app, sandbox, monkeypatch, run_for):
    monkeypatch.setitem(app.config, "SETTLE_SANDBOX_PORT", int(sandbox.url.rsplit(":", 1)[1]))
    assert app.test_cli_runner().invoke(args=["settle", "demo"]).exit_code == 0
    from portal.gateways.models import Gateway

    for gateway in db.session.scalars(select(Gateway)):
        gateway.timeout_seconds = 1  # the demo waits 3 s for the hanging charge; tests need not
    db.session.commit()
    run_for()
    statuses = set(db.session.scalars(select(PaymentTransaction.status)))
    assert statuses == {"Success", "Decline", "Validation Error", "Permanent Fail",
                        "Requires Review", "Indeterminate", "System Fail"}  # fmt: skip


def test_recover_with_nothing_to_do_says_so(app):
    result = app.test_cli_runner().invoke(args=["settle", "recover"])
    assert result.exit_code == 0
    assert "Nothing to recover." in result.output
