"""Starting payment runs from the portal."""

from datetime import date

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.runs.models import PaymentRun


def run_count():
    return db.session.scalar(select(func.count()).select_from(PaymentRun))


def test_a_supervisor_starts_a_run_and_sees_its_counts(client, login, make_user, make_invoice):
    login(make_user("supervisor"))
    make_invoice(token="tok_approve")
    make_invoice(token="tok_decline")
    assert b"Start payment run" in client.get("/runs/new").data
    response = client.post("/runs/new", data={"due_on": date.today().isoformat()})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Payment run #1 started." in page
    assert "Completed" in page
    assert 'data-count="success_count">1<' in page
    assert 'data-count="decline_count">1<' in page
    assert "100.00 USD" in page
    progress = client.get("/runs/1/progress.json").get_json()
    assert (progress["state"], progress["percent"], progress["active"]) == ("Completed", 100, False)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"due_on": "23/11/2026"}, "Give a date as YYYY-MM-DD"),
        ({"due_on": ""}, "Give a date as YYYY-MM-DD"),
        ({"due_on": "2026-11-23", "invoice_limit": "-3"}, "The cap must be from 1 to 10,000,000"),
        (
            {"due_on": "2026-11-23", "invoice_limit": "99999999999999999999"},
            "The cap must be from 1",
        ),
        ({"due_on": "2026-11-23", "invoice_limit": "many"}, "Not a valid integer value."),
        ({"due_on": "2026-11-23", "currency": "XYZ"}, "Not a valid choice."),
        ({"due_on": "2026-11-23", "gateway_id": "999"}, "Not a valid choice."),
    ],
)
def test_a_bad_filter_rerenders_with_its_message_and_starts_nothing(
    client, login, make_user, data, message
):
    login(make_user("supervisor"))
    response = client.post("/runs/new", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert run_count() == 0


def test_a_run_with_the_same_filter_still_running_is_refused(client, login, make_user):
    supervisor = make_user("supervisor")
    login(supervisor)
    from portal.runs.service import start_run

    start_run(due_on=date.today(), actor=supervisor)
    db.session.commit()
    response = client.post("/runs/new", data={"due_on": date.today().isoformat()})
    assert response.status_code == 409
    assert "Payment run #1 with the same filter is still queued" in response.get_data(as_text=True)
    assert run_count() == 1


@pytest.mark.parametrize("role", ["auditor", "clerk"])
def test_a_clerk_or_auditor_cannot_start_a_run(client, login, make_user, role):
    login(make_user(role))
    assert client.get("/runs/new").status_code == 403
    response = client.post("/runs/new", data={"due_on": date.today().isoformat()})
    assert response.status_code == 403
    assert run_count() == 0
    assert b"Start a payment run" not in client.get("/runs/").data


def _interrupted_run(make_invoice, n=3):
    """A finished run whose only chunk was given up before it charged anything."""
    from portal.runs.engine import begin_run
    from portal.runs.models import RunChunk
    from portal.runs.service import finish_run, give_up_chunk, start_run

    for _ in range(n):
        make_invoice(token="tok_approve")
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    begin_run(run.id, 100)
    give_up_chunk(db.session.scalars(select(RunChunk)).one())
    return finish_run(run.id, ["chunk #1 given up"])


def test_a_run_page_names_what_was_not_attempted_and_a_supervisor_charges_it(
    client, login, make_user, make_invoice
):
    run = _interrupted_run(make_invoice)
    login(make_user("supervisor"))
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "3 invoices not attempted</h2>" in page
    assert "Charge these 3 invoices in a new run" in page
    assert 'Collected: <span class="muted">nothing</span>' in page
    assert 'data-count="skipped_count">3<' in page
    response = client.post(f"/runs/{run.id}/charge-not-attempted", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert f"charges the invoices run #{run.id} did not attempt" in page
    assert 'data-count="success_count">3<' in page
    again = client.post(f"/runs/{run.id}/charge-not-attempted", follow_redirects=True)
    assert "was started for them already" in again.get_data(as_text=True)
    assert run_count() == 2
    assert "was started for them" in client.get(f"/runs/{run.id}").get_data(as_text=True)


@pytest.mark.parametrize("role", ["clerk", "auditor"])
def test_only_a_supervisor_charges_what_was_not_attempted(
    client, login, make_user, make_invoice, role
):
    run = _interrupted_run(make_invoice)
    login(make_user(role))
    assert "Charge these" not in client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert client.post(f"/runs/{run.id}/charge-not-attempted").status_code == 403
    assert run_count() == 1


def test_a_running_run_says_that_answers_are_coming(client, login, make_user, make_invoice):
    from portal.runs.engine import begin_run
    from portal.runs.service import start_run

    make_invoice()
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    begin_run(run.id, 100)
    login(make_user("auditor"))
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "No answer from the gateway yet" in page
    assert "No transactions." not in page
    assert "nothing yet" in page
