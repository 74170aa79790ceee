"""The invoices list and the Action Required queue: filters read from the URL, so that a
filtered list can be bookmarked, and the sort a clerk chose."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, and_, or_, select

from portal import exports, filters
from portal.accounts.models import Account
from portal.auth.models import User
from portal.exports import cell
from portal.invoices.models import Invoice, InvoiceState, invoice_state
from portal.pagination import Order
from portal.statuses import ACTION_REQUIRED

# The tabs: every invoice, or those in one state.
STATES = {
    "all": "All invoices",
    "action-required": InvoiceState.ACTION_REQUIRED.value,
    "open": InvoiceState.OPEN.value,
    "partially-paid": InvoiceState.PARTIALLY_PAID.value,
    "paid": InvoiceState.PAID.value,
    "cancelled": InvoiceState.CANCELLED.value,
}
OWNERS = {"": "Anyone's", "mine": "Mine", "nobody": "Nobody's yet"}
SORTS = {
    "due": Invoice.due_date,
    "locked": Invoice.locked_at,
    "balance": Invoice.balance,
    "number": Invoice.number,
    "created": Invoice.id,
}


def state_clause(state: str):
    live = Invoice.cancelled_at.is_(None)
    unlocked = and_(live, Invoice.corrective_action.is_(None))
    return {
        "action-required": and_(live, Invoice.corrective_action == ACTION_REQUIRED),
        "open": and_(unlocked, Invoice.balance > 0, Invoice.balance == Invoice.total),
        "partially-paid": and_(unlocked, Invoice.balance > 0, Invoice.balance < Invoice.total),
        "paid": and_(unlocked, Invoice.balance <= 0),
        "cancelled": Invoice.cancelled_at.is_not(None),
    }[state]


@dataclass
class InvoiceFilters:
    state: str = "all"
    q: str = ""
    currency: str = ""
    due_from: date | None = None
    due_to: date | None = None
    locked_before: date | None = None
    owner: str = ""
    sort: str = "due"
    descending: bool = False
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> InvoiceFilters:
        f = cls()
        f.state = filters.choice(args.get("filter", ""), STATES, "all")
        f.q = args.get("q", "").strip()[:80]
        f.currency = filters.currency(args.get("currency", ""), f.problems)
        f.due_from = filters.day(args.get("due_from", ""), "Due from", f.problems)
        f.due_to = filters.day(args.get("due_to", ""), "Due to", f.problems)
        f.locked_before = filters.day(
            args.get("locked_before", ""), "Locked since before", f.problems
        )
        f.owner = filters.choice(args.get("owner", ""), OWNERS)
        f.sort = args.get("sort", "")
        if f.sort in SORTS:
            f.descending = args.get("dir") == "desc"
        else:
            # The queue is worked oldest due first; the other lists show the newest first.
            f.sort, f.descending = ("due", False) if f.is_queue else ("created", True)
        return f

    @property
    def is_queue(self) -> bool:
        return self.state == "action-required"

    def query(self, user, with_account: bool = False) -> Select:
        # The account is joined only where a column of it is read: counting a long list through
        # the join would cost a read of each row's account.
        query = select(Invoice)
        if self.q or with_account:
            query = query.join(Account)
        if self.state != "all":
            query = query.where(state_clause(self.state))
        if self.q:
            like = f"%{self.q}%"
            query = query.where(
                or_(
                    Invoice.number.ilike(like), Account.name.ilike(like), Account.number.ilike(like)
                )
            )
        if self.currency:
            query = query.where(Invoice.currency == self.currency)
        if self.due_from:
            query = query.where(Invoice.due_date >= self.due_from)
        if self.due_to:
            query = query.where(Invoice.due_date <= self.due_to)
        if self.locked_before:
            end = datetime.combine(self.locked_before + timedelta(days=1), time.min)
            query = query.where(Invoice.locked_at < end)
        if self.owner == "mine":
            query = query.where(Invoice.owner_id == user.id)
        elif self.owner == "nobody":
            query = query.where(Invoice.owner_id.is_(None))
        return query.order_by(*self.order.clauses())

    @property
    def order(self) -> Order:
        column = SORTS[self.sort]
        return Order((column,) if column is Invoice.id else (column, Invoice.id), self.descending)


EXPORT_HEADER = [
    "number", "account", "account_name", "currency", "total", "balance", "state", "due_date",
    "posted", "corrective_action", "locked_at_utc", "owner", "created_at_utc",
]  # fmt: skip


def export_rows(filters: InvoiceFilters, user):
    """The filtered list as CSV rows, read in batches with one query."""
    i = Invoice
    query = (
        filters.query(user, with_account=True)
        .with_only_columns(
            i.number,
            Account.number,
            Account.name,
            i.currency,
            i.total,
            i.balance,
            i.corrective_action,
            i.due_date,
            i.posted,
            i.locked_at,
            User.username,
            i.created_at,
            i.cancelled_at,
        )  # fmt: skip
        .outerjoin(User, User.id == i.owner_id)
    )
    for r in exports.rows_of(query):
        state = invoice_state(r.corrective_action, r.total, r.balance, r.cancelled_at is not None)
        yield [
            cell(r[0]), cell(r[1]), cell(r[2]), r.currency, exports.money_cell(r.total, r.currency),
            exports.money_cell(r.balance, r.currency), state.value, cell(r.due_date),
            cell(r.posted), r.corrective_action, cell(r.locked_at), r.username, cell(r.created_at),
        ]  # fmt: skip
