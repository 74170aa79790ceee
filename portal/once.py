"""One-time form tokens for money actions: a double click, a second tab or a back-and-resubmit
of the same form is spent once; the repeat is told when the first went through."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
from portal.errors import NotAllowed
from portal.extensions import db


class FormToken(db.Model):
    __tablename__ = "form_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    used_at: Mapped[datetime | None]


def issue(user, action: str) -> str:
    """A fresh token for a form about to be shown; committed with the page's request."""
    token = secrets.token_urlsafe(24)
    db.session.add(FormToken(token=token, user_id=user.id, action=action))
    db.session.commit()
    return token


def spend(token: str | None, user, action: str) -> None:
    """Spend the token or refuse, changing nothing: the database lets exactly one request win."""
    spent = db.session.execute(
        update(FormToken)
        .where(
            FormToken.token == (token or ""),
            FormToken.user_id == user.id,
            FormToken.action == action,
            FormToken.used_at.is_(None),
        )
        .values(used_at=clock.now())
    ).rowcount
    if spent == 1:
        db.session.commit()
        return
    db.session.rollback()
    used = db.session.scalar(select(FormToken.used_at).where(FormToken.token == (token or "")))
    if used is not None:
        raise NotAllowed(f"This form was already submitted at {clock.shown(used)}; see below")
    raise NotAllowed("This form is stale or was not issued to you: reload the page and try again")
