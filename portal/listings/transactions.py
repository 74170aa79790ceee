"""The transactions list: its filters, read from the URL so that a filtered list can be bookmarked.

Payments (charges, refunds, voids: calls that move money) and gateway checks (lookups, which move
none) are listed apart: a lookup's Success says the gateway answered, not that money moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Select, select, true
from sqlalchemy.orm import selectinload

from portal import exports, filters
from portal.accounts.models import Account
from portal.exports import cell
from portal.gateways.models import Gateway
from portal.ids import record_id
from portal.invoices.models import Invoice
from portal.money import MoneyError, parse_amount
from portal.pagination import Order
from portal.statuses import GatewayStatus
from portal.transactions.models import Operation, PaymentTransaction

MONEY_MOVING = (Operation.CHARGE.value, Operation.REFUND.value, Operation.VOID.value)
KINDS = {"payments": "Payments", "checks": "Gateway checks", "all": "All calls"}
SORTS = {
    "requested": PaymentTransaction.id,  # ids grow with time, and the index is the key's
    "amount": PaymentTransaction.amount,
}


def row_loads() -> tuple:
    """What each row of a transactions list shows beside the call: loaded for the page at once.
    (A function: the options need every model mapped, which is not so at import.)"""
    return selectinload(PaymentTransaction.invoice), selectinload(PaymentTransaction.gateway)


def is_payment_operation(operation: str) -> bool:
    return operation in MONEY_MOVING


@dataclass
class TxnFilters:
    kind: str = "payments"
    status: str = ""
    gateway_id: int | None = None
    invoice: str = ""
    account: str = ""
    since: date | None = None
    until: date | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    unmapped: bool = False
    sort: str = "requested"
    descending: bool = True
    # Each value the list could not read, with why: shown, and that filter left out.
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> TxnFilters:
        f = cls()
        f.kind = filters.choice(args.get("kind", ""), KINDS, "payments")
        f.status = filters.choice(args.get("status", ""), {s.value for s in GatewayStatus})
        f.gateway_id = args.get("gateway", type=record_id)
        f.invoice = args.get("invoice", "").strip()[:40]
        f.account = args.get("account", "").strip()[:80]
        f.since = filters.day(args.get("since", ""), "From", f.problems)
        f.until = filters.day(args.get("until", ""), "To", f.problems)
        f.min_amount = f._amount(args.get("min", ""), "Amount from")
        f.max_amount = f._amount(args.get("max", ""), "Amount to")
        f.unmapped = args.get("unmapped") == "1"
        f.sort = filters.choice(args.get("sort", ""), SORTS, "requested")
        f.descending = args.get("dir", "desc") != "asc"
        return f

    def _amount(self, text: str, label: str) -> Decimal | None:
        if not text:
            return None
        try:
            # The most decimals any currency has: the filter spans currencies.
            return parse_amount(text, "KWD")
        except MoneyError as exc:
            self.problems.append(f"{label}: {exc}; left out")
            return None

    def query(self) -> Select:
        t = PaymentTransaction
        query = select(t)
        if self.kind == "payments":
            query = query.where(t.operation.in_(MONEY_MOVING))
        elif self.kind == "checks":
            query = query.where(t.operation == Operation.LOOKUP.value)
        if self.status and self.kind != "checks":
            # A status is a payment's: a gateway check's "Success" only says the gateway answered.
            query = query.where(t.status == self.status, t.operation.in_(MONEY_MOVING))
        if self.gateway_id:
            query = query.where(t.gateway_id == self.gateway_id)
        if self.invoice:
            query = query.where(
                t.invoice_id.in_(
                    select(Invoice.id).where(Invoice.number.ilike(f"%{self.invoice}%"))
                )
            )
        if self.account:
            like = f"%{self.account}%"
            accounts = select(Account.id).where(
                Account.number.ilike(like) | Account.name.ilike(like)
            )
            query = query.where(
                t.invoice_id.in_(select(Invoice.id).where(Invoice.account_id.in_(accounts)))
            )
        if self.since:
            query = query.where(t.requested_at >= datetime.combine(self.since, time.min))
        if self.until:
            query = query.where(
                t.requested_at < datetime.combine(self.until + timedelta(days=1), time.min)
            )
        if self.min_amount is not None:
            query = query.where(t.amount >= self.min_amount)
        if self.max_amount is not None:
            query = query.where(t.amount <= self.max_amount)
        if self.unmapped:
            query = query.where(t.unmapped == true())  # as its partial index says it
        return query.order_by(*self.order.clauses())

    @property
    def order(self) -> Order:
        column = SORTS[self.sort]
        columns = (column,) if column is PaymentTransaction.id else (column, PaymentTransaction.id)
        return Order(columns, self.descending)


EXPORT_HEADER = [
    "id", "call", "kind", "invoice", "account", "gateway", "amount", "currency", "status",
    "gateway_state", "provider_code", "provider_message", "provider_reference", "unmapped",
    "idempotency_key", "run_id", "parent_id", "requested_at_utc", "answered_at_utc",
    "finalization", "finalized_at_utc",
]  # fmt: skip


def export_rows(filters: TxnFilters):
    """The filtered list as CSV rows, read in batches with one query (no lookup per row)."""
    t = PaymentTransaction
    query = (
        filters.query()
        .with_only_columns(
            t.id,
            t.operation,
            Invoice.number,
            Account.number,
            Gateway.name,
            t.amount,
            t.currency,
            t.status,
            t.gateway_state,
            t.provider_code,
            t.provider_message,
            t.provider_reference,
            t.unmapped,
            t.idempotency_key,
            t.run_id,
            t.parent_id,
            t.requested_at,
            t.answered_at,
            t.finalization,
            t.finalized_at,
        )  # fmt: skip
        .join_from(t, Invoice, Invoice.id == t.invoice_id)
        .join(Account, Account.id == Invoice.account_id)
        .join_from(t, Gateway, Gateway.id == t.gateway_id)
    )
    for r in exports.rows_of(query):
        payment = is_payment_operation(r.operation)
        yield [
            r.id, r.operation, "payment" if payment else "gateway check", cell(r[2]), cell(r[3]),
            cell(r[4]), exports.money_cell(r.amount, r.currency) if payment else "", r.currency,
            r.status if payment else "", r.gateway_state, cell(r.provider_code),
            cell(r.provider_message), cell(r.provider_reference), cell(r.unmapped),
            r.idempotency_key, r.run_id, r.parent_id, cell(r.requested_at), cell(r.answered_at),
            r.finalization, cell(r.finalized_at),
        ]  # fmt: skip
