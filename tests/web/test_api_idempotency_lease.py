"""An Idempotency-Key's claim has a lease: a request that died after claiming its key (its process
killed before its answer was kept) does not leave the key answering 409 for ever; a repeat after
the lease runs it, once, however many repeats arrive together."""

import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from portal import clock
from portal.api import idempotency, views
from portal.api.models import ApiRequest, ApiToken
from portal.extensions import db
from portal.invoices.models import Invoice
from tests.web import test_api

# The fixtures of tests/web/test_api.py: a supervisor's token, an account and a payment method.
token_for = test_api.token_for
supervisor_api = test_api.supervisor_api
Api, invoice_body = test_api.Api, test_api.invoice_body


@pytest.fixture
def lease(app):
    return timedelta(seconds=app.config["SETTLE_API_IDEMPOTENCY_LEASE_SECONDS"])


@pytest.fixture
def moment():
    with time_machine.travel(clock.now(), tick=False) as traveller:
        yield traveller


def a_claim_left_by_a_request_that_died(api, key):
    """What a POST /invoices killed between its claim's commit and its answer leaves: the claim,
    and nothing else (its changes commit with its answer)."""
    with api.client.application.test_request_context(
        "/api/v1/invoices", method="POST", json=invoice_body()
    ):
        fingerprint = idempotency._fingerprint()
    user_id = db.session.scalar(select(ApiToken.user_id))
    db.session.add(ApiRequest(user_id=user_id, key=key, fingerprint=fingerprint))
    db.session.commit()


def invoices() -> int:
    return db.session.scalar(select(func.count(Invoice.id)))


def test_a_claim_left_by_a_request_that_died_is_taken_over_after_its_lease_and_runs_once(
    supervisor_api, lease, moment
):
    api = supervisor_api
    a_claim_left_by_a_request_that_died(api, "died")
    moment.shift(lease + timedelta(seconds=1))
    retry = api.post("/invoices", invoice_body(), key="died")
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    again = api.post("/invoices", invoice_body(), key="died")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == retry.json
    assert invoices() == 1


def test_within_its_lease_a_claim_is_told_to_wait_and_when_it_may_run_again(
    supervisor_api, lease, moment
):
    api = supervisor_api
    a_claim_left_by_a_request_that_died(api, "died")
    moment.shift(lease - timedelta(seconds=100))
    response = api.post("/invoices", invoice_body(), key="died")
    assert response.status_code == 409 and response.headers["Retry-After"] == "100"
    assert "running" in response.json["message"]
    runs_again_at = clock.shown(clock.now() + timedelta(seconds=100))
    assert runs_again_at in response.json["message"]
    assert invoices() == 0


def test_two_repeats_taking_over_one_claim_at_once_run_it_once(
    app, supervisor_api, lease, moment, monkeypatch
):
    api = supervisor_api
    a_claim_left_by_a_request_that_died(api, "died")
    moment.shift(lease + timedelta(seconds=1))
    # Both repeats have read the lapsed claim before either takes it over.
    both_read = threading.Barrier(2, timeout=10)
    take_over = idempotency._take_over

    def together(*args):
        both_read.wait()
        return take_over(*args)

    monkeypatch.setattr(idempotency, "_take_over", together)
    answers = []

    def repeat():
        answers.append(Api(app.test_client(), api.secret).post("/invoices", invoice_body(), "died"))

    repeats = [threading.Thread(target=repeat) for _ in range(2)]
    for thread in repeats:
        thread.start()
    for thread in repeats:
        thread.join(timeout=30)
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert invoices() == 1


def test_a_different_request_with_the_key_of_a_lapsed_claim_is_still_refused(
    supervisor_api, lease, moment
):
    api = supervisor_api
    a_claim_left_by_a_request_that_died(api, "died")
    moment.shift(lease + timedelta(seconds=1))
    other = api.post("/invoices", invoice_body(number="INV-2", external_id="X-2"), key="died")
    assert other.status_code == 422 and "different request" in other.json["message"]
    assert invoices() == 0
    # The claim is still there for the request it was made for.
    assert api.post("/invoices", invoice_body(), key="died").status_code == 201


def test_a_request_that_outlives_its_lease_erases_not_the_answer_of_the_repeat_that_took_over(
    app, supervisor_api, lease, moment, monkeypatch
):
    api = supervisor_api
    slow_started, go_on = threading.Event(), threading.Event()
    looked_up = views._by_external

    def slow_first(*args):
        if not slow_started.is_set():
            slow_started.set()
            go_on.wait(timeout=10)
        return looked_up(*args)

    monkeypatch.setattr(views, "_by_external", slow_first)
    answers = []
    slow = threading.Thread(
        target=lambda: answers.append(
            Api(app.test_client(), api.secret).post("/invoices", invoice_body(), "slow")
        )
    )
    slow.start()
    assert slow_started.wait(timeout=10)
    moment.shift(lease + timedelta(seconds=1))
    retry = api.post("/invoices", invoice_body(), key="slow")
    go_on.set()
    slow.join(timeout=30)
    assert retry.status_code == 201
    assert answers[0].status_code == 409  # its invoice exists: the repeat made it
    again = api.post("/invoices", invoice_body(), key="slow")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert invoices() == 1
