"""Reconciliation: ask each gateway what it holds for a run's or a day's period, compare, keep.

The report is recorded (state "Asking the gateways") and committed before any gateway is asked,
so that every listing Settle makes is on record, whoever asked and whatever happens next.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import and_, exists, func, insert, select
from sqlalchemy.orm import aliased, selectinload

from portal import clock
from portal.audit import service as audit
from portal.errors import DomainError
from portal.exports import cell, money_cell, rows_of
from portal.extensions import db
from portal.gateways.base import Finding
from portal.gateways.models import Gateway as GatewayRow
from portal.gateways.service import plugin_for
from portal.invoices.models import Invoice
from portal.money import Money
from portal.pagination import Order
from portal.payments.models import PaymentReversal
from portal.reconciliation.acting import ASK_MARGIN, act_on
from portal.reconciliation.compare import Kind, Line, SettleCharge, View, compare
from portal.reconciliation.models import ReconciliationLine, ReconciliationReport, ReportState
from portal.runs.models import PaymentRun
from portal.sql import in_chunks
from portal.statuses import GatewayStatus
from portal.transactions.models import Finalization, Operation, PaymentTransaction

log = logging.getLogger(__name__)

# A run's period reaches this far past its start and end: the gateway's clock is not Settle's.
RUN_MARGIN = timedelta(minutes=2)
_WRITE_BATCH = 1000

_NO_MONEY = {
    GatewayStatus.DECLINE.value,
    GatewayStatus.VALIDATION_ERROR.value,
    GatewayStatus.PERMANENT_FAIL.value,
}


def settle_view(status: str, request_sent: bool | None, finalization: str | None,
                given_back: bool) -> View:  # fmt: skip
    """What Settle says happened to a charge's money."""
    if given_back:
        return View.RETURNED
    if status == GatewayStatus.PENDING:
        return View.IN_FLIGHT
    if status == GatewayStatus.SUCCESS or finalization == Finalization.MANUAL_PAYMENT:
        return View.HELD
    if status in _NO_MONEY or request_sent is False or finalization is not None:
        # Refund & Unlock without a refund or void found nothing to undo: no money moved.
        return View.NONE
    return View.UNKNOWN


def _charges(where) -> dict[int, list[SettleCharge]]:
    """Settle's charges matching `where`, per gateway, each with what Settle says of its money."""
    follow_up = aliased(PaymentTransaction)
    given_back = exists().where(
        follow_up.parent_id == PaymentTransaction.id,
        follow_up.operation.in_([Operation.REFUND.value, Operation.VOID.value]),
        follow_up.status == GatewayStatus.SUCCESS.value,
    )
    # What of the charge's booked payment was reversed (given back, or a corrected booking).
    reversed_ = (
        select(func.coalesce(func.sum(PaymentReversal.amount), 0))
        .where(PaymentReversal.transaction_id == PaymentTransaction.id)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(
            reversed_.label("reversed"),
            PaymentTransaction.id, PaymentTransaction.gateway_id, Invoice.id.label("invoice_id"),
            Invoice.number, PaymentTransaction.order_id, PaymentTransaction.order_reference,
            PaymentTransaction.idempotency_key, PaymentTransaction.provider_reference,
            PaymentTransaction.amount, PaymentTransaction.currency, PaymentTransaction.status,
            PaymentTransaction.request_sent, PaymentTransaction.finalization,
            given_back.label("given_back"),
        )
        .join(Invoice, Invoice.id == PaymentTransaction.invoice_id)
        .where(PaymentTransaction.operation == Operation.CHARGE.value, where)
        .order_by(PaymentTransaction.id)
    )  # fmt: skip
    found: dict[int, list[SettleCharge]] = {}
    for r in rows:
        money = Money(r.amount, r.currency)
        given_back = bool(r.given_back)
        # A booking corrected by a clerk (reversed without a refund of Settle's): what it books.
        reversed_ = Money(Decimal(r.reversed or 0), r.currency)
        booked = money - reversed_ if reversed_.is_positive() and not given_back else None
        view = settle_view(r.status, r.request_sent, r.finalization, given_back)
        if booked is not None and not booked.is_positive():
            view = View.NONE  # corrected to nothing: it books no money
        found.setdefault(r.gateway_id, []).append(
            SettleCharge(
                transaction_id=r.id,
                gateway_id=r.gateway_id,
                invoice_id=r.invoice_id,
                order_id=r.order_id or r.number,
                order_reference=r.order_reference,
                key=r.idempotency_key,
                reference=r.provider_reference,
                money=money,
                status=r.status,
                view=view,
                booked=booked,
            )  # fmt: skip
        )
    return found


def _known_elsewhere(gateway_id: int):
    """Which leftover findings Settle knows as a charge of another run or day of this gateway."""

    def known(found: list[Finding]) -> set[int]:
        refs = {f.reference for f in found if f.reference}
        keys = {f.key for f in found if f.key}
        seen_refs: set[str] = set()
        seen_keys: set[str] = set()
        for values, column, seen in (
            (refs, PaymentTransaction.provider_reference, seen_refs),
            (keys, PaymentTransaction.idempotency_key, seen_keys),
        ):
            for chunk in in_chunks(values):
                seen.update(
                    db.session.scalars(
                        select(column).where(
                            PaymentTransaction.gateway_id == gateway_id,
                            PaymentTransaction.operation == Operation.CHARGE.value,
                            column.in_(chunk),
                        )
                    )
                )
        return {
            n for n, f in enumerate(found)
            if (f.reference and f.reference in seen_refs) or (f.key and f.key in seen_keys)
        }  # fmt: skip

    return known


def _invoices_by_number(numbers: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in in_chunks(numbers):
        found.update(
            db.session.execute(
                select(Invoice.number, Invoice.id).where(Invoice.number.in_(chunk))
            ).all()
        )
    return found


def _row(report_id: int, gateway_id: int, line: Line, invoice_ids: dict[str, int]) -> dict:
    c, f = line.charge, line.finding
    order_id = c.order_id if c else (f.order_id if f else None)
    return {
        "report_id": report_id, "kind": line.kind.slug, "gateway_id": gateway_id,
        "transaction_id": c.transaction_id if c else None,
        "invoice_id": c.invoice_id if c else invoice_ids.get(order_id or ""),
        "order_id": order_id,
        "settle_amount": c.money.amount if c else None,
        "settle_currency": c.money.currency if c else None,
        "settle_status": c.status if c else None,
        "settle_view": c.view.value if c else None,
        "gateway_reference": (f.reference if f else None) or (c.reference if c else None),
        "gateway_amount": f.amount.amount if f and f.amount else None,
        "gateway_currency": f.amount.currency if f and f.amount else None,
        "gateway_state": f.state.value if f else None,
        "gateway_at": f.at.replace(tzinfo=None) if f and f.at else None,
        "advice": line.advice,
    }  # fmt: skip


def _start(
    actor, *, run: PaymentRun | None = None, day: date | None = None
) -> ReconciliationReport:
    if run is not None:
        if run.started_at is None:
            raise DomainError(
                f"Payment run #{run.id} has not started: there is nothing to compare."
            )
        since = run.started_at - RUN_MARGIN
        until = (run.finished_at or clock.now()) + RUN_MARGIN
    else:
        if day > clock.today_in(current_app.config["SETTLE_TIMEZONE"]):
            raise DomainError(f"{day.isoformat()} is in the future: there is nothing to compare.")
        since, until = clock.day_in_utc(day)
    report = ReconciliationReport(
        run_id=run.id if run else None, day=day, since=since, until=until,
        asked_by_id=getattr(actor, "id", None),
    )  # fmt: skip
    db.session.add(report)
    db.session.commit()  # on record before any gateway is asked
    return report


def _gateways_for(report: ReconciliationReport, charges: dict[int, list]) -> list[GatewayRow]:
    ids = set(charges)
    if report.run is not None and report.run.gateway_id:
        ids.add(report.run.gateway_id)
    if report.day is not None:
        ids.update(db.session.scalars(select(GatewayRow.id).where(GatewayRow.enabled)))
    return list(
        db.session.scalars(
            select(GatewayRow).where(GatewayRow.id.in_(ids)).order_by(GatewayRow.name)
        )
    )


def _fill(report: ReconciliationReport) -> None:
    if report.run_id:
        where = PaymentTransaction.run_id == report.run_id
    else:
        where = and_(
            PaymentTransaction.requested_at >= report.since,
            PaymentTransaction.requested_at < report.until,
        )
    charges = _charges(where)
    since, until = report.since, report.until
    targets = [(row.id, row.name, plugin_for(row)) for row in _gateways_for(report, charges)]
    db.session.commit()  # no database transaction stays open while the gateways are asked
    held = {
        gid: plugin.holdings(since - ASK_MARGIN, until + ASK_MARGIN) for gid, _, plugin in targets
    }
    plugins = {gid: plugin for gid, _, plugin in targets}
    counts = {k.slug: 0 for k in Kind}
    gateways, in_flight = [], 0
    for gateway_id, name, _ in targets:
        mine = charges.get(gateway_id, [])
        in_flight += sum(1 for c in mine if c.view is View.IN_FLIGHT)
        entry = {"id": gateway_id, "name": name, "charges": len(mine), "listed": 0, "problem": None}
        gateways.append(entry)
        holdings = held[gateway_id]
        if holdings.problem:
            # A partial listing would show charges as missing that are not: compare nothing.
            entry["problem"] = f"Not reconciled: {holdings.problem}"
            continue
        entry["listed"] = len(holdings.findings)
        lines = compare(mine, holdings.findings, since, until, _known_elsewhere(gateway_id))
        lines = [act_on(report, line, plugins[gateway_id]) for line in lines]
        numbers = {ln.finding.order_id for ln in lines if ln.charge is None and ln.finding.order_id}
        invoice_ids = _invoices_by_number(numbers)
        rows = [_row(report.id, gateway_id, ln, invoice_ids) for ln in lines]
        for ln in lines:
            counts[ln.kind.slug] += 1
        for i in range(0, len(rows), _WRITE_BATCH):
            db.session.execute(insert(ReconciliationLine), rows[i : i + _WRITE_BATCH])
    report.gateways = gateways
    report.counts = counts
    report.in_flight = in_flight
    report.state = (
        ReportState.INCOMPLETE if any(g["problem"] for g in gateways) else ReportState.DONE
    )


def reconcile(
    actor, *, run: PaymentRun | None = None, day: date | None = None
) -> ReconciliationReport:
    """Ask the gateways, compare, and keep the report (a run's, or a day's in the portal's zone)."""
    report = _start(actor, run=run, day=day)
    try:
        _fill(report)
    except Exception:
        log.exception("reconciliation report %s failed", report.id)
        db.session.rollback()
        report = db.session.get(ReconciliationReport, report.id)
        report.state = ReportState.INCOMPLETE
        report.gateways = [{"id": None, "name": "Settle", "listed": 0, "charges": 0,
                            "problem": "Settle failed while comparing; the error is in its log."}]  # fmt: skip
    report.finished_at = clock.now()
    audit.record(
        "reconciliation.asked", report, actor=actor,
        after={"state": report.state, "counts": report.counts, "in_flight": report.in_flight,
               "run_id": report.run_id, "day": report.day.isoformat() if report.day else None},
    )  # fmt: skip
    db.session.commit()
    return report


# Grouped by kind (as their slugs sort), each in the order its lines were found.
LINE_ORDER = Order((ReconciliationLine.kind, ReconciliationLine.id))


def lines(report: ReconciliationReport, kind: Kind | None):
    """The report's lines of one kind, or every disagreement (kind None), worst first."""
    query = select(ReconciliationLine).where(ReconciliationLine.report_id == report.id)
    if kind is None:
        query = query.where(ReconciliationLine.kind != Kind.MATCHED.slug)
    else:
        query = query.where(ReconciliationLine.kind == kind.slug)
    # Each line shows where its charge stands now: loaded with the page, not one query a row.
    now = selectinload(ReconciliationLine.transaction).options(
        selectinload(PaymentTransaction.invoice),
        selectinload(PaymentTransaction.finalized_by),
    )
    return query.order_by(*LINE_ORDER.clauses()).options(now)


def latest_for_run(run_id: int) -> ReconciliationReport | None:
    return db.session.scalar(
        select(ReconciliationReport)
        .where(ReconciliationReport.run_id == run_id)
        .order_by(ReconciliationReport.id.desc())
        .limit(1)
    )


EXPORT_HEADER = [
    "report_id", "kind", "gateway", "transaction_id", "invoice", "settle_status", "settle_says",
    "settle_amount", "settle_currency", "gateway_reference", "gateway_state", "gateway_amount",
    "gateway_currency", "gateway_at_utc", "what_to_do",
]  # fmt: skip


def export_rows(report: ReconciliationReport, kind: Kind | None):
    """The report's lines (one kind, or all of them) as CSV rows, streamed."""
    names = {g["id"]: g["name"] for g in report.gateways}
    t = ReconciliationLine.__table__
    query = select(t).where(t.c.report_id == report.id).order_by(t.c.kind, t.c.id)
    if kind is not None:
        query = query.where(t.c.kind == kind.slug)
    for line in rows_of(query):
        yield [
            report.id, Kind.from_slug(line.kind).value, cell(names.get(line.gateway_id, "")),
            cell(line.transaction_id), cell(line.order_id), cell(line.settle_status),
            cell(line.settle_view), money_cell(line.settle_amount, line.settle_currency),
            cell(line.settle_currency), cell(line.gateway_reference), cell(line.gateway_state),
            money_cell(line.gateway_amount, line.gateway_currency), cell(line.gateway_currency),
            cell(line.gateway_at), cell(line.advice),
        ]  # fmt: skip
