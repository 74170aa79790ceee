"""Every gateway answer takes one path (transactions/calls.py): the status is written by one
function, its action comes from the policy table whoever writes it, and the rule the plugin applied
is kept with the answer. And the run sweep is one, with a broker or without."""

from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from portal import clock
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.runs import dispatch
from portal.runs.engine import execute_run
from portal.runs.models import PaymentRun
from portal.runs.service import start_run
from portal.settings import service as settings
from portal.sweeps.recovery import recover
from portal.transactions import reviews
from portal.transactions.models import PaymentTransaction
from tests.integration.test_record_before_call import charges_of, crash_a_run, later

pytestmark = pytest.mark.integration


def test_a_charge_recovery_proves_never_sent_is_counted_by_the_policy_and_locks_nothing(
    app, make_invoice, sandbox
):
    invoice = make_invoice()
    settings.put(settings.STRICT_MODE, True, None)  # where every failure locks
    db.session.commit()
    run = crash_a_run(app, "before-send")
    recover(now=later())
    (charge,) = charges_of(invoice)
    assert (charge.status, charge.finalization) == ("System Fail", "Recovered: never sent")
    assert charge.locked_invoice is False
    assert db.session.get(Invoice, invoice.id).corrective_action is None
    run = db.session.get(PaymentRun, run.id)
    assert (run.failure_count, run.processed_count) == (1, 1)


def test_an_answer_keeps_the_mapping_line_the_plugin_applied(app, make_invoice, sandbox):
    approved = make_invoice(token="tok_approve")
    unknown = make_invoice(token="tok_unknown")
    execute_run(start_run(due_on=date.today(), actor=None).id)
    (ok,) = charges_of(approved)
    (odd,) = charges_of(unknown)
    line = sandbox_line("approved:")
    assert ok.decided_by == f"sandbox/codes.yaml line {line}"
    assert ok.guidance == "Nothing to do; the payment is recorded."
    assert odd.unmapped and odd.decided_by == "sandbox/codes.yaml: unmapped, default System Fail"
    assert reviews.decided_by(odd) == odd.decided_by
    # The review shows what was kept, even if the shipped file changes afterwards.
    db.session.execute(
        update(PaymentTransaction).where(PaymentTransaction.id == ok.id).values(decided_by="kept")
    )
    db.session.commit()
    db.session.expire_all()
    assert reviews.decided_by(db.session.get(PaymentTransaction, ok.id)) == "kept"


def sandbox_line(text: str) -> int:
    from pathlib import Path

    from portal.gateways import registry

    lines = Path(registry.mapping_path("sandbox")).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.strip() == text)


def test_recovery_alone_leaves_a_run_a_clerk_queued_while_it_looked_up(app):
    stale = start_run(due_on=date.today(), actor=None, currency="USD")
    fresh = start_run(due_on=date.today(), actor=None, currency="EUR")
    db.session.commit()
    db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == stale.id)
        .values(created_at=clock.now() - timedelta(minutes=1))
    )
    db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == fresh.id)
        .values(created_at=clock.now() + timedelta(seconds=30))  # queued during the lookups
    )
    db.session.commit()
    report = recover(alone=True)
    assert report.runs == [stale.id]
    db.session.expire_all()
    states = dict(db.session.execute(select(PaymentRun.id, PaymentRun.state)).all())
    assert states == {stale.id: "Cancelled", fresh.id: "Queued"}


def test_the_run_sweep_without_a_broker_cancels_only_a_run_its_thread_never_began(app):
    old = start_run(due_on=date.today(), actor=None, currency="USD")
    new = start_run(due_on=date.today(), actor=None, currency="EUR")
    db.session.commit()
    db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == old.id)
        .values(created_at=clock.now() - timedelta(minutes=7))
    )
    db.session.commit()
    sweep = dispatch.sweep_runs()
    assert sweep.runs == [old.id] and "never started" in " ".join(sweep.lines)
    db.session.expire_all()
    assert db.session.get(PaymentRun, new.id).state == "Queued"
    assert "never started" in db.session.get(PaymentRun, old.id).error
