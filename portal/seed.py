"""Bulk data for benchmarks and load tests, written fast: N due invoices (one account and card
each), or N invoices with a history of daily runs' calls and their effects."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update

from portal import clock
from portal.accounts.models import Account, PaymentMethod
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.gateways.registry import shipped_mapping
from portal.invoices.models import Invoice
from portal.payments.models import Allocation, Payment, PaymentMethodKind
from portal.runs.models import PaymentRun, RunState
from portal.statuses import ACTION_REQUIRED, POLICY, GatewayStatus, RunCounter
from portal.transactions.models import Operation, PaymentTransaction

BATCH = 5000


def seed_invoices(
    count: int, gateway_name: str, token: str = "tok_approve", prefix: str = "BULK"
) -> int:
    """Add `count` due USD invoices charged through the named gateway; returns how many were added."""
    if count < 1:
        raise DomainError("Give a number of invoices of at least 1")
    gateway = db.session.scalar(select(Gateway).where(Gateway.name == gateway_name))
    if gateway is None:
        raise DomainError(f"No gateway named {gateway_name!r}")
    now, due = clock.now(), clock.today() - timedelta(days=1)
    serial = (db.session.scalar(select(db.func.count()).select_from(Account)) or 0) + 1
    for first in range(serial, serial + count, BATCH):
        numbers = range(first, min(first + BATCH, serial + count))
        account_ids = db.session.scalars(
            insert(Account).returning(Account.id, sort_by_parameter_order=True),
            [{"number": f"{prefix}-{n}", "name": f"Bulk customer {n}", "created_at": now}
             for n in numbers],
        ).all()  # fmt: skip
        db.session.execute(
            insert(PaymentMethod),
            [{"account_id": a, "gateway_id": gateway.id, "token": token, "brand": "Visa",
              "last4": "4242", "state": "Active", "is_default": True, "created_at": now}
             for a in account_ids],
        )  # fmt: skip
        db.session.execute(
            insert(Invoice),
            [{"number": f"{prefix}-INV-{n}", "account_id": a, "currency": "USD", "total": 100,
              "balance": 100, "due_date": due, "posted": True, "decline_count": 0, "created_at": now}
             for n, a in zip(numbers, account_ids, strict=True)],
        )  # fmt: skip
        db.session.commit()
    return count


# The last charge of each history invoice, by the invoice's place in a hundred: most end paid, some
# still declining, some with a bad or dead card, some locked (Action Required) for a clerk.
_ENDINGS = (
    [GatewayStatus.SUCCESS] * 80 + [GatewayStatus.DECLINE] * 8
    + [GatewayStatus.VALIDATION_ERROR] * 2 + [GatewayStatus.PERMANENT_FAIL]
    + [GatewayStatus.REQUIRES_REVIEW] * 4 + [GatewayStatus.INDETERMINATE] * 3
    + [GatewayStatus.SYSTEM_FAIL] * 2
)  # fmt: skip
# A sandbox code for each status, as the sandbox's codes.yaml maps it.
_CODES = {
    GatewayStatus.SUCCESS: "approved",
    GatewayStatus.DECLINE: "insufficient_funds",
    GatewayStatus.VALIDATION_ERROR: "incorrect_cvc",
    GatewayStatus.PERMANENT_FAIL: "account_closed",
    GatewayStatus.REQUIRES_REVIEW: "review_required",
    GatewayStatus.INDETERMINATE: "processing_timeout",
    GatewayStatus.SYSTEM_FAIL: "auth_rejected",
}
_DAYS_APART = 3  # a declined invoice is charged again by a later run
HISTORY_BATCH = 2000  # invoices written per transaction


def seed_history(
    invoices: int, transactions: int, gateway_name: str, days: int = 365, prefix: str = "HIST"
) -> tuple[int, int]:
    """Add `invoices` invoices and `transactions` gateway calls made for them by daily runs over
    the last `days` days, each answer with its status's effects as the policy writes them (payment
    and allocation, balance, lock, method state, run counters). For a portal with years of history
    to measure its pages against; the history has no audit events. Returns (invoices, calls)."""
    if invoices < 1 or transactions < invoices:
        raise DomainError("Give at least 1 invoice and at least as many transactions as invoices")
    gateway = db.session.scalar(select(Gateway).where(Gateway.name == gateway_name))
    if gateway is None:
        raise DomainError(f"No gateway named {gateway_name!r}")
    if gateway.plugin != "sandbox":
        raise DomainError("History is written in the sandbox's codes: give a sandbox gateway")
    mapping = shipped_mapping(gateway.plugin)
    today = clock.today()
    first_day = today - timedelta(days=days)
    runs = _history_runs(first_day, days)
    # Each locked invoice also has one gateway check (a lookup) of its last charge.
    locked_share = sum(POLICY[s].locks_invoice for s in _ENDINGS) / len(_ENDINGS)
    lookups = round(invoices * locked_share)
    charges = transactions - lookups
    if charges < invoices:
        raise DomainError("Give more transactions: every invoice needs a charge")
    if (_attempts(0, invoices, charges) - 1) * _DAYS_APART >= days:
        raise DomainError(
            f"{charges // invoices + 1} charges an invoice, {_DAYS_APART} days apart, do not fit"
            f" in {days} days: give more days or fewer transactions"
        )
    serial = (db.session.scalar(select(db.func.count()).select_from(Account)) or 0) + 1
    counts = {run_id: dict.fromkeys(_RUN_COUNTERS, 0) for run_id in runs.values()}
    made = 0
    for start in range(0, invoices, HISTORY_BATCH):
        batch = range(start, min(start + HISTORY_BATCH, invoices))
        made += _history_batch(
            batch, invoices, charges, serial, gateway, mapping, first_day, days, runs, counts,
            prefix,
        )  # fmt: skip
        db.session.commit()
    for run_id, moves in counts.items():
        db.session.execute(update(PaymentRun).where(PaymentRun.id == run_id).values(**moves))
    db.session.commit()
    return invoices, made


_RUN_COUNTERS = ["selected_count", "processed_count"] + [c.value for c in RunCounter]


def _history_runs(first_day: date, days: int) -> dict[date, int]:
    """One completed run per day of the history, at 02:00 UTC."""
    rows = []
    for n in range(days):
        day = first_day + timedelta(days=n)
        at = datetime.combine(day, time(2))
        rows.append({"state": RunState.COMPLETED.value, "due_on": day, "filter_key": f"history:{day}",
                     "created_at": at, "started_at": at, "finished_at": at + timedelta(hours=1)})  # fmt: skip
    ids = db.session.scalars(
        insert(PaymentRun).returning(PaymentRun.id, sort_by_parameter_order=True), rows
    ).all()
    return {row["due_on"]: run_id for row, run_id in zip(rows, ids, strict=True)}


def _attempts(n: int, invoices: int, charges: int) -> int:
    """How many charges invoice n had: the charges spread as evenly as they go."""
    return charges // invoices + (1 if n < charges % invoices else 0)


def _history_batch(batch, invoices, charges, serial, gateway, mapping, first_day, days, runs,
                   counts, prefix) -> int:  # fmt: skip
    numbers = [serial + n for n in batch]
    now = clock.now()
    account_ids = db.session.scalars(
        insert(Account).returning(Account.id, sort_by_parameter_order=True),
        [{"number": f"{prefix}-{k}", "name": f"History customer {k}", "created_at": now}
         for k in numbers],
    ).all()  # fmt: skip
    plans = []  # per invoice: its attempts' days and its last status
    for n in batch:
        attempts = _attempts(n, invoices, charges)
        span = (attempts - 1) * _DAYS_APART
        first = (n * 7919) % max(days - span, 1)  # a prime stride spreads them over the days
        plans.append(([first_day + timedelta(days=first + k * _DAYS_APART) for k in range(attempts)],
                      _ENDINGS[n % len(_ENDINGS)]))  # fmt: skip
    method_ids = db.session.scalars(
        insert(PaymentMethod).returning(PaymentMethod.id, sort_by_parameter_order=True),
        [{"account_id": a, "gateway_id": gateway.id, "token": "tok_approve", "brand": "Visa",
          "last4": "4242", "state": POLICY[end].method_state.value, "is_default": True,
          "created_at": now} for a, (_, end) in zip(account_ids, plans, strict=True)],
    ).all()  # fmt: skip
    invoice_rows = []
    for k, a, (days_of, end) in zip(numbers, account_ids, plans, strict=True):
        policy, last = POLICY[end], datetime.combine(days_of[-1], time(2, 30))
        invoice_rows.append({
            "number": f"{prefix}-INV-{k}", "account_id": a, "currency": "USD",
            "total": Decimal(100), "balance": Decimal(0) if policy.creates_payment else Decimal(100),
            "due_date": days_of[0] - timedelta(days=1), "posted": True,
            "corrective_action": ACTION_REQUIRED if policy.locks_invoice else None,
            "locked_at": last if policy.locks_invoice else None,
            "decline_count": 0 if policy.creates_payment else len(days_of),
            "created_at": datetime.combine(days_of[0] - timedelta(days=30), time(9)),
        })  # fmt: skip
    invoice_ids = db.session.scalars(
        insert(Invoice).returning(Invoice.id, sort_by_parameter_order=True), invoice_rows
    ).all()
    calls, lasts = [], []
    for k, invoice_id, method_id, (days_of, end) in zip(
        numbers, invoice_ids, method_ids, plans, strict=True
    ):
        for attempt, day in enumerate(days_of):
            status = end if attempt == len(days_of) - 1 else GatewayStatus.DECLINE
            run_id = runs[day]
            moves = counts[run_id]
            moves["selected_count"] += 1
            moves["processed_count"] += 1
            moves[POLICY[status].counter.value] += 1
            if attempt == len(days_of) - 1:
                lasts.append(len(calls))
            calls.append(_call(k, attempt, invoice_id, run_id, gateway.id, method_id, day, status,
                               mapping))  # fmt: skip
    call_ids = db.session.scalars(
        insert(PaymentTransaction).returning(PaymentTransaction.id, sort_by_parameter_order=True),
        calls,
    ).all()
    payments, checks = [], []
    for i in lasts:
        call, call_id = calls[i], call_ids[i]
        policy = POLICY[GatewayStatus(call["status"])]
        if policy.creates_payment:
            payments.append((call, call_id))
        elif policy.locks_invoice:
            checks.append(_lookup(call, call_id, mapping))
    if checks:
        db.session.execute(insert(PaymentTransaction), checks)
    _history_payments(payments, invoice_ids, account_ids)
    return len(calls) + len(checks)


def _call(k, attempt, invoice_id, run_id, gateway_id, method_id, day, status, mapping) -> dict:
    code = _CODES[status]
    entry = mapping.lookup(code)
    at = datetime.combine(day, time(2)) + timedelta(seconds=(k * 37 + attempt) % 3600)
    return {
        "operation": Operation.CHARGE.value, "invoice_id": invoice_id, "run_id": run_id,
        "gateway_id": gateway_id, "payment_method_id": method_id, "amount": Decimal(100),
        "currency": "USD", "idempotency_key": f"history-{k}-{attempt}", "status": status.value,
        "provider_code": code, "provider_message": entry.description,
        "provider_reference": f"ch_history_{k}_{attempt}", "locked_invoice": POLICY[status].locks_invoice,
        "unmapped": False, "decided_by": mapping.rule_for(entry), "guidance": entry.guidance,
        "request_sent": True, "requested_at": at, "answered_at": at + timedelta(milliseconds=200),
    }  # fmt: skip


def _lookup(charge: dict, charge_id: int, mapping) -> dict:
    at = charge["answered_at"] + timedelta(hours=1)
    found = mapping.lookup("found")
    return {
        **charge, "operation": Operation.LOOKUP.value, "parent_id": charge_id, "run_id": None,
        "idempotency_key": charge["idempotency_key"] + "-lookup", "status": GatewayStatus.SUCCESS.value,
        "provider_code": "found", "provider_message": found.description, "locked_invoice": False,
        "decided_by": mapping.rule_for(found), "guidance": found.guidance,
        "gateway_state": "unsettled", "requested_at": at, "answered_at": at,
    }  # fmt: skip


def _history_payments(payments, invoice_ids, account_ids) -> None:
    """A payment and its allocation for each Success, as the policy writes them."""
    if not payments:
        return
    account_of = dict(zip(invoice_ids, account_ids, strict=True))
    payment_ids = db.session.scalars(
        insert(Payment).returning(Payment.id, sort_by_parameter_order=True),
        [{"account_id": account_of[c["invoice_id"]], "amount": c["amount"], "currency": c["currency"],
          "method": PaymentMethodKind.GATEWAY.value, "reference": c["provider_reference"],
          "received_on": c["answered_at"].date(), "transaction_id": call_id,
          "created_at": c["answered_at"]} for c, call_id in payments],
    ).all()  # fmt: skip
    db.session.execute(
        insert(Allocation),
        [{"payment_id": p, "invoice_id": c["invoice_id"], "amount": c["amount"],
          "created_at": c["answered_at"]} for (c, _), p in zip(payments, payment_ids, strict=True)],
    )  # fmt: skip
