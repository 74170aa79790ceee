"""Payment runs: start one (refusing a duplicate), execute it, finish it with its state."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import date

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.accounts.models import Account
from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices import service as invoices
from portal.invoices.models import Invoice
from portal.invoices.service import RunFilter
from portal.money import MINOR_UNITS
from portal.runs.charging import charge_invoice
from portal.runs.models import PaymentRun, RunSkip, RunState
from portal.statuses import GatewayStatus
from portal.transactions.models import PaymentTransaction

log = logging.getLogger(__name__)


def filter_key(rf: RunFilter) -> str:
    return "|".join(
        [
            rf.due_on.isoformat(),
            rf.currency or "*",
            str(rf.gateway_id or "*"),
            str(rf.account_id or "*"),
        ]
    )


def run_filter(run: PaymentRun) -> RunFilter:
    return RunFilter(
        due_on=run.due_on,
        currency=run.currency,
        gateway_id=run.gateway_id,
        account_id=run.account_id,
        at=run.started_at,
    )


def start_run(
    *,
    due_on: date,
    actor,
    currency: str | None = None,
    gateway_id: int | None = None,
    account_id: int | None = None,
    invoice_limit: int | None = None,
) -> PaymentRun:
    """Queue a run. The same filter cannot run twice at once: the database refuses the second."""
    if currency and currency not in MINOR_UNITS:
        raise DomainError(f"Unknown currency {currency!r}")
    if gateway_id and db.session.get(Gateway, gateway_id) is None:
        raise DomainError("Unknown gateway")
    if account_id and db.session.get(Account, account_id) is None:
        raise DomainError("Unknown account")
    if invoice_limit is not None and invoice_limit < 1:
        raise DomainError("The cap must be at least 1 invoice")
    rf = RunFilter(due_on, currency or None, gateway_id or None, account_id or None)
    key = filter_key(rf)
    active = db.session.scalar(
        select(PaymentRun).where(
            PaymentRun.filter_key == key, PaymentRun.state.in_(RunState.active())
        )
    )
    if active is not None:
        raise DomainError(
            f"Payment run #{active.id} with the same filter is still {active.state.lower()}"
        )
    run = PaymentRun(
        due_on=due_on,
        currency=rf.currency,
        gateway_id=rf.gateway_id,
        account_id=rf.account_id,
        invoice_limit=invoice_limit,
        filter_key=key,
        started_by_id=actor.id if actor else None,
        state=RunState.QUEUED.value,
    )
    db.session.add(run)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise DomainError("A payment run with the same filter was started a moment ago") from None
    audit.record("payment_run.started", run, actor=actor, after={"filter": run.describe_filter()})
    return run


def execute_run(run_id: int) -> PaymentRun:
    """Charge every eligible invoice of a Queued run. Safe to call from a thread or a worker."""
    moved = db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == run_id, PaymentRun.state == RunState.QUEUED.value)
        .values(state=RunState.RUNNING.value, started_at=clock.now(), heartbeat_at=clock.now())
    ).rowcount
    db.session.commit()
    run = db.session.get(PaymentRun, run_id)
    if moved != 1:
        log.info("payment run #%s is %s, not Queued: not executed again", run_id, run.state)
        return run
    rf = run_filter(run)
    ids = invoices.candidate_ids(rf)
    run.selected_count = len(ids)
    db.session.commit()
    errors, charged, considered = [], 0, 0
    app = current_app._get_current_object()
    gates = _Gates(app.config["SETTLE_GATEWAY_CONCURRENCY"])
    width = gates.per_gateway * max(1, _gateway_count())
    in_flight: set[Future] = set()

    unsaved = {"skips": [], "since": time.monotonic()}

    def save(force: bool = False) -> None:
        """The run's skips and heartbeat, at most once a second: one write, not one per invoice."""
        if not force and time.monotonic() - unsaved["since"] < 1.0:
            return
        skips = unsaved["skips"]
        db.session.add_all(skips)
        db.session.execute(
            update(PaymentRun)
            .where(PaymentRun.id == run_id)
            .values(heartbeat_at=clock.now(), skipped_count=PaymentRun.skipped_count + len(skips))
        )
        db.session.commit()
        unsaved["skips"], unsaved["since"] = [], time.monotonic()

    def settle(done) -> None:
        nonlocal charged
        for future in done:
            invoice_id = future.invoice_id
            try:
                outcome = future.result()
            except Exception as exc:  # one invoice's trouble must not stop the run
                log.error("payment run #%s: invoice %s failed: %s", run_id, invoice_id, exc)
                errors.append(f"invoice {invoice_id}: {exc}")
                continue
            if outcome.skipped:
                reason = outcome.skipped
                unsaved["skips"].append(
                    RunSkip(run_id=run_id, invoice_id=invoice_id, reason=reason)
                )
            else:
                charged += 1
        save()

    with ThreadPoolExecutor(max_workers=min(width, 64), thread_name_prefix=f"run-{run_id}") as pool:
        for invoice_id in ids:
            # A capped run keeps what is in flight within the cap: each call may yet charge.
            while in_flight and (
                len(in_flight) >= width
                or (run.invoice_limit and charged + len(in_flight) >= run.invoice_limit)
            ):
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(done)
            if run.invoice_limit and charged >= run.invoice_limit:
                break
            if _state(run_id) == RunState.CANCELLED:
                break  # a supervisor cancelled it: the calls in flight finish and are recorded
            considered += 1
            future = pool.submit(_charge_in_worker, app, run_id, rf, invoice_id, gates)
            future.invoice_id = invoice_id
            in_flight.add(future)
        settle(wait(in_flight).done)
    save(force=True)
    if considered < len(ids):
        # The cap stopped the run early: it considered only these.
        db.session.execute(
            update(PaymentRun).where(PaymentRun.id == run_id).values(selected_count=considered)
        )
        db.session.commit()
    return finish_run(run_id, errors)


class _Gates:
    """At most `per_gateway` calls in flight to any one gateway, whatever the run's width."""

    def __init__(self, per_gateway: int):
        self.per_gateway = max(1, per_gateway)
        self._gates: dict[int, threading.Semaphore] = {}
        self._lock = threading.Lock()

    def gate(self, gateway_id: int) -> threading.Semaphore:
        with self._lock:
            return self._gates.setdefault(gateway_id, threading.Semaphore(self.per_gateway))


def _gateway_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Gateway)) or 1


def _charge_in_worker(app, run_id: int, rf: RunFilter, invoice_id: int, gates: _Gates):
    """One invoice, in a worker thread with its own database session."""
    with app.app_context():
        try:
            run = db.session.get(PaymentRun, run_id)
            invoice = db.session.get(Invoice, invoice_id)
            method = invoices.charging_method(invoice)
            with gates.gate(method.gateway_id if method else 0):
                return charge_invoice(invoice_id, run, rf)
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def _state(run_id: int) -> str:
    return db.session.scalar(select(PaymentRun.state).where(PaymentRun.id == run_id))


def cancel_run(run_id: int, actor, note: str | None = None) -> bool:
    """Stop a Queued or Running run: it charges no further invoice. False if it had ended."""
    moved = db.session.execute(
        update(PaymentRun)
        .where(PaymentRun.id == run_id, PaymentRun.state.in_(RunState.active()))
        .values(state=RunState.CANCELLED.value)
    ).rowcount
    if moved != 1:
        db.session.rollback()
        return False
    run = db.session.get(PaymentRun, run_id, populate_existing=True)
    if run.started_at is None:
        run.finished_at = clock.now()
    if note:
        run.error = note
    audit.record("payment_run.cancelled", run, actor=actor, note=note)
    db.session.commit()
    return True


def finish_run(run_id: int, errors: list[str]) -> PaymentRun:
    run = db.session.get(PaymentRun, run_id, populate_existing=True)
    if run.state == RunState.CANCELLED:
        run.finished_at = clock.now()
        run.error = "\n".join(filter(None, [run.error, *errors])) or None
        audit.record("payment_run.finished", run, after={"state": run.state})
        db.session.commit()
        return run
    troubled = db.session.scalar(
        select(func.count())
        .select_from(PaymentTransaction)
        .where(
            PaymentTransaction.run_id == run_id,
            PaymentTransaction.status.in_(
                [
                    GatewayStatus.SYSTEM_FAIL.value,
                    GatewayStatus.INDETERMINATE.value,
                    GatewayStatus.PENDING.value,
                ]
            ),
        )
    )
    run.state = (
        RunState.COMPLETED_WITH_ERRORS.value if errors or troubled else RunState.COMPLETED.value
    )
    run.error = "\n".join(errors) or None
    run.finished_at = clock.now()
    audit.record("payment_run.finished", run, after={"state": run.state})
    db.session.commit()
    return run


def skip_reasons(run: PaymentRun) -> list[tuple[str, int]]:
    """How many invoices the run skipped for each reason, most frequent first."""
    rows = db.session.execute(
        select(RunSkip.reason, func.count())
        .where(RunSkip.run_id == run.id)
        .group_by(RunSkip.reason)
        .order_by(func.count().desc())
    )
    return [(reason, count) for reason, count in rows]


def collected(run: PaymentRun) -> dict[str, str]:
    """Amount collected per currency, summed as Decimal in Python (SQLite sums would be floats)."""
    totals: dict = {}
    rows = db.session.execute(
        select(PaymentTransaction.currency, PaymentTransaction.amount).where(
            PaymentTransaction.run_id == run.id,
            PaymentTransaction.status == GatewayStatus.SUCCESS.value,
        )
    )
    for currency, amount in rows:
        totals[currency] = totals.get(currency, 0) + amount
    return totals
