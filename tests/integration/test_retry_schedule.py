"""Soft declines are retried 1, 3 and 7 days after each decline, then left to a clerk."""

from datetime import date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.runs.models import RunSkip

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 9, 0)


@pytest.fixture
def at():
    """A clock the test sets; released afterwards."""

    travels = []

    def set_to(moment: datetime):
        if travels:
            travels.pop().stop()
        travels.append(time_machine.travel(moment, tick=False))
        travels[-1].start()

    yield set_to
    for travel in travels:
        travel.stop()


def run_on(run_for, moment, at):
    at(moment)
    return run_for(due_on=moment.date())


def reason_in(run):
    return db.session.scalars(select(RunSkip.reason).where(RunSkip.run_id == run.id)).all()


def test_declines_follow_the_schedule_then_stop(make_invoice, run_for, at):
    at(START)
    invoice = make_invoice(token="tok_decline", due_days=(START.date() - date.today()).days)
    assert run_on(run_for, START, at).decline_count == 1
    fresh = db.session.get(Invoice, invoice.id)
    assert (fresh.decline_count, fresh.next_attempt_at) == (1, START + timedelta(days=1))

    # Half a day later the next attempt is not due yet.
    assert reason_in(run_on(run_for, START + timedelta(hours=12), at)) == ["next retry not yet due"]
    # Then 1, 3 and 7 days after each decline.
    moment = START
    for days in (1, 3, 7):
        moment = db.session.get(Invoice, invoice.id).next_attempt_at
        assert moment is not None
        run = run_on(run_for, moment, at)
        assert run.decline_count == 1, f"no retry {days} days after the decline"
    db.session.expire_all()
    exhausted = db.session.get(Invoice, invoice.id)
    assert (exhausted.decline_count, exhausted.next_attempt_at) == (4, None)
    assert reason_in(run_on(run_for, moment + timedelta(days=30), at)) == ["retries exhausted"]


def test_a_success_clears_the_declines(make_invoice, run_for, at):
    at(START)
    invoice = make_invoice(token="tok_decline", due_days=(START.date() - date.today()).days)
    run_on(run_for, START, at)
    method = db.session.get(Invoice, invoice.id).account.payment_methods[0]
    method.token = "tok_approve"  # the customer's card works again
    db.session.commit()
    run_on(run_for, START + timedelta(days=2), at)
    paid = db.session.get(Invoice, invoice.id)
    assert (paid.decline_count, paid.next_attempt_at, paid.balance) == (0, None, 0)


def test_a_supervisor_resets_retries_with_a_reason(
    client, login, make_user, make_invoice, run_for, at
):
    at(START)
    invoice = make_invoice(token="tok_decline", due_days=(START.date() - date.today()).days)
    run_on(run_for, START, at)
    login(make_user("supervisor"))
    short = client.post(
        f"/invoices/{invoice.id}/reset-retries", data={"reason": "ok"}, follow_redirects=True
    )
    assert "Field must be between 5 and 500 characters long." in short.get_data(as_text=True)
    assert db.session.get(Invoice, invoice.id).decline_count == 1
    page = client.post(
        f"/invoices/{invoice.id}/reset-retries",
        data={"reason": "Customer topped up the account"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Retries of INV-0001 reset" in page
    assert "Customer topped up the account" in page  # the history shows the reason
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).decline_count == 0


@pytest.mark.parametrize("role", ["auditor", "clerk"])
def test_only_a_supervisor_resets_retries(client, login, make_user, make_invoice, run_for, role):
    invoice = make_invoice(token="tok_decline")
    run_for()
    login(make_user(role))
    response = client.post(
        f"/invoices/{invoice.id}/reset-retries", data={"reason": "because I can"}
    )
    assert response.status_code == 403
    assert db.session.get(Invoice, invoice.id).decline_count == 1


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("1, x", "whole numbers"),
        ("0", "1 to 365 days"),
        ("", "1 to 10 retries"),
        ("1 " * 11, "1 to 10"),
    ],
)
def test_a_bad_retry_schedule_is_refused(client, login, make_user, days, message):
    login(make_user("supervisor"))
    page = client.post("/policy/retry-schedule", data={"days": days}, follow_redirects=True)
    assert message in page.get_data(as_text=True)
    assert "1, 3, 7 days" in page.get_data(as_text=True)


def test_a_supervisor_edits_the_retry_schedule(client, login, make_user):
    login(make_user("supervisor"))
    page = client.post("/policy/retry-schedule", data={"days": "2 5"}, follow_redirects=True)
    assert "retried 2, 5 days after each" in page.get_data(as_text=True)
    login_as_clerk = make_user("clerk")
    client.post("/logout")
    login(login_as_clerk)
    assert client.post("/policy/retry-schedule", data={"days": "1"}).status_code == 403
