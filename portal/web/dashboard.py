"""The dashboard: what needs action now, oldest first."""

from flask import Blueprint, render_template
from sqlalchemy import func, select

from portal.auth.models import Role
from portal.auth.roles import requires
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.service import retries_exhausted
from portal.listings import charts
from portal.runs import service as runs_service
from portal.runs.models import PaymentRun
from portal.statuses import ACTION_REQUIRED
from portal.transactions.lookups import latest_answers

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    locked_count = db.session.scalar(
        select(func.count())
        .select_from(Invoice)
        .where(Invoice.corrective_action == ACTION_REQUIRED)
    )
    locked = db.session.scalars(
        select(Invoice)
        .where(Invoice.corrective_action == ACTION_REQUIRED)
        .order_by(Invoice.due_date, Invoice.id)
        .limit(10)
    ).all()
    answers = latest_answers(locked)
    runs = db.session.scalars(select(PaymentRun).order_by(PaymentRun.id.desc()).limit(5)).all()
    locked_by_run = runs_service.locked_by_run([r.id for r in runs])
    exhausted = db.session.scalars(
        select(Invoice).where(retries_exhausted()).order_by(Invoice.due_date, Invoice.id).limit(10)
    ).all()
    return render_template(
        "dashboard/index.html",
        locked=locked,
        locked_count=locked_count,
        runs=runs,
        exhausted=exhausted,
        answers=answers,
        locked_by_run=locked_by_run,
        month=charts.month(),
    )
