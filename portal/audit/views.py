"""The audit log, newest first, filtered by who, what, when and which record (kept in the URL).
Read-only: nothing in the portal edits an audit event."""

from datetime import datetime, time, timedelta

from flask import Blueprint, flash, render_template, request
from sqlalchemy import select

from portal import filters
from portal.audit.models import RECORDS, SENTENCES, AuditEvent
from portal.auth.models import Role, User
from portal.auth.roles import requires
from portal.extensions import db
from portal.pagination import paginate

bp = Blueprint("audit", __name__, url_prefix="/audit")

SYSTEM = "settle"  # the "who" of events Settle itself wrote (runs, recovery, the janitor)


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    args = request.args
    query = select(AuditEvent)
    who = args.get("who", "")
    if who == SYSTEM:
        query = query.where(AuditEvent.actor_id.is_(None))
    elif who:
        query = query.where(
            AuditEvent.actor_id == select(User.id).where(User.username == who).scalar_subquery()
        )
    what = args.get("what", "")
    if what in SENTENCES:
        query = query.where(AuditEvent.action == what)
    record = args.get("record", "")
    if record in RECORDS:
        query = query.where(AuditEvent.entity_type == record)
        record_id = args.get("id", type=int)
        if record_id:
            query = query.where(AuditEvent.entity_id == record_id)
    problems: list[str] = []
    since = filters.day(args.get("since", ""), "From", problems)
    until = filters.day(args.get("until", ""), "To", problems)
    for problem in problems:
        flash(problem, "error")
    if since:
        query = query.where(AuditEvent.at >= datetime.combine(since, time.min))
    if until:
        query = query.where(AuditEvent.at < datetime.combine(until + timedelta(days=1), time.min))
    page = paginate(query.order_by(AuditEvent.id.desc()))
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template(
        "audit/index.html", page=page, users=users, system=SYSTEM, sentences=SENTENCES,
        records=RECORDS, who=who, what=what, record=record, since=since, until=until,
    )  # fmt: skip
