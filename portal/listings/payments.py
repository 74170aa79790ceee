"""The payments list and its exports: the payments with their allocations, and the ledger for the
general ledger, one row per money movement (payment, refund, allocation, unallocation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, and_, literal, null, select, union_all

from portal import clock, exports, filters
from portal.accounts.models import Account
from portal.auth.models import User
from portal.exports import cell
from portal.invoices.models import Invoice
from portal.pagination import Order
from portal.payments.models import Allocation, Payment, PaymentMethodKind, PaymentReversal
from portal.statuses import GatewayStatus
from portal.transactions.models import Operation, PaymentTransaction


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min)


@dataclass
class PaymentFilters:
    method: str = ""
    currency: str = ""
    account: str = ""
    since: date | None = None
    until: date | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> PaymentFilters:
        f = cls(account=args.get("account", "").strip()[:80])
        f.method = filters.choice(args.get("method", ""), {m.value for m in PaymentMethodKind})
        f.currency = filters.currency(args.get("currency", ""), f.problems)
        f.since = filters.day(args.get("since", ""), "Received from", f.problems)
        f.until = filters.day(args.get("until", ""), "Received to", f.problems)
        return f

    def query(self) -> Select:
        query = select(Payment).join(Account, Account.id == Payment.account_id)
        if self.method:
            query = query.where(Payment.method == self.method)
        if self.currency:
            query = query.where(Payment.currency == self.currency)
        if self.account:
            like = f"%{self.account}%"
            query = query.where(Account.number.ilike(like) | Account.name.ilike(like))
        if self.since:
            query = query.where(Payment.received_on >= self.since)
        if self.until:
            query = query.where(Payment.received_on <= self.until)
        return query.order_by(*self.order.clauses())

    # The newest first.
    order = Order((Payment.id,), descending=True)


PAYMENTS_HEADER = [
    "payment_id", "received_on", "account", "amount", "currency", "method", "reference",
    "transaction_id", "allocation_id", "invoice", "allocated", "allocated_at_utc",
    "unallocated_at_utc", "unallocation_reason",
]  # fmt: skip


def payment_rows(f: PaymentFilters):
    """One row per allocation (a payment without one has a row of its own), as on screen."""
    a = Allocation
    query = (
        f.query()
        .with_only_columns(
            Payment.id,
            Payment.received_on,
            Account.number,
            Payment.amount,
            Payment.currency,
            Payment.method,
            Payment.reference,
            Payment.transaction_id,
            a.id.label("allocation_id"),
            Invoice.number.label("invoice"),
            a.amount.label("allocated"),
            a.created_at,
            a.unallocated_at,
            a.unallocation_reason,
        )  # fmt: skip
        .outerjoin(a, a.payment_id == Payment.id)
        .outerjoin(Invoice, Invoice.id == a.invoice_id)
        .order_by(None)
        .order_by(Payment.id.desc(), a.id)
    )
    for r in exports.rows_of(query):
        yield [
            r.id, cell(r.received_on), cell(r.number), exports.money_cell(r.amount, r.currency),
            r.currency, r.method, cell(r.reference), r.transaction_id, r.allocation_id,
            cell(r.invoice), exports.money_cell(r.allocated, r.currency), cell(r.created_at),
            cell(r.unallocated_at), cell(r.unallocation_reason),
        ]  # fmt: skip


LEDGER_HEADER = [
    "at_utc", "movement", "amount", "currency", "account", "invoice", "payment_id",
    "transaction_id", "gateway_reference", "method", "by",
]  # fmt: skip


def ledger_period(args) -> tuple[date, date, list[str]]:
    """The ledger's dates, inclusive; this month so far when none are given."""
    problems: list[str] = []
    today = clock.today()
    since = filters.day(args.get("since", ""), "Ledger from", problems) or today.replace(day=1)
    until = filters.day(args.get("until", ""), "Ledger to", problems) or today
    if until < since:
        problems.append("The ledger's end is before its start")
    return since, until, problems


def ledger_rows(since: date, until: date):
    """Every money movement in the period, oldest first: payments received (+), refunds that
    went through (-), bookings reversed because the gateway does not hold them (-), allocations
    to invoices (+) and unallocations (-), with the gateway's
    reference, one query streamed in batches."""
    start, end = _start(since), _start(until + timedelta(days=1))
    p, a, t, u = Payment, Allocation, PaymentTransaction, User
    payments = (
        select(p.created_at.label("at"), literal("payment").label("movement"),
               p.amount.label("amount"), p.currency.label("currency"), Account.number.label("account"),
               null().label("invoice"), p.id.label("payment_id"), p.transaction_id.label("txn"),
               p.reference.label("reference"), p.method.label("method"), u.username.label("by"))
        .join(Account, Account.id == p.account_id).outerjoin(u, u.id == p.created_by_id)
        .where(p.created_at >= start, p.created_at < end)
    )  # fmt: skip
    refunds = (
        select(t.answered_at, literal("refund"), t.amount, t.currency, Account.number,
               Invoice.number, null(), t.id, t.provider_reference, literal("Gateway"), u.username)
        .join(Invoice, Invoice.id == t.invoice_id).join(Account, Account.id == Invoice.account_id)
        .outerjoin(u, u.id == t.created_by_id)
        .where(t.operation == Operation.REFUND.value, t.status == GatewayStatus.SUCCESS.value,
               t.answered_at >= start, t.answered_at < end)
    )  # fmt: skip
    allocations = (
        select(a.created_at, literal("allocation"), a.amount, p.currency, Account.number,
               Invoice.number, p.id, p.transaction_id, p.reference, p.method, u.username)
        .join(p, p.id == a.payment_id).join(Invoice, Invoice.id == a.invoice_id)
        .join(Account, Account.id == Invoice.account_id).outerjoin(u, u.id == a.created_by_id)
        .where(a.created_at >= start, a.created_at < end)
    )  # fmt: skip
    unallocations = (
        select(a.unallocated_at, literal("unallocation"), a.amount, p.currency, Account.number,
               Invoice.number, p.id, p.transaction_id, p.reference, p.method, u.username)
        .join(p, p.id == a.payment_id).join(Invoice, Invoice.id == a.invoice_id)
        .join(Account, Account.id == Invoice.account_id).outerjoin(u, u.id == a.unallocated_by_id)
        .where(and_(a.unallocated_at >= start, a.unallocated_at < end))
    )  # fmt: skip
    # A booking corrected to what the gateway holds: money Settle had booked and never had. A
    # reversal because Settle's own refund gave it back is that refund's row already.
    r = PaymentReversal
    reversals = (
        select(r.created_at, literal("reversal"), r.amount, p.currency, Account.number, null(),
               p.id, r.transaction_id, p.reference, p.method, u.username)
        .join(p, p.id == r.payment_id).join(Account, Account.id == p.account_id)
        .outerjoin(u, u.id == r.created_by_id)
        .where(r.refund_id.is_(None), r.created_at >= start, r.created_at < end)
    )  # fmt: skip
    movements = union_all(payments, refunds, allocations, unallocations, reversals).subquery()
    query = select(movements).order_by(movements.c.at, movements.c.movement)
    outgoing = {"refund", "unallocation", "reversal"}
    for r in exports.rows_of(query):
        amount = exports.money_cell(r.amount, r.currency)
        yield [
            cell(r.at), r.movement, f"-{amount}" if r.movement in outgoing else amount,
            r.currency, cell(r.account), cell(r.invoice), r.payment_id, r.txn,
            cell(r.reference), r.method, r.by or "Settle (system)",
        ]  # fmt: skip
