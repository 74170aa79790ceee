"""Two real processes start runs over the same invoices at the same instant: no invoice is ever
charged twice, at the gateway or in Settle (run on PostgreSQL by the second test pass)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.runs.models import PaymentRun
from portal.transactions.models import Operation, PaymentTransaction

pytestmark = pytest.mark.integration

RUNNER = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from portal import create_app
    url, currency, start = sys.argv[1], sys.argv[2] or None, float(sys.argv[3])
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SETTLE_JOBS": "inline",
                      "SETTLE_RUN_CHUNK_SIZE": 5})
    with app.app_context():
        from portal.errors import DomainError
        from portal.extensions import db
        from portal.runs.engine import execute_run
        from portal.runs.service import start_run
        time.sleep(max(0.0, start - time.time()))  # both start at the same instant
        try:
            run = start_run(due_on=date.today(), actor=None, currency=currency)
            db.session.commit()
        except DomainError as exc:
            print("refused:", exc)
            sys.exit(0)
        run = execute_run(run.id)
        print("ran", run.id, run.success_count, run.skipped_count)
    """
)


def _race(app, filters: tuple[str, str]) -> list[str]:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    start = time.time() + 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, url, currency, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for currency in filters
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


@pytest.mark.parametrize("round_", range(4))
@pytest.mark.parametrize("filters", [("", "USD"), ("", "")], ids=["two-filters", "same-filter"])
def test_two_processes_running_over_the_same_invoices_charge_each_once(
    app, make_invoice, sandbox, filters, round_
):
    invoices = [make_invoice(token="tok_approve") for _ in range(20)]
    outputs = _race(app, filters)
    db.session.expire_all()
    charges = Counter(
        db.session.scalars(
            select(PaymentTransaction.invoice_id).where(
                PaymentTransaction.operation == Operation.CHARGE
            )
        )
    )
    assert charges == {i.id: 1 for i in invoices}, outputs
    orders = Counter(c["order_id"] for c in sandbox.ledger.all())
    assert len(orders) == 20 and set(orders.values()) == {1}, outputs
    runs = db.session.scalars(select(PaymentRun)).all()
    assert sum(r.success_count for r in runs) == 20
    if filters[0] == filters[1]:
        assert len(runs) == 1 and any(o.startswith("refused") for o in outputs)
