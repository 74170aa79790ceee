"""The audit log, newest first, filtered by who, what, when and which record (kept in the URL),
and its CSV export. Read-only: nothing in the portal edits an audit event."""

from flask import Blueprint, render_template, request
from sqlalchemy import select

from portal import clock, filters
from portal.audit.models import RECORDS, SENTENCES
from portal.audit.service import SYSTEM, EventFilters, export_rows
from portal.auth.models import Role, User
from portal.auth.roles import requires
from portal.exports import csv_response
from portal.extensions import db
from portal.pagination import keyset

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    f = EventFilters.from_args(request.args)
    filters.said(f.problems)
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template(
        "audit/index.html", page=keyset(f.query(), f.order), f=f, users=users, system=SYSTEM,
        sentences=SENTENCES, records=RECORDS,
    )  # fmt: skip


@bp.route("/export.csv")
@requires(Role.AUDITOR)
def export():
    f = EventFilters.from_args(request.args)
    if f.problems:
        return filters.back_to_list("audit.index", f.problems)
    header = ["id", "at_utc", "who", "action", "what", "record", "record_id", "before", "after",
              "note"]  # fmt: skip
    return csv_response(f"settle-audit-{clock.today().isoformat()}.csv", header, export_rows(f))
