"""Runs on real Celery workers (separate processes) through Redis, against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import jobs
from portal.extensions import db
from portal.runs import dispatch
from portal.runs.models import ChunkState, PaymentRun, RunChunk
from portal.runs.service import start_run
from portal.tasks import init_celery
from portal.transactions.models import Operation, PaymentTransaction

pytestmark = [pytest.mark.integration, pytest.mark.celery]

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("SETTLE_TEST_BROKER_URL", "redis://127.0.0.1:6379/7")
DEAD_BROKER = "redis://127.0.0.1:1/0"


def _redis_or_skip():
    import redis

    try:
        client = redis.Redis.from_url(BROKER, socket_connect_timeout=2)
        client.flushdb()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {BROKER} is needed for the Celery tests: {exc}")
        pytest.skip(f"Redis at {BROKER} is not available: {exc}")


@pytest.fixture
def broker(app, monkeypatch):
    """The test app with a broker: runs go to Celery instead of running inline."""
    _redis_or_skip()

    def use(url):
        monkeypatch.setitem(app.config, "SETTLE_BROKER_URL", url)
        jobs._health.clear()
        return init_celery(app)

    original = app.extensions["celery"]
    use(BROKER)
    yield use
    app.extensions["celery"] = original
    original.set_default()


@pytest.fixture
def workers(app, tmp_path):
    """Start real `celery -A wsgi.celery worker` processes; stopped at the end of the test."""
    procs = []

    def start(name: str, chunk_size: int = 7):
        env = dict(
            os.environ,
            SETTLE_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
            SETTLE_BROKER_URL=BROKER,
            SETTLE_INSTANCE_PATH=str(tmp_path / name),
            # Every machine holds the same credentials key (README, Production).
            SETTLE_CREDENTIALS_KEY=",".join(app.extensions["settle_vault"].keys),
            SETTLE_RUN_CHUNK_SIZE=str(chunk_size),
            SETTLE_GATEWAY_CONCURRENCY="4",
        )
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "wsgi.celery", "worker", "--pool", "solo",
             "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        proc.log_path = tmp_path / f"{name}.log"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _finished(run_id: int, timeout: float = 90) -> PaymentRun:
    run = dispatch.wait_until_finished(run_id, timeout=timeout, every=0.2)
    assert run.finished_at is not None, f"run #{run_id} still {run.state} after {timeout} s"
    return run


def _charges_per_invoice() -> dict[int, int]:
    rows = db.session.execute(
        select(PaymentTransaction.invoice_id, func.count())
        .where(PaymentTransaction.operation == Operation.CHARGE)
        .group_by(PaymentTransaction.invoice_id)
    )
    return dict(rows.all())


def test_a_celery_worker_executes_a_run_chunk_by_chunk(app, broker, workers, make_invoice, sandbox):
    tokens = ["tok_approve"] * 20 + ["tok_decline"] * 6 + ["tok_review"] * 4
    invoices = [make_invoice(token=t) for t in tokens]
    workers("w1")
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    dispatch.submit_run(run.id)
    run = _finished(run.id)
    assert run.state == "Completed", run.error
    assert (run.selected_count, run.chunk_count) == (30, 5)  # chunks of 7
    assert (run.success_count, run.decline_count, run.review_count) == (20, 6, 4)
    chunks = db.session.scalars(select(RunChunk).where(RunChunk.run_id == run.id)).all()
    assert {c.state for c in chunks} == {ChunkState.DONE}
    assert all(c.worker and c.attempts == 1 for c in chunks)
    # The Settle ledger equals the gateway's: one charge per invoice, no more.
    assert _charges_per_invoice() == {i.id: 1 for i in invoices}
    assert len(sandbox.ledger.all()) == 30


def test_two_workers_given_every_chunk_twice_charge_each_invoice_once(
    app, broker, workers, make_invoice, sandbox
):
    invoices = [make_invoice() for _ in range(40)]
    workers("w1")
    workers("w2")
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    dispatch.submit_run(run.id)
    for _ in range(200):  # as soon as the run has its chunks, send every one of them again
        db.session.rollback()
        ids = db.session.scalars(select(RunChunk.id).where(RunChunk.run_id == run.id)).all()
        if ids:
            break
        time.sleep(0.05)
    assert dispatch.send_chunks(ids) == len(ids)
    run = _finished(run.id)
    assert run.state == "Completed", run.error
    assert run.success_count == 40
    assert _charges_per_invoice() == {i.id: 1 for i in invoices}
    assert len(sandbox.ledger.all()) == 40
    attempts = db.session.scalars(select(RunChunk.attempts).where(RunChunk.run_id == run.id)).all()
    assert set(attempts) == {1}  # the duplicate messages found their chunk taken


def test_a_run_sent_while_the_broker_is_down_stays_queued_and_starts_when_it_is_back(
    app, broker, workers, make_invoice, make_user, login, sandbox
):
    make_invoice()
    broker(DEAD_BROKER)
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    dispatch.submit_run(run.id)
    db.session.expire_all()
    run = db.session.get(PaymentRun, run.id)
    assert run.state == "Queued" and run.dispatched_at is None
    assert "did not take this run" in run.dispatch_error
    assert "redis://127.0.0.1:1/0" in run.dispatch_error
    client = login(make_user("supervisor"))
    page = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "did not take this run" in page
    assert "does not answer" in client.get("/").get_data(as_text=True)
    # A supervisor starting another run is told at once that it waits for the broker.
    started = client.post(
        "/runs/new", data={"due_on": date.today().isoformat(), "currency": "EUR"},
        follow_redirects=True,
    ).get_data(as_text=True)  # fmt: skip
    assert "is queued, but it could not be sent yet" in started
    from portal.runs.service import cancel_run

    cancel_run(run.id + 1, None)  # only the first run is followed below

    broker(BROKER)  # the broker is back; a worker starting sends what waited
    workers("w1")
    run = _finished(run.id)
    assert run.state == "Completed" and run.success_count == 1
    assert run.dispatch_error is None
    assert len(sandbox.ledger.all()) == 1


def test_a_large_import_is_written_by_a_celery_worker(app, broker, workers, make_gateway,
                                                      make_user):  # fmt: skip
    from portal.accounts.models import Account
    from portal.imports import service as imports
    from portal.imports.models import ImportBatch
    from portal.invoices.models import Invoice

    make_gateway(name="Sandbox")
    supervisor = make_user("supervisor")
    workers("w1")
    batch = imports.preview("example.csv", imports.EXAMPLE.read_bytes(), supervisor)
    db.session.commit()
    assert imports.apply(batch.id, supervisor, background_rows=100) is None  # claimed, not written
    db.session.commit()
    imports.submit_import(batch.id)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        db.session.expire_all()
        if db.session.get(ImportBatch, batch.id).state != "Applying":
            break
        time.sleep(0.3)
    batch = db.session.get(ImportBatch, batch.id)
    assert (batch.state, batch.rows_done) == ("Applied", 1395), batch.error
    assert db.session.scalar(select(func.count(Account.id))) == 200
    assert db.session.scalar(select(func.count(Invoice.id))) == 995
