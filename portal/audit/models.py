"""Audit events: who did what to which record, when, with before and after. Append-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.types import JSONText


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    # None means Settle itself (a run, the janitor).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int]
    before: Mapped[dict | None] = mapped_column(JSONText)
    after: Mapped[dict | None] = mapped_column(JSONText)
    note: Mapped[str | None] = mapped_column(Text)

    actor = relationship("User")

    @property
    def actor_name(self) -> str:
        return str(self.actor) if self.actor else "Settle (system)"
