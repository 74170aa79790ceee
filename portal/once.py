"""One-time form tokens for money actions: a double click, a second tab or a back-and-resubmit
of the same form is spent once; the repeat is told when the first went through.

A token carries the moment it was issued, under its signature, and is refused once LIFETIME has
passed: a form found in an old tab does not move money. So a spent token's row is needed only
for LIFETIME, and the janitor removes older ones (`forget_expired`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import ForeignKey, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
from portal.errors import NotAllowed
from portal.extensions import db

LIFETIME = timedelta(hours=12)


class FormToken(db.Model):
    """A spent one-time token (its nonce): a second spend of it fails on the unique index."""

    __tablename__ = "form_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    used_at: Mapped[datetime | None]


def _signature(user_id: int, action: str, nonce: str, issued: str) -> str:
    key = (
        current_app.secret_key.encode()
        if isinstance(current_app.secret_key, str)
        else current_app.secret_key
    )
    return hmac.new(
        key, f"{user_id}:{action}:{nonce}:{issued}".encode(), hashlib.sha256
    ).hexdigest()[:32]


def issue(user, action: str) -> str:
    """A fresh token for a form about to be shown: signed for this user and action, and written
    nowhere, so that showing a page changes nothing (a GET never commits)."""
    nonce, issued = (
        secrets.token_urlsafe(18),
        str(int(clock.now().replace(tzinfo=UTC).timestamp())),
    )  # clock.now() is naive UTC
    return f"{nonce}.{issued}.{_signature(user.id, action, nonce, issued)}"


def spend(token: str | None, user, action: str) -> None:
    """Spend the token or refuse, changing nothing: the spent token's unique row lets exactly one
    request win."""
    nonce, issued, signature = ((token or "").split(".") + ["", "", ""])[:3]
    if (
        not nonce
        or not issued.isdigit()
        or not hmac.compare_digest(signature, _signature(user.id, action, nonce, issued))
    ):
        raise NotAllowed(
            "This form is stale or was not issued to you: reload the page and try again"
        )
    now = clock.now()
    if now - datetime.fromtimestamp(int(issued), UTC).replace(tzinfo=None) > LIFETIME:
        hours = int(LIFETIME.total_seconds() // 3600)
        raise NotAllowed(
            f"This form was shown more than {hours} hours ago: reload the page and try again"
        )
    db.session.add(FormToken(token=nonce, user_id=user.id, action=action, created_at=now,
                             used_at=now))  # fmt: skip
    try:
        db.session.commit()
        return
    except IntegrityError:
        db.session.rollback()
    used = db.session.scalar(select(FormToken.used_at).where(FormToken.token == nonce))
    raise NotAllowed(f"This form was already submitted at {clock.shown(used)}; see below")


def forget_expired(now: datetime | None = None) -> int:
    """Remove spent tokens older than LIFETIME (a token that old is refused by its age anyway)."""
    cutoff = (now or clock.now()) - LIFETIME - timedelta(minutes=5)
    removed = db.session.execute(delete(FormToken).where(FormToken.used_at < cutoff)).rowcount
    db.session.commit()
    return removed
