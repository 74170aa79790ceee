"""Starting runs: refused while the same filter runs; executed in a background thread."""

from datetime import date

import pytest
from sqlalchemy import select

from portal import jobs
from portal.errors import DomainError
from portal.extensions import db
from portal.runs import dispatch
from portal.runs.engine import execute_run
from portal.runs.models import PaymentRun, RunState
from portal.runs.service import start_run

pytestmark = pytest.mark.integration


def test_the_same_filter_cannot_run_twice_at_once(app, make_user):
    supervisor = make_user("supervisor")
    first = start_run(due_on=date.today(), actor=supervisor)
    db.session.commit()
    with pytest.raises(
        DomainError, match=f"Payment run #{first.id} with the same filter is still queued"
    ):
        start_run(due_on=date.today(), actor=supervisor)
    db.session.rollback()
    other = start_run(due_on=date.today(), currency="EUR", actor=supervisor)
    db.session.commit()
    assert other.id != first.id


def test_the_database_refuses_a_second_active_run_of_the_same_filter(app):
    from sqlalchemy.exc import IntegrityError

    for _ in range(2):
        db.session.add(PaymentRun(due_on=date.today(), filter_key="same", state="Queued"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_a_run_executes_once_even_if_started_twice(app, make_invoice, sandbox):
    make_invoice()
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    execute_run(run.id)
    execute_run(run.id)
    assert len(sandbox.ledger.all()) == 1


@pytest.mark.parametrize(
    "bad", [{"currency": "XYZ"}, {"invoice_limit": 0}, {"gateway_id": 999}, {"account_id": 999}]
)
def test_a_bad_filter_is_refused(app, bad):
    with pytest.raises(DomainError):
        start_run(due_on=date.today(), actor=None, **bad)


def test_a_run_runs_in_a_background_thread(app, make_invoice, sandbox, monkeypatch):
    monkeypatch.setitem(app.config, "SETTLE_JOBS", "thread")
    make_invoice()
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    dispatch.submit_run(run.id)
    jobs.wait_for_threads(app, timeout=30)
    db.session.expire_all()
    run = db.session.scalar(select(PaymentRun))
    assert (run.state, run.success_count) == (RunState.COMPLETED, 1)
