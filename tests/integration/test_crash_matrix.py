"""A crash between every two steps of the charge path, each followed by recovery: afterwards no
call is left Pending, the run is finished, Settle's ledger equals the sandbox's, and a new run
charges nothing twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.runs.models import PaymentRun
from portal.runs.service import start_run
from portal.statuses import GatewayStatus
from portal.sweeps.recovery import recover
from portal.transactions.models import Operation, PaymentTransaction

pytestmark = pytest.mark.integration

# Each crash point wraps one step of the path; the process dies (os._exit, as kill -9 would) just
# before or just after that step, the second time it is taken: with one call in flight and every
# answer written by itself, on the second invoice; with windows and batches, in their middle.
DYING_RUN = textwrap.dedent(
    """
    import os, sys
    from portal import create_app

    url, run_id, point, in_flight = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    where, when = point.split(":")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SETTLE_JOBS": "inline",
                      "SETTLE_GATEWAY_CONCURRENCY": in_flight, "SETTLE_ANSWER_BATCH": in_flight})
    from portal.runs import charging, engine
    from portal.transactions import calls, effects

    module, name = {
        "claim": (charging, "claim_many"),
        "call": (calls.Call, "make"),
        "policy": (effects, "apply_policy"),
        "answer": (effects, "finish_charges"),
        "finish": (engine, "maybe_finish"),
    }[where]
    real, calls = getattr(module, name), []

    def dying(*args, **kwargs):
        calls.append(1)
        last = where == "finish" or len(calls) == 2
        if last and when == "before":
            os._exit(9)
        result = real(*args, **kwargs)
        if last:
            os._exit(9)
        return result

    setattr(module, name, dying)
    with app.app_context():
        engine.execute_run(run_id)
    """
)

POINTS = [
    "claim:before",  # the chunk is taken; the second invoice not yet claimed
    "claim:after",  # its Pending row is committed; the request has not left
    "call:before",
    "call:after",  # the gateway answered; nothing of the answer is stored
    "policy:after",  # the answer and its action are in the session, not committed
    "answer:after",  # the answer is committed; the run's skips and heartbeat are not
    "finish:before",  # every chunk is done; the run is not finished
]
# With 2 calls in flight, windows of 2 and batches of 2 answers: the second window is recorded
# while the first is at the gateway, and a batch dies half applied or just committed.
IN_A_BATCH = ["claim:after", "call:after", "policy:after", "answer:after"]
TOKENS = ["tok_approve", "tok_decline", "tok_review", "tok_approve"]


def _settle_ledger() -> dict[str, str]:
    """Settle's charges that reached the gateway, by idempotency key: their status."""
    rows = db.session.execute(
        select(PaymentTransaction.idempotency_key, PaymentTransaction.status).where(
            PaymentTransaction.operation == Operation.CHARGE
        )
    )
    return dict(rows.all())


@pytest.mark.parametrize(
    "point, in_flight, tokens",
    [(p, 1, TOKENS) for p in POINTS] + [(p, 2, TOKENS * 2) for p in IN_A_BATCH],
)
def test_a_crash_at_any_step_is_recovered_and_the_ledgers_agree(
    app, make_invoice, sandbox, point, in_flight, tokens
):
    invoices = [make_invoice(token=t) for t in tokens]
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    died = subprocess.run(
        [sys.executable, "-c", DYING_RUN, app.config["SQLALCHEMY_DATABASE_URI"], str(run.id), point,
         str(in_flight)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert died.returncode == 9, died.stderr

    recover(now=clock.now() + timedelta(minutes=10))
    db.session.expire_all()
    run = db.session.get(PaymentRun, run.id)
    assert run.finished_at is not None and run.state != "Running"
    statuses = _settle_ledger()
    assert GatewayStatus.PENDING.value not in statuses.values()

    # Every charge the gateway holds is one Settle recorded, and its status says whether money
    # moved; every Success Settle recorded is held at the gateway.
    held = {c["idempotency_key"]: c for c in sandbox.ledger.all()}
    assert set(held) <= set(statuses)
    for key, charge in held.items():
        moved = charge["state"] in ("unsettled", "settled")
        assert (statuses[key] in ("Success", "Requires Review", "Indeterminate")) == moved, (
            key, charge, statuses[key],
        )  # fmt: skip
    for key, status in statuses.items():
        if status == "Success":
            assert key in held
    # A paid invoice is one whose charge succeeded, never one whose charge is unknown.
    for invoice in invoices:
        paid = db.session.get(Invoice, invoice.id).balance == 0
        succeeded = db.session.scalar(
            select(PaymentTransaction.id).where(
                PaymentTransaction.invoice_id == invoice.id,
                PaymentTransaction.operation == Operation.CHARGE,
                PaymentTransaction.status == "Success",
            )
        )
        assert paid == (succeeded is not None)

    # A new run charges what is still eligible, and no invoice is held twice at the gateway.
    again = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    from portal.runs.engine import execute_run

    execute_run(again.id)
    orders = [c["order_id"] for c in sandbox.ledger.all()]
    assert len(orders) == len(set(orders)), orders
    assert len(orders) <= len(tokens)
