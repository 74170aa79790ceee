"""Reading and changing settings; every change is audited."""

from __future__ import annotations

from sqlalchemy import select

from portal import clock
from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.settings.models import Setting

STRICT_MODE = "strict_mode"


def _row(key: str) -> Setting | None:
    return db.session.scalar(select(Setting).where(Setting.key == key))


def get(key: str, default=None):
    row = _row(key)
    return default if row is None else row.value.get("value", default)


def put(key: str, value, actor, note: str | None = None) -> None:
    row = _row(key)
    before = None if row is None else row.value.get("value")
    if row is None:
        row = Setting(key=key, value={})
        db.session.add(row)
    row.value = {"value": value}
    row.updated_by_id = getattr(actor, "id", None)
    row.updated_at = clock.now()
    db.session.flush()
    audit.record(
        f"setting.{key}", row, actor=actor, before={key: before}, after={key: value}, note=note
    )


def strict_mode() -> bool:
    """Salesforce Billing's behaviour: every status but Success locks the invoice."""
    return bool(get(STRICT_MODE, False))


def whole_numbers(text: str, *, count: int, lowest: int, highest: int, problem: str) -> list[int]:
    """A list of 1 to `count` whole numbers, each `lowest` to `highest`, written with spaces or
    commas (a schedule); `problem` is the message when it is not."""
    try:
        values = [int(part) for part in (text or "").replace(",", " ").split()]
    except ValueError:
        raise DomainError(problem) from None
    if not 1 <= len(values) <= count or not all(lowest <= v <= highest for v in values):
        raise DomainError(problem)
    return values
