"""Reconciliation pages: the reports, asking for a day's or a run's, each report and its CSV."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField
from wtforms.validators import DataRequired

from portal import clock
from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.exports import csv_response
from portal.extensions import db
from portal.pagination import Order, keyset
from portal.reconciliation import service
from portal.reconciliation.compare import Kind
from portal.reconciliation.models import ReconciliationReport
from portal.runs.models import PaymentRun
from portal.transactions.forms import ActionForm

bp = Blueprint("reconciliation", __name__, url_prefix="/reconciliation")


class DayForm(FlaskForm):
    day = DateField("Day", format="%Y-%m-%d",
                    validators=[DataRequired(message="Give the day as YYYY-MM-DD")])  # fmt: skip


def _index(form: DayForm, status: int = 200):
    page = keyset(select(ReconciliationReport), Order((ReconciliationReport.id,), descending=True))
    return render_template("reconciliation/index.html", page=page, form=form), status


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    form = DayForm()
    form.day.data = clock.today_in(current_app.config["SETTLE_TIMEZONE"])
    return _index(form)


def _asked(report: ReconciliationReport):
    if report.state == "Done":
        flash(f"Reconciled: {report.disagreements} line(s) need a look.", "success")
    else:
        flash("The report is incomplete: it says which gateway could not be compared, and why.",
              "error")  # fmt: skip
    return redirect(url_for("reconciliation.detail", report_id=report.id))


@bp.route("/day", methods=["POST"])
@requires(Role.CLERK)
def day():
    form = DayForm()
    if not form.validate_on_submit():
        return _index(form, 400)
    try:
        report = service.reconcile(current_user, day=form.day.data)
    except DomainError as exc:
        db.session.rollback()
        form.day.errors = [str(exc)]
        return _index(form, 400)
    return _asked(report)


@bp.route("/run/<int:run_id>", methods=["POST"])
@requires(Role.CLERK)
def run(run_id: int):
    payment_run = db.get_or_404(PaymentRun, run_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        report = service.reconcile(current_user, run=payment_run)
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("runs.detail", run_id=run_id))
    return _asked(report)


def _kind() -> Kind | None:
    slug = request.args.get("kind", "")
    kind = Kind.from_slug(slug)
    if slug and kind is None:
        abort(404)
    return kind


@bp.route("/<int:report_id>")
@requires(Role.AUDITOR)
def detail(report_id: int):
    report = db.get_or_404(ReconciliationReport, report_id)
    kind = _kind()
    return render_template(
        "reconciliation/detail.html", report=report, kind=kind, kinds=list(Kind),
        page=keyset(service.lines(report, kind), service.LINE_ORDER), form=ActionForm(),
    )  # fmt: skip


@bp.route("/<int:report_id>/export.csv")
@requires(Role.AUDITOR)
def export(report_id: int):
    report = db.get_or_404(ReconciliationReport, report_id)
    kind = _kind()
    name = f"settle-reconciliation-{report.id}{'-' + kind.slug if kind else ''}.csv"
    return csv_response(name, service.EXPORT_HEADER, service.export_rows(report, kind))
