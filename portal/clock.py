"""The one clock Settle reads: naive UTC datetimes (tests move it with time-machine)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

# The zone people read times in (SETTLE_TIMEZONE), set once by create_app.
_shown_in = ZoneInfo("UTC")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def today() -> date:
    return now().date()


def today_in(zone: str) -> date:
    """Today where the clerks are (the portal's time zone), which may be ahead of UTC."""
    return now().replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()


def show_in(zone: str) -> None:
    global _shown_in
    _shown_in = ZoneInfo(zone)


def shown(at: datetime | str | None) -> str:
    """A stored time as people read it everywhere: the portal's zone, to the second."""
    if not at:
        return "—"
    if isinstance(at, str):  # an ISO time kept in JSON (a lookup's findings)
        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(_shown_in).strftime("%Y-%m-%d %H:%M:%S %Z")


def day_in_utc(day: date) -> tuple[datetime, datetime]:
    """A day where the clerks are (the portal's zone), as the UTC period [since, until)."""
    start = datetime.combine(day, datetime.min.time(), _shown_in)
    end = datetime.combine(date.fromordinal(day.toordinal() + 1), datetime.min.time(), _shown_in)
    return (
        start.astimezone(UTC).replace(tzinfo=None),
        end.astimezone(UTC).replace(tzinfo=None),
    )
