"""Record before call, and recovery: a process killed mid-charge loses nothing, charges nothing twice."""

import subprocess
import sys
import textwrap
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.runs.engine import execute_run
from portal.runs.models import PaymentRun
from portal.runs.service import start_run
from portal.sweeps.recovery import recover
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration

DYING_RUN = textwrap.dedent(
    """
    import os, sys
    from portal import create_app
    from portal.gateways.sandbox.plugin import SandboxGateway

    url, run_id, when = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SETTLE_JOBS": "inline"})
    send = SandboxGateway.charge

    def charge_then_die(self, request):
        if when == "after-send":
            send(self, request)
        os._exit(9)  # as kill -9 would: no cleanup, no rollback handlers

    SandboxGateway.charge = charge_then_die
    with app.app_context():
        from portal.runs.engine import execute_run
        execute_run(run_id)
    """
)


def crash_a_run(app, when: str) -> PaymentRun:
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    died = subprocess.run(
        [sys.executable, "-c", DYING_RUN, app.config["SQLALCHEMY_DATABASE_URI"], str(run.id), when],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert died.returncode == 9, died.stderr
    db.session.expire_all()
    return db.session.get(PaymentRun, run.id)


def later():
    """After every gateway timeout and the run's heartbeat have lapsed."""
    return clock.now() + timedelta(minutes=10)


@pytest.mark.parametrize("when", ["before-send", "after-send"])
def test_the_pending_row_survives_a_crash(app, make_invoice, sandbox, when):
    invoice = make_invoice()
    crash_a_run(app, when)
    (pending,) = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    ).all()
    assert pending.status == "Pending"
    assert pending.idempotency_key
    held = [c["idempotency_key"] for c in sandbox.ledger.all()]
    assert held == ([pending.idempotency_key] if when == "after-send" else [])


def test_an_invoice_with_a_pending_charge_is_never_charged_again(app, make_invoice, sandbox):
    invoice = make_invoice()
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    subprocess.run(
        [
            sys.executable,
            "-c",
            DYING_RUN,
            app.config["SQLALCHEMY_DATABASE_URI"],
            str(run.id),
            "after-send",
        ],
        capture_output=True,
        timeout=60,
    )
    db.session.expire_all()
    # The dead run stays Running until recovery (a later issue); a run with another filter starts.
    second = start_run(due_on=date.today(), actor=None, currency="USD")
    db.session.commit()
    execute_run(second.id)
    charges = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    ).all()
    assert [c.status for c in charges] == ["Pending"]
    assert len(sandbox.ledger.all()) == 1


def charges_of(invoice):
    db.session.expire_all()
    return db.session.scalars(
        select(PaymentTransaction)
        .where(
            PaymentTransaction.invoice_id == invoice.id, PaymentTransaction.operation == "charge"
        )
        .order_by(PaymentTransaction.id)
    ).all()


def test_recovery_finishes_a_charge_that_reached_the_gateway(app, make_invoice, sandbox):
    invoice = make_invoice(amount="80.00")
    run = crash_a_run(app, "after-send")
    report = recover(now=later())
    assert report.runs == [run.id]
    (charge,) = charges_of(invoice)
    assert (charge.status, charge.provider_code) == ("Success", "approved")
    assert charge.provider_reference == sandbox.ledger.all()[0]["id"]
    assert db.session.get(Invoice, invoice.id).balance == Decimal("0")
    run = db.session.get(PaymentRun, run.id)
    # The run went on after its interruption and finished as an uninterrupted run would.
    assert (run.state, run.success_count, run.processed_count) == ("Completed", 1, 1)
    resumed = db.session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "payment_run.resumed", AuditEvent.entity_id == run.id
        )
    )
    assert resumed is not None


def test_recovery_frees_an_invoice_whose_charge_never_left(app, make_invoice, sandbox):
    invoice = make_invoice()
    crash_a_run(app, "before-send")
    recover(now=later())
    (charge,) = charges_of(invoice)
    assert (charge.status, charge.finalization) == ("System Fail", "Recovered: never sent")
    assert db.session.get(Invoice, invoice.id).corrective_action is None
    # Eligible again: the next run charges it, once.
    execute_run(start_run(due_on=date.today(), actor=None, currency="USD").id)
    assert [c.status for c in charges_of(invoice)] == ["System Fail", "Success"]
    assert len(sandbox.ledger.all()) == 1


def test_recovery_locks_the_invoice_when_the_gateway_cannot_tell(app, make_invoice, sandbox):
    invoice = make_invoice()
    crash_a_run(app, "after-send")
    gateway = invoice.account.payment_methods[0].gateway
    gateway.base_url = "http://127.0.0.1:9"
    db.session.commit()
    recover(now=later())
    (charge,) = charges_of(invoice)
    assert charge.status == "Indeterminate"
    assert "could not say" in charge.reason
    assert db.session.get(Invoice, invoice.id).corrective_action == "Action Required"


def test_recovery_leaves_a_call_that_may_still_be_in_flight(app, make_invoice, sandbox):
    invoice = make_invoice()
    crash_a_run(app, "after-send")
    report = recover(now=clock.now())
    assert report.transactions == [] and report.runs == []
    assert [c.status for c in charges_of(invoice)] == ["Pending"]


@pytest.mark.parametrize("token", ["tok_approve", "tok_decline", "tok_review", "tok_closed"])
def test_after_recovery_settles_ledger_equals_the_sandbox_ledger(app, make_invoice, sandbox, token):
    invoice = make_invoice(token=token)
    crash_a_run(app, "after-send")
    recover(now=later())
    (charge,) = charges_of(invoice)
    (held,) = sandbox.ledger.all()
    assert charge.provider_reference == held["id"]
    assert charge.provider_code == held["code"]
    paid = db.session.get(Invoice, invoice.id).balance == Decimal("0")
    assert paid == (held["state"] in ("unsettled", "settled") and token == "tok_approve")
