"""The month at a glance: collected, declined and locked per day for the last 30 days, and
declines by code and gateway. Summed in SQL (exact: NUMERIC on PostgreSQL, integer ten-thousandths on SQLite),
drawn server-side as SVG with the numbers in a table beside each chart."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import BigInteger, cast, func, select

from portal import clock
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.money import Money
from portal.statuses import GatewayStatus
from portal.transactions.models import Operation, PaymentTransaction

DAYS = 30
_SCALE = 10_000  # the columns keep 4 decimals


@dataclass
class Day:
    day: date
    success: int = 0
    decline: int = 0
    locked: int = 0


@dataclass
class Month:
    days: list[Day]
    collected: dict[str, dict[date, Money]]  # per currency, per day
    declines: list[tuple[str, str, int]]  # gateway, code, how many

    @property
    def busiest(self) -> int:
        return max([1] + [d.success + d.decline + d.locked for d in self.days])


def month(today: date | None = None) -> Month:
    today = today or clock.today()
    first = today - timedelta(days=DAYS - 1)
    t = PaymentTransaction
    day = func.date(t.requested_at)
    charges = (
        t.operation == Operation.CHARGE.value,
        t.requested_at >= datetime.combine(first, time.min),
    )
    days = {first + timedelta(n): Day(first + timedelta(n)) for n in range(DAYS)}
    collected: dict[str, dict[date, Money]] = {}
    # PostgreSQL sums NUMERIC exactly; SQLite would sum in floats, so there it sums integers.
    exact = db.session.get_bind().dialect.name == "postgresql"
    total = (
        func.sum(t.amount) if exact else func.sum(cast(func.round(t.amount * _SCALE), BigInteger))
    )
    declined: Counter[tuple[int, str]] = Counter()
    # One pass over the month's charges (on PostgreSQL from the index alone: MONTH_COLUMNS).
    groups = (day, t.status, t.locked_invoice, t.currency, t.gateway_id, t.provider_code)
    for when, status, locked, currency, gateway_id, code, count, summed in db.session.execute(
        select(*groups, func.count(), total).where(*charges).group_by(*groups)
    ):
        if status == GatewayStatus.DECLINE.value:
            declined[gateway_id, code or "—"] += count
        entry = days.get(_day(when))
        if entry is None:
            continue
        if status == GatewayStatus.SUCCESS.value:
            entry.success += count
            amount = Decimal(summed) if exact else Decimal(int(summed)).scaleb(-4)
            per_day = collected.setdefault(currency, {})
            per_day[entry.day] = per_day.get(entry.day, Money(Decimal(0), currency)) + Money(
                amount, currency
            )
        elif status == GatewayStatus.DECLINE.value and not locked:
            entry.decline += count
        if locked:
            entry.locked += count
    names = dict(db.session.execute(select(Gateway.id, Gateway.name)).all())
    by_name: Counter[tuple[str, str]] = Counter()
    for (gateway_id, code), count in declined.items():
        by_name[names[gateway_id], code] += count
    top = sorted(by_name.items(), key=lambda item: (-item[1], item[0]))[:10]
    declines = [(name, code, count) for (name, code), count in top]
    return Month(list(days.values()), collected, declines)


def _day(value) -> date:
    """SQLite's date() is text, PostgreSQL's a date."""
    return value if isinstance(value, date) else date.fromisoformat(value)
