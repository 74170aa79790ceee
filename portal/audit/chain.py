"""A tamper-evident audit trail: every event is sealed into a hash chain moments after its
database transaction commits, and `flask settle audit verify` walks the chain.

Each sealed event carries its place (`seq`, 1, 2, 3 ...), the hash of the event before it
(`prev_hash`) and its own `hash`: SHA-256 of the previous hash and the event's content (id, time,
actor, action, record, before, after, note). Changing an event breaks its hash; removing one
leaves a gap in `seq` or breaks the next event's link; removing the newest ones disagrees with
the chain's head (`audit_chain`, the last place and hash), which `verify` prints so that it can be
kept elsewhere. On PostgreSQL a trigger refuses every DELETE of an audit event and every UPDATE
but the one that seals it.

Sealing runs a moment after commit, in a thread of its own and a short transaction that takes
only the head's row: never inside a clerk's or a run's transaction (no lock or connection is held
across the two, and the hot path does not wait). Events a crash left unsealed are sealed by the
next commit, the janitor, or `verify`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from portal.audit.models import AuditChain, AuditEvent
from portal.extensions import db
from portal.types import json_text

log = logging.getLogger(__name__)

GENESIS = "0" * 64
# Events sealed per transaction of the sealer (a backlog is sealed in several).
BATCH = 1000


def content(row) -> str:
    """The canonical text an event's hash covers: all it says, and its id."""
    at = row.at.isoformat(sep=" ", timespec="microseconds")
    return json_text([row.id, at, row.actor_id, row.action, row.entity_type, row.entity_id,
                      row.before, row.after, row.note])  # fmt: skip


def digest(prev_hash: str, row) -> str:
    return hashlib.sha256((prev_hash + content(row)).encode()).hexdigest()


def _lock_head(connection):
    """The head's row, locked for this transaction (SQLite: its write lock, by a no-op UPDATE),
    made first if it is missing."""
    head = AuditChain.__table__
    insert = sqlite_insert if connection.dialect.name == "sqlite" else postgres_insert
    connection.execute(
        insert(head).values(id=1, last_seq=0, last_hash=GENESIS).on_conflict_do_nothing()
    )
    query = select(head.c.last_seq, head.c.last_hash).where(head.c.id == 1)
    if connection.dialect.name == "sqlite":
        connection.execute(update(head).where(head.c.id == 1).values(last_seq=head.c.last_seq))
        return connection.execute(query).one()
    return connection.execute(query.with_for_update()).one()


_SEAL = (
    update(AuditEvent.__table__)
    .where(AuditEvent.__table__.c.id == bindparam("row_id"))
    .values(seq=bindparam("s"), prev_hash=bindparam("p"), hash=bindparam("h"))
)


def seal(engine=None) -> int:
    """Seal every committed event not sealed yet, in id order; how many were sealed."""
    engine = engine or db.engine
    sealed = 0
    while True:
        with engine.begin() as connection:
            seq, last = _lock_head(connection)
            rows = connection.execute(
                select(AuditEvent.__table__)
                .where(AuditEvent.seq.is_(None))
                .order_by(AuditEvent.id)
                .limit(BATCH)
            ).all()
            seals = []
            for row in rows:
                seq += 1
                last_for_row = digest(last, row)
                seals.append({"row_id": row.id, "s": seq, "p": last, "h": last_for_row})
                last = last_for_row
            if rows:
                # One statement for the batch (executemany): the head's lock is held briefly.
                connection.execute(_SEAL, seals)
                connection.execute(
                    update(AuditChain)
                    .where(AuditChain.id == 1)
                    .values(last_seq=seq, last_hash=last)
                )
        sealed += len(rows)
        if len(rows) < BATCH:
            return sealed


@dataclass
class Verdict:
    events: int = 0
    unsealed: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify() -> Verdict:
    """Walk the chain in order; every event changed, removed or out of place is a problem."""
    verdict = Verdict()
    expected_seq, last = 0, GENESIS
    # The head first, then the events up to it: what another process seals meanwhile lies beyond
    # the head read, and is not mistaken for a cut.
    head = db.session.execute(
        select(AuditChain.last_seq, AuditChain.last_hash).where(AuditChain.id == 1)
    ).one_or_none() or (0, GENESIS)
    rows = db.session.execute(
        select(AuditEvent.__table__)
        .where(AuditEvent.seq.is_not(None), AuditEvent.seq <= head[0])
        .order_by(AuditEvent.seq)
    )
    for row in rows:
        verdict.events += 1
        expected_seq += 1
        if row.seq != expected_seq:
            verdict.problems.append(
                f"Event(s) removed before #{row.id}: place {expected_seq} to {row.seq - 1} missing"
            )
            expected_seq = row.seq
        if row.prev_hash != last:
            verdict.problems.append(
                f"Event #{row.id} does not follow the one before it (removed or replaced)"
            )
        if digest(row.prev_hash, row) != row.hash:
            verdict.problems.append(f"Event #{row.id} was changed after it was written")
        last = row.hash
    if (head[0], head[1]) != (expected_seq, last):
        verdict.problems.append(
            f"The chain's head says {head[0]} event(s), the table holds {expected_seq}:"
            " the newest were removed or the head was changed"
        )
    verdict.unsealed = db.session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))
    )
    verdict.head = head[1]
    db.session.rollback()
    return verdict


class _Sealer:
    """One thread per process seals what commits wrote, a moment later and in batches: the
    committing request or run never waits for it, nor holds a second connection."""

    DELAY = 0.2  # seconds: commits within it are sealed together

    def __init__(self):
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._engines: dict[int, object] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def poke(self, engine) -> None:
        with self._lock:
            self._engines[id(engine)] = engine
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
                self._thread.start()
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float = 30) -> bool:
        """Until every commit poked so far is sealed (tests, before they empty the tables)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.DELAY)
            self._wake.clear()
            with self._lock:
                engines = list(self._engines.values())
            for engine in engines:
                try:
                    seal(engine)
                except Exception:  # sealed by the next poke, the janitor or verify
                    log.exception("sealing audit events failed; they stay unsealed for now")
            if not self._wake.is_set():
                self._idle.set()


_sealer = _Sealer()
wait_idle = _sealer.wait_idle


@event.listens_for(Session, "after_flush")
def _remember(session, flush_context):
    if any(isinstance(o, AuditEvent) for o in session.new):
        session.info["settle_audit_written"] = True


@event.listens_for(Session, "after_commit")
def _seal_soon(session):
    if session.info.pop("settle_audit_written", False):
        _sealer.poke(session.get_bind())


@event.listens_for(Session, "after_rollback")
def _forget(session):
    session.info.pop("settle_audit_written", None)
