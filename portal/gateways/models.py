"""Configured gateways: one provider account each."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.vault import Sealed


class Gateway(db.Model):
    __tablename__ = "gateways"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    plugin: Mapped[str] = mapped_column(String(40))
    # Never shown again once saved, never logged, never stored in a raw answer.
    # Sealed at rest (portal/vault.py): the column holds Fernet tokens, never a readable secret.
    credentials: Mapped[dict] = mapped_column(Sealed, default=dict)
    base_url: Mapped[str] = mapped_column(String(500))
    timeout_seconds: Mapped[Decimal] = mapped_column(Numeric(8, 3), default=Decimal(120))
    # The most one call may take in all, however slowly the gateway drips its answer.
    deadline_seconds: Mapped[Decimal] = mapped_column(
        Numeric(8, 3), default=Decimal(120), server_default="120"
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    # Requests per second the provider allows this account (None: no limit of its own); a run
    # keeps to it besides the calls in flight (portal/runs/pace.py).
    rate_limit: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    # A supervisor's choice, allowed only where the plugin's mapping declares a repeated key safe:
    # a call that timed out is sent once more with the same key (calls.Call.make).
    resend_after_timeout: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Webhook deliveries refused (bad signature, unreadable body), the last one's time and why.
    webhooks_refused: Mapped[int] = mapped_column(default=0, server_default="0")
    webhook_refused_at: Mapped[datetime | None]
    webhook_refused_reason: Mapped[str | None] = mapped_column(String(200))

    def masked_credentials(self) -> dict[str, str]:
        """Whether each credential is set; never any part of its value (domain.md section 4)."""
        return {k: "set" if v else "(not set)" for k, v in self.credentials.items()}

    def __str__(self) -> str:
        return self.name


class UnmappedReview(db.Model):
    """A supervisor has looked at a code no mapping knows (the Unmapped codes queue)."""

    __tablename__ = "unmapped_reviews"
    __table_args__ = (UniqueConstraint("plugin", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime] = mapped_column(default=clock.now)

    reviewed_by = relationship("User")
