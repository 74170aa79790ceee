"""What the run benchmarks share: a throwaway embedded Settle, seeded invoices, and the sandbox
gateway server in a process of its own (a real gateway is not in Settle's process either)."""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import requests

from benchmarks._processes import SandboxProcess

logging.getLogger("werkzeug").setLevel(logging.ERROR)


def settle_run(invoices: int, concurrency: int, latency: float, **config) -> tuple[float, object]:
    """Seconds Settle takes to run `invoices` invoices on SQLite through the sandbox."""
    folder = tempfile.mkdtemp(prefix="settle-bench-")
    os.environ["SETTLE_INSTANCE_PATH"] = folder
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db
    from portal.gateways.models import Gateway
    from portal.runs.engine import execute_run
    from portal.runs.service import start_run
    from portal.sandbox.server import sandbox_credentials
    from portal.seed import seed_invoices

    sandbox = SandboxProcess(latency)
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/settle.db",
        "SETTLE_JOBS": "inline",
        "SETTLE_GATEWAY_CONCURRENCY": concurrency,
        **config,
    })  # fmt: skip
    with app.app_context():
        upgrade()
        db.session.add(Gateway(name="Bench", plugin="sandbox", base_url=sandbox.url,
                               credentials=sandbox_credentials("sandbox"), timeout_seconds=Decimal(60)))  # fmt: skip
        db.session.commit()
        seed_invoices(invoices, "Bench")
        run = start_run(due_on=date.today(), actor=None)
        db.session.commit()
        started = time.perf_counter()
        run = execute_run(run.id)
        seconds = time.perf_counter() - started
        assert run.success_count == invoices, (run.state, run.success_count, run.error)
    sandbox.stop()
    return seconds, sandbox


def baseline(invoices: int, concurrency: int, latency: float) -> float:
    """The same HTTP call per invoice at the same concurrency, and plain sqlite3 inserts of a row
    before and after each: what any program charging these invoices must at least do."""
    from portal.sandbox.server import sandbox_credentials

    folder = tempfile.mkdtemp(prefix="settle-baseline-")
    sandbox = SandboxProcess(latency)
    conn = sqlite3.connect(os.path.join(folder, "baseline.db"), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE txn (key TEXT PRIMARY KEY, invoice INTEGER, status TEXT, body TEXT)")
    lock = threading.Lock()
    local = threading.local()
    key = sandbox_credentials("sandbox")["api_key"]

    def one(invoice: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        idem = uuid.uuid4().hex
        with lock:
            conn.execute("INSERT INTO txn VALUES (?, ?, 'Pending', NULL)", (idem, invoice))
            conn.commit()
        answer = session.post(
            f"{sandbox.url}/v1/charges",
            json={
                "amount": "100.00",
                "currency": "USD",
                "source": "tok_approve",
                "order_id": str(invoice),
            },
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem},
            timeout=60,
        )
        with lock:
            conn.execute(
                "UPDATE txn SET status = 'Success', body = ? WHERE key = ?", (answer.text, idem)
            )
            conn.commit()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(invoices)))
    seconds = time.perf_counter() - started
    sandbox.stop()
    return seconds
