"""The dashboard: what needs action now, oldest first."""

from flask import Blueprint, render_template

from portal.auth.models import Role
from portal.auth.roles import requires
from portal.listings import dashboard

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    return render_template("dashboard/index.html", **dashboard.overview())
