"""Settings a supervisor changes in the portal (strict mode, ...), one row per key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.types import JSONValue


class Setting(db.Model):
    __tablename__ = "settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    value: Mapped[dict] = mapped_column(JSONValue)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    updated_by = relationship("User")
