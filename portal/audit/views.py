"""The audit log, newest first. Read-only: nothing in the portal edits an audit event."""

from flask import Blueprint, render_template
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.auth.roles import requires
from portal.pagination import paginate

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    page = paginate(select(AuditEvent).order_by(AuditEvent.id.desc()))
    return render_template("audit/index.html", page=page)
