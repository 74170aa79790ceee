"""Writing and reading audit events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, or_, select

from portal import exports, filters
from portal.audit.models import RECORDS, SENTENCES, AuditEvent, sentence
from portal.auth.models import User
from portal.exports import cell
from portal.extensions import db
from portal.ids import record_id

SYSTEM = "settle"  # the "who" of events Settle itself wrote (runs, recovery, the janitor)


def record(action: str, entity, *, actor=None, before=None, after=None, note=None) -> AuditEvent:
    event = AuditEvent(
        actor_id=getattr(actor, "id", None),
        action=action,
        entity_type=type(entity).__tablename__,
        entity_id=entity.id,
        before=before,
        after=after,
        note=note,
    )
    db.session.add(event)
    return event


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
        return query.order_by(AuditEvent.id.desc())


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
