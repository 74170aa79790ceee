"""Server-side sessions: every login is a row, and the browser's signed cookie holds only a random
key whose hash names that row. A request whose row is ended is logged out, so logout, a password
change, a role change, deactivation or an admin's "End" cut every copy of the cookie, however it
was copied. Login starts a fresh cookie (new key, new CSRF token): a session fixed before login
is worth nothing after it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import request, session
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from portal import clock
from portal.auth.models import UserSession
from portal.extensions import db

COOKIE_KEY = "settle_session"
# last_seen_at is written at most this often (not on every request).
SEEN_EVERY = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def begin(user) -> UserSession:
    """A new session for `user`: the old cookie's content (and its CSRF token) is dropped."""
    session.clear()
    key = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user.id,
        key_hash=_hash(key),
        address=(request.remote_addr or "")[:45] or None,
        user_agent=(request.user_agent.string or "")[:200] or None,
    )
    db.session.add(row)
    db.session.flush()
    session[COOKIE_KEY] = key
    return row


def current() -> UserSession | None:
    """This request's open session row, or None (no key, unknown key, or ended)."""
    key = session.get(COOKIE_KEY)
    if not isinstance(key, str):
        return None
    row = db.session.scalar(select(UserSession).where(UserSession.key_hash == _hash(key)))
    if row is None or row.ended_at is not None:
        return None
    now = clock.now()
    if now - row.last_seen_at >= SEEN_EVERY:
        # On a connection of its own: the request's unit of work is the request's to commit.
        with db.engine.begin() as connection:
            connection.execute(
                update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now)
            )
        # The loaded row says so too: asked again in this request, it writes nothing (a second
        # write from the side would wait on this request's own SQLite write lock).
        set_committed_value(row, "last_seen_at", now)
    return row


def end_current(reason: str) -> None:
    row = current()
    if row is not None:
        end(row, reason)
    session.clear()


def end(row: UserSession, reason: str) -> None:
    if row.ended_at is None:
        row.ended_at, row.ended_reason = clock.now(), reason


def end_all(user, reason: str, *, keep: UserSession | None = None) -> int:
    """End every open session of `user` (but `keep`); how many were ended."""
    query = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None)
    )
    if keep is not None:
        query = query.where(UserSession.id != keep.id)
    return db.session.execute(query.values(ended_at=clock.now(), ended_reason=reason)).rowcount


def open_sessions(user) -> list[UserSession]:
    return list(
        db.session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
            .order_by(UserSession.last_seen_at.desc())
        )
    )
