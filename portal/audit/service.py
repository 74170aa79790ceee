"""Writing and reading audit events."""

from __future__ import annotations

from sqlalchemy import or_, select

from portal.audit.models import AuditEvent
from portal.extensions import db


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
