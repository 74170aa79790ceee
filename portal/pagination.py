"""Paginated lists, every one by keyset: a page starts after (or ends before) the sort key of a
row, so the millionth row of a list costs what the first does, where an OFFSET would read every
row before it, and a row added meanwhile never shifts a page."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask import current_app, flash, request
from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    Numeric,
    Select,
    and_,
    false,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.types import TypeDecorator

from portal.extensions import db
from portal.ids import LARGEST

# A list counts its rows up to this many, then says "more than": counting a million rows on every
# page would cost more than the page.
COUNT_CAP = 10_000
STALE_LINK = "That page link no longer fits the list: showing its first page."


@dataclass(frozen=True)
class Order:
    """A list's order: its columns, the last one unique (an id), all in one direction."""

    columns: tuple
    descending: bool = False

    def clauses(self, reverse: bool = False) -> list:
        down = self.descending != reverse
        # NULL sorts after every value going up, before every value going down (PostgreSQL's
        # default, so its indexes serve both directions; SQLite is told the same).
        return [
            (c.desc().nulls_first() if down else c.asc().nulls_last())
            if _nullable(c)
            else (c.desc() if down else c.asc())
            for c in self.columns
        ]

    def beyond(self, key: tuple, reverse: bool = False):
        """Rows after `key` in this order (before it, reversed)."""
        down = self.descending != reverse
        if not any(_nullable(c) for c in self.columns):
            row, at = tuple_(*self.columns), tuple_(*key)
            return row < at if down else row > at
        # Spelled out column by column, NULL standing above every value.
        terms = []
        for n, (column, value) in enumerate(zip(self.columns, key, strict=True)):
            same = [_equal(c, v) for c, v in zip(self.columns[:n], key[:n], strict=True)]
            terms.append(and_(*same, _past(column, value, down)))
        return or_(*terms)

    def key_of(self, item) -> tuple:
        return tuple(getattr(item, c.key) for c in self.columns)


def _nullable(column) -> bool:
    return bool(getattr(column, "nullable", False) or getattr(column.expression, "nullable", False))


def _equal(column, value):
    return column.is_(None) if value is None else column == value


def _past(column, value, down: bool):
    """The column's values beyond `value`, NULL being the largest."""
    if value is None:
        return column.is_not(None) if down else false()
    if down:
        return column < value
    return or_(column > value, column.is_(None)) if _nullable(column) else column > value


class KeysetPage:
    """One page of a list: `items`, and the keys to the pages beside it. Read from the URL:
    `after=KEY` (the next page), `before=KEY` (the previous one), `end=last` (the last page)."""

    cap = COUNT_CAP

    def __init__(self, query: Select, order: Order, options: tuple = ()):
        self.per_page = current_app.config["SETTLE_PAGE_SIZE"]
        self.order = order
        self._base = query.order_by(None)
        self._options = options
        self._total: int | None = None
        after, before = _key(order, "after"), _key(order, "before")
        if after is not None:
            self._forward(after)
            if not self.items:  # past the end (rows went away): the last page
                self._backward(None)
        elif before is not None or request.args.get("end") == "last":
            self._backward(before)
            if not self.has_prev and len(self.items) < self.per_page:
                self._forward(None)  # back at the start: a full first page belongs there
        else:
            self._forward(None)

    def _forward(self, after: tuple | None) -> None:
        rest = self._base if after is None else self._base.where(self.order.beyond(after))
        rows = _fetch(
            rest.order_by(*self.order.clauses()).options(*self._options), self.per_page + 1
        )
        self.items = rows[: self.per_page]
        self.has_next, self.has_prev = len(rows) > self.per_page, after is not None

    def _backward(self, before: tuple | None) -> None:
        order = self.order
        rest = self._base if before is None else self._base.where(order.beyond(before, True))
        rows = _fetch(
            rest.order_by(*order.clauses(reverse=True)).options(*self._options), self.per_page + 1
        )
        self.items = list(reversed(rows[: self.per_page]))
        self.has_prev, self.has_next = len(rows) > self.per_page, before is not None

    @property
    def total(self) -> int:
        """How many rows the list has, counted up to `cap` + 1 (so: "more than `cap`")."""
        if self._total is None:
            ids = self._base.with_only_columns(self._base.selected_columns[0])
            capped = ids.limit(self.cap + 1).subquery()
            self._total = db.session.scalar(select(func.count()).select_from(capped))
        return self._total

    @property
    def next_key(self) -> str | None:
        return _token(self.order.key_of(self.items[-1])) if self.items and self.has_next else None

    @property
    def prev_key(self) -> str | None:
        return _token(self.order.key_of(self.items[0])) if self.items and self.has_prev else None


def keyset(query: Select, order: Order, *options) -> KeysetPage:
    """A keyset page of `query` in `order`; `options` load what each row shows beside it (in one
    query for the page, not one per row)."""
    return KeysetPage(query, order, options)


def _fetch(query: Select, limit: int) -> list:
    return list(db.session.scalars(query.limit(limit)))


def _token(key: tuple) -> str:
    text = json.dumps([_plain(v) for v in key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _plain(value):
    if value is None or isinstance(value, int | str):
        return value
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def _key(order: Order, name: str) -> tuple | None:
    """The key in the URL's `name`, read by each column's type; a key that does not read (an
    old or edited link) is dropped with a word, and the list starts at its first page."""
    text = request.args.get(name)
    if not text:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(values, list) or len(values) != len(order.columns):
            raise ValueError("not a key of this list")
        return tuple(_read(c, v) for c, v in zip(order.columns, values, strict=True))
    except (ValueError, TypeError, binascii.Error, InvalidOperation, UnicodeDecodeError):
        flash(STALE_LINK, "error")
        return None


def _read(column, value):
    if value is None:
        if not _nullable(column):
            raise ValueError("no value")
        return None
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, Integer):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > LARGEST:
            raise ValueError("not an id")
        return value
    if not isinstance(value, str) or len(value) > 100:
        raise ValueError("not a value")
    if isinstance(kind, DateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, Date):
        return date.fromisoformat(value)
    if isinstance(kind, Numeric):
        amount = Decimal(value)
        if not amount.is_finite():
            raise ValueError("not an amount")
        return amount
    return value
