"""The one clock Settle reads: naive UTC datetimes, replaceable in tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

_frozen: datetime | None = None


def now() -> datetime:
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).replace(tzinfo=None)


def today() -> date:
    return now().date()


def today_in(zone: str) -> date:
    """Today where the clerks are (the portal's time zone), which may be ahead of UTC."""
    return now().replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()


def freeze(at: datetime | None) -> None:
    """Set (or with None, release) the time that now() returns; for tests and tools only."""
    global _frozen
    _frozen = at
