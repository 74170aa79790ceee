"""Reading and changing settings; every change is audited."""

from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.settings.models import Setting

STRICT_MODE = "strict_mode"
# What this database transaction read of the settings, kept in the session's info: a batch of
# answers asks each setting once, not once per answer. A change in it, or its end, forgets.
_READ = "settings_read"
_MISSING = object()


def _row(key: str) -> Setting | None:
    return db.session.scalar(select(Setting).where(Setting.key == key))


def get(key: str, default=None):
    read = db.session.info.setdefault(_READ, {})
    if key not in read:
        row = _row(key)
        read[key] = _MISSING if row is None else row.value.get("value", _MISSING)
    value = read[key]
    return default if value is _MISSING else value


@event.listens_for(Session, "after_transaction_end")
def _forget(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_READ, None)


def put(key: str, value, actor, note: str | None = None) -> None:
    db.session.info.pop(_READ, None)
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
