"""The one clock Settle reads: naive UTC datetimes, replaceable in tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

_frozen: datetime | None = None


def now() -> datetime:
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).replace(tzinfo=None)


def today() -> date:
    return now().date()


def freeze(at: datetime | None) -> None:
    """Set (or with None, release) the time that now() returns; for tests and tools only."""
    global _frozen
    _frozen = at
