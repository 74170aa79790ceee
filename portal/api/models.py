"""API tokens (stored hashed, shown once) and the kept answers of POSTs by Idempotency-Key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    # The token's first characters, to tell tokens apart; the token itself is never stored.
    prefix: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user = relationship("User", foreign_keys=[user_id])
    created_by = relationship("User", foreign_keys=[created_by_id])
    revoked_by = relationship("User", foreign_keys=[revoked_by_id])


class ApiRequest(db.Model):
    """A POST under an Idempotency-Key: claimed before it runs, its answer kept once it succeeded."""

    __tablename__ = "api_requests"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_api_requests_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    # What was asked (method, path and body, hashed): a key is for one request only.
    fingerprint: Mapped[str] = mapped_column(String(64))
    http_status: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # When the request running under the key took it: a repeat takes over a claim older than
    # SETTLE_API_IDEMPOTENCY_LEASE_SECONDS that has no answer (its request died).
    claimed_at: Mapped[datetime] = mapped_column(default=clock.now)
