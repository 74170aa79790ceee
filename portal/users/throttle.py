"""Failed logins: after FREE_FAILURES in a row a username is locked for a time that doubles with
each further failure (1 minute, 2, 4 ... at most an hour). A locked username is refused even with
the right password, until the time has passed or an admin resets the password. A day without a
failure starts the count afresh.

Counted per username as typed, lower case, whether or not such a user exists, so a locked unknown
name and a locked real account get the same answer: the lock tells an attacker nothing about
which accounts exist. The increment is one UPDATE, so two wrong passwords at once both count.
Per client address (and per username per minute), Flask-Limiter refuses floods before a password
is even checked (portal/web/auth.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.audit import service as audit
from portal.auth.models import LoginThrottle
from portal.extensions import db

FREE_FAILURES = 5
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(hours=1)
# A failure this long after the last one starts the count afresh.
FORGET_AFTER = timedelta(days=1)


def key(username: str) -> str:
    return username.strip().lower()[:80]


def locked_until(username: str) -> datetime | None:
    """When the username may try again, if it is locked now."""
    until = db.session.scalar(
        select(LoginThrottle.locked_until).where(LoginThrottle.username == key(username))
    )
    return until if until is not None and until > clock.now() else None


def lock_for(failures: int) -> timedelta | None:
    """How long `failures` failed logins in a row lock a username for; None: not locked."""
    if failures < FREE_FAILURES:
        return None
    return min(FIRST_LOCK * 2 ** (failures - FREE_FAILURES), LONGEST_LOCK)


def failed(username: str, address: str | None) -> datetime | None:
    """Count one failed login; when the username is locked by it, until when (audited)."""
    name, now = key(username), clock.now()
    bump = (
        update(LoginThrottle)
        .where(LoginThrottle.username == name)
        .values(
            failures=case(
                (LoginThrottle.last_failure_at < now - FORGET_AFTER, 1),
                else_=LoginThrottle.failures + 1,
            ),
            last_failure_at=now,
        )
    )
    row = _row(name)
    db.session.execute(bump)
    db.session.refresh(row)
    length = lock_for(row.failures)
    if length is None:
        return None
    row.locked_until = now + length
    audit.record(
        "login.locked", row, after={"username": name, "failures": row.failures,
                                    "until": row.locked_until, "address": address},
    )  # fmt: skip
    return row.locked_until


# (address, limit) -> when its refusals were last audited, in this process.
_audited: dict[tuple[str | None, str], datetime] = {}
AUDIT_EVERY = timedelta(minutes=1)


def throttled(username: str, address: str | None, limit: str) -> bool:
    """Flask-Limiter refused a login: audited once a minute per address and limit (a flood of
    refusals is one event a minute, not one row per request); whether an event was written."""
    now = clock.now()
    last = _audited.get((address, limit))
    if last is not None and now - last < AUDIT_EVERY:
        return False
    if len(_audited) > 10_000:
        _audited.clear()
    _audited[(address, limit)] = now
    name = key(username)
    row = _row(name)
    audit.record(
        "login.throttled", row, after={"username": name, "address": address, "limit": limit}
    )
    return True


def _row(name: str) -> LoginThrottle:
    """The name's row, made (with no failures) if it is new; two requests making it at once
    end with the one row the unique index let in."""
    find = select(LoginThrottle).where(LoginThrottle.username == name)
    row = db.session.scalar(find)
    if row is None:
        try:
            with db.session.begin_nested():
                row = LoginThrottle(username=name, failures=0)
                db.session.add(row)
        except IntegrityError:
            row = db.session.scalar(find)
    return row


def succeeded(username: str) -> None:
    db.session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.username == key(username))
        .values(failures=0, locked_until=None)
    )


def unlock(username: str) -> None:
    """An admin reset the user's password: the lock and its count go."""
    succeeded(username)
