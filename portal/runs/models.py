"""Payment runs: one pass over eligible invoices, with its filter and counts."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.types import JSONValue


class RunState(enum.StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    COMPLETED_WITH_ERRORS = "Completed with errors"
    CANCELLED = "Cancelled"

    @classmethod
    def active(cls) -> tuple[str, str]:
        return (cls.QUEUED.value, cls.RUNNING.value)


_ACTIVE_SQL = text("state IN ('Queued', 'Running')")


class PaymentRun(db.Model):
    __tablename__ = "payment_runs"
    __table_args__ = (
        # At most one active run per filter: the database refuses the second start of the same run.
        Index(
            "uq_payment_runs_active_filter",
            "filter_key",
            unique=True,
            sqlite_where=_ACTIVE_SQL,
            postgresql_where=_ACTIVE_SQL,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(30), default=RunState.QUEUED.value, index=True)
    due_on: Mapped[date]
    currency: Mapped[str | None] = mapped_column(String(3))
    gateway_id: Mapped[int | None] = mapped_column(ForeignKey("gateways.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    invoice_limit: Mapped[int | None]
    # A run started for exactly the invoices another, interrupted run did not attempt.
    follows_run_id: Mapped[int | None] = mapped_column(ForeignKey("payment_runs.id"), unique=True)
    filter_key: Mapped[str] = mapped_column(String(200))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Touched by each chunk's heartbeat (runs/lease.py): an old one means a lost executor.
    heartbeat_at: Mapped[datetime | None]
    # With a broker: when the run was last handed to it, and why that failed if it did.
    dispatched_at: Mapped[datetime | None]
    dispatch_error: Mapped[str | None] = mapped_column(Text)
    # The gateway answered 429 (Too Many Requests): its calls wait until then, and are sent again.
    rate_limited_until: Mapped[datetime | None]
    chunk_count: Mapped[int] = mapped_column(default=0, server_default="0")
    selected_count: Mapped[int] = mapped_column(default=0)
    processed_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    success_count: Mapped[int] = mapped_column(default=0)
    decline_count: Mapped[int] = mapped_column(default=0)
    failure_count: Mapped[int] = mapped_column(default=0)
    indeterminate_count: Mapped[int] = mapped_column(default=0)
    review_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)

    started_by = relationship("User")
    follows = relationship("PaymentRun", remote_side=[id])
    gateway = relationship("Gateway")
    account = relationship("Account")

    @property
    def progress_percent(self) -> int:
        if not self.selected_count:
            return 100 if not self.is_active else 0
        return min(100, (self.processed_count + self.skipped_count) * 100 // self.selected_count)

    @property
    def is_active(self) -> bool:
        return self.state in RunState.active()

    @property
    def rate_limit_note(self) -> str:
        """While a gateway's 429 pause lasts: what the run waits for, in a clerk's words."""
        until = self.rate_limited_until
        if not self.is_active or until is None or until <= clock.now():
            return ""
        return (
            "Waiting for the gateway's rate limit: it answered 429 (Too Many Requests), so its"
            f" calls pause and are sent again, with the same keys, from {clock.shown(until)}."
        )

    def describe_filter(self) -> str:
        if self.follows_run_id:
            return f"the invoices payment run #{self.follows_run_id} did not attempt"
        parts = [f"due on or before {self.due_on.isoformat()}"]
        if self.currency:
            parts.append(f"currency {self.currency}")
        if self.gateway:
            parts.append(f"gateway {self.gateway.name}")
        if self.account:
            parts.append(f"account {self.account.number}")
        if self.invoice_limit:
            parts.append(f"at most {self.invoice_limit} invoices")
        return ", ".join(parts)


class ChunkState(enum.StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    DONE = "Done"


class RunChunk(db.Model):
    """A slice of a run's invoices, executed by one worker (a Celery worker or the portal thread).

    Its state moves by conditional updates only, so two workers given the same chunk run it once.
    """

    __tablename__ = "run_chunks"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("payment_runs.id"), index=True)
    seq: Mapped[int]
    invoice_ids: Mapped[list] = mapped_column(JSONValue)
    state: Mapped[str] = mapped_column(String(20), default=ChunkState.QUEUED.value, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    dispatched_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    run = relationship("PaymentRun")


class RunSkip(db.Model):
    """An invoice a run considered and did not charge, with the first eligibility rule it failed."""

    __tablename__ = "run_skips"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("payment_runs.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    reason: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(default=clock.now)

    run = relationship("PaymentRun")
    invoice = relationship("Invoice")
