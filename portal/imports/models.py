"""An uploaded import file, kept between its preview and a supervisor's confirmation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.types import JSONValue


class ImportBatch(db.Model):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # The file as uploaded (only once it is known to hold no card number).
    content: Mapped[str] = mapped_column(Text)
    # What the preview counted: rows to create, update, leave unchanged, refuse.
    counts: Mapped[dict] = mapped_column(JSONValue)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Applied once, by a conditional update: a second confirmation changes nothing.
    applied_at: Mapped[datetime | None]
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    # Previewed, then Applying (in the background, for a large file), Applied or Failed.
    state: Mapped[str] = mapped_column(String(20), default="Previewed", server_default="Previewed")
    rows_total: Mapped[int] = mapped_column(default=0, server_default="0")
    rows_done: Mapped[int] = mapped_column(default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]

    uploaded_by = relationship("User", foreign_keys=[uploaded_by_id])
    applied_by = relationship("User", foreign_keys=[applied_by_id])

    @property
    def percent(self) -> int:
        return 100 if not self.rows_total else min(100, self.rows_done * 100 // self.rows_total)
