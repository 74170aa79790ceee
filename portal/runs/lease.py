"""Run and chunk liveness, in one place: how often an executor beats, when its silence means it
died, how often a chunk may be taken over, when a message the broker never delivered is sent
again, and how long a Pending call may still be in flight. The engine, the run sweep and
recovery all ask here, with a broker or without one, by the database's clock (database_now).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, text

from portal.extensions import db
from portal.runs.models import ChunkState, PaymentRun, RunChunk, RunState

# A chunk's executor writes its heartbeat this often (seconds), from a thread of its own.
HEARTBEAT_EVERY = 20.0
# A Running chunk silent this long has lost its executor; another may take it over...
STALE_AFTER = timedelta(seconds=360)
# ...this many times in all, after which the chunk is given up (its invoices not attempted).
MAX_ATTEMPTS = 3
# A run or chunk handed to the broker that no worker took after this is sent again (a duplicate
# message is harmless: its conditional UPDATE finds it taken).
RESEND_AFTER = timedelta(minutes=10)
# A Running run silent longer than the longest gateway timeout (300 s) plus a margin is orphaned.
RUN_ORPHANED_AFTER = timedelta(seconds=360)
# A Pending call younger than its gateway's timeout plus this may still be in flight elsewhere.
IN_FLIGHT_MARGIN = timedelta(seconds=60)
# The longest gateway timeout Settle allows: nothing can be in flight longer than this.
LONGEST_CALL = timedelta(seconds=300)


def database_now() -> datetime:
    """The database's clock (naive UTC): every heartbeat is written by it and every staleness
    judged by it, so that workers on machines whose clocks differ agree on who is alive."""
    if db.session.get_bind().dialect.name == "postgresql":
        # clock_timestamp(), not now(): now() stands still for the whole database transaction.
        return db.session.scalar(text("SELECT timezone('UTC', clock_timestamp())"))
    # SQLite is embedded: its clock is this machine's.
    stamp = db.session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
    return datetime.fromisoformat(stamp)


def chunk_stale(now: datetime):
    """A Running chunk whose executor has stopped beating."""
    return and_(
        RunChunk.state == ChunkState.RUNNING.value, RunChunk.heartbeat_at < now - STALE_AFTER
    )


def chunk_live(now: datetime):
    """A Running chunk whose executor still beats."""
    return and_(
        RunChunk.state == ChunkState.RUNNING.value, RunChunk.heartbeat_at > now - STALE_AFTER
    )


def chunk_claimable(now: datetime):
    """A chunk an executor may take: Queued, or stale with attempts left."""
    return and_(RunChunk.attempts < MAX_ATTEMPTS,
                or_(RunChunk.state == ChunkState.QUEUED.value, chunk_stale(now)))  # fmt: skip


def chunk_exhausted(now: datetime):
    """A stale chunk that has lost MAX_ATTEMPTS executors: to be given up."""
    return and_(chunk_stale(now), RunChunk.attempts >= MAX_ATTEMPTS)


def undelivered(column, now: datetime):
    """Never handed to the broker, or handed so long ago that it was lost."""
    return or_(column.is_(None), column < now - RESEND_AFTER)


def chunk_unheld(now: datetime):
    """A chunk no live worker holds: Queued and never delivered (or lost), or stale."""
    waiting = and_(
        RunChunk.state == ChunkState.QUEUED.value, undelivered(RunChunk.dispatched_at, now)
    )
    return or_(waiting, chunk_stale(now))


def run_never_started(now: datetime):
    """A Queued run handed to a thread that never began it: the thread died with its process."""
    return and_(
        PaymentRun.state == RunState.QUEUED.value, PaymentRun.created_at < now - RUN_ORPHANED_AFTER
    )


def run_orphaned(now: datetime):
    """A run whose executor has been silent longer than RUN_ORPHANED_AFTER."""
    return func.coalesce(PaymentRun.heartbeat_at, PaymentRun.started_at) < now - RUN_ORPHANED_AFTER


def call_may_be_in_flight(requested_at: datetime, timeout_seconds: float, now: datetime) -> bool:
    return requested_at > now - timedelta(seconds=timeout_seconds) - IN_FLIGHT_MARGIN
