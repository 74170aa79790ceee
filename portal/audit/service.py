"""Writing and reading audit events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, event, or_, select
from sqlalchemy.orm import Session

from portal import clock, exports, filters
from portal.audit.models import RECORDS, SENTENCES, AuditEvent, sentence
from portal.auth.models import User
from portal.exports import cell
from portal.extensions import db
from portal.ids import record_id
from portal.pagination import Order

SYSTEM = "settle"  # the "who" of events Settle itself wrote (runs, recovery, the janitor)


def record(action: str, entity, *, actor=None, before=None, after=None, note=None) -> AuditEvent:
    """An event about `entity`, written with the database transaction. An entity not written yet
    (a payment among a batch of answers) has no id: its event waits for the flush that gives it
    one, so that a batch needs no flush per record; so does an event whose `after` names such a
    record (the record itself, whose id it then keeps)."""
    event = AuditEvent(
        at=clock.now(),
        actor_id=getattr(actor, "id", None),
        action=action,
        entity_type=type(entity).__tablename__,
        entity_id=entity.id,
        before=before,
        after=after,
        note=note,
    )
    if entity.id is None or any(_unwritten(v) for v in (after or {}).values()):
        db.session.info.setdefault(_WAITING, []).append((event, entity))
    else:
        event.after = _ids(after)
        db.session.add(event)
    return event


def _ids(after: dict | None) -> dict | None:
    """`after` with each record it names replaced by that record's id."""
    if not after:
        return after
    return {k: v.id if hasattr(v, "__tablename__") else v for k, v in after.items()}


def _unwritten(value) -> bool:
    """A record (a payment) named in an event's `after` before the flush that gives it an id."""
    return hasattr(value, "__tablename__") and value.id is None


_WAITING = "audit_waiting_for_ids"


@event.listens_for(Session, "after_flush_postexec")
def _give_ids(session, flush_context) -> None:
    """The flush gave the waiting events' records their ids: the events join the session, and
    the commit's next flush writes them (a commit flushes until nothing is left)."""
    waiting = session.info.get(_WAITING)
    if not waiting:
        return
    session.info[_WAITING] = []
    for audit_event, entity in waiting:
        after = audit_event.after or {}
        if entity.id is None or any(_unwritten(v) for v in after.values()):
            session.info[_WAITING].append((audit_event, entity))
            continue
        audit_event.entity_id = entity.id
        audit_event.after = _ids(audit_event.after)
        session.add(audit_event)


@event.listens_for(Session, "before_commit")
def _none_left_waiting(session) -> None:
    if session.info.get(_WAITING):
        session.flush()
    if session.info.get(_WAITING):  # never silently dropped: the commit fails instead
        raise RuntimeError("an audit event's record was never written to the database")


@event.listens_for(Session, "after_transaction_end")
def _forget_waiting(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WAITING, None)


def timeline(*entities) -> list[AuditEvent]:
    clauses = [
        (AuditEvent.entity_type == type(e).__tablename__) & (AuditEvent.entity_id == e.id)
        for e in entities
    ]
    if not clauses:
        return []
    return list(
        db.session.scalars(
            select(AuditEvent).where(or_(*clauses)).order_by(AuditEvent.at, AuditEvent.id)
        )
    )


@dataclass
class EventFilters:
    who: str = ""
    what: str = ""
    record: str = ""
    record_id: int | None = None
    since: date | None = None
    until: date | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> EventFilters:
        f = cls(
            who=args.get("who", ""),
            what=filters.choice(args.get("what", ""), SENTENCES),
            record=filters.choice(args.get("record", ""), RECORDS),
        )
        f.record_id = args.get("id", type=record_id)
        f.since = filters.day(args.get("since", ""), "From", f.problems)
        f.until = filters.day(args.get("until", ""), "To", f.problems)
        return f

    def query(self) -> Select:
        query = select(AuditEvent)
        if self.who == SYSTEM:
            query = query.where(AuditEvent.actor_id.is_(None))
        elif self.who:
            user = select(User.id).where(User.username == self.who).scalar_subquery()
            query = query.where(AuditEvent.actor_id == user)
        if self.what:
            query = query.where(AuditEvent.action == self.what)
        if self.record:
            query = query.where(AuditEvent.entity_type == self.record)
            if self.record_id:
                query = query.where(AuditEvent.entity_id == self.record_id)
        if self.since:
            query = query.where(AuditEvent.at >= datetime.combine(self.since, time.min))
        if self.until:
            end = datetime.combine(self.until + timedelta(days=1), time.min)
            query = query.where(AuditEvent.at < end)
        return query.order_by(*self.order.clauses())

    # The newest first.
    order = Order((AuditEvent.id,), descending=True)


def export_rows(f: EventFilters):
    e = AuditEvent
    query = (
        f.query()
        .with_only_columns(
            e.id,
            e.at,
            User.username,
            e.action,
            e.entity_type,
            e.entity_id,
            e.before,
            e.after,
            e.note,
        )  # fmt: skip
        .outerjoin(User, User.id == e.actor_id)
    )
    for r in exports.rows_of(query):
        yield [
            r.id, cell(r.at), r.username or "Settle (system)", r.action, sentence(r.action),
            RECORDS.get(r.entity_type, r.entity_type), r.entity_id,
            cell(json.dumps(r.before, default=str)) if r.before else "",
            cell(json.dumps(r.after, default=str)) if r.after else "", cell(r.note),
        ]  # fmt: skip
