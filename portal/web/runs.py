"""Payment runs: list, start, detail with live progress."""

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from portal import clock, jobs
from portal.accounts.models import Account
from portal.audit import service as audit
from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.listings.transactions import row_loads
from portal.money import MINOR_UNITS
from portal.pagination import Order, keyset
from portal.reconciliation import service as reconciliation
from portal.runs import dispatch, service
from portal.runs.forms import RunForm
from portal.runs.models import PaymentRun, RunSkip
from portal.transactions.forms import ActionForm
from portal.transactions.models import PaymentTransaction

bp = Blueprint("runs", __name__, url_prefix="/runs")

SKIPS_SHOWN = 200


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    page = keyset(select(PaymentRun), Order((PaymentRun.id,), descending=True))
    ids = [r.id for r in page.items]
    return render_template(
        "runs/index.html",
        page=page,
        collected=service.collected_by_run(ids),
        locked=service.locked_by_run(ids),
    )


def _run_form() -> RunForm:
    form = RunForm()
    form.currency.choices = [SelectChoice("", "Any currency")] + [
        SelectChoice(c) for c in sorted(MINOR_UNITS)
    ]
    gateways = db.session.scalars(select(Gateway).order_by(Gateway.name))
    form.gateway_id.choices = [SelectChoice(0, "Any gateway")] + [
        SelectChoice(g.id, g.name) for g in gateways
    ]
    accounts = db.session.scalars(select(Account).order_by(Account.number))
    form.account_id.choices = [SelectChoice(0, "Any account")] + [
        SelectChoice(a.id, str(a)) for a in accounts
    ]
    return form


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.SUPERVISOR)
def new():
    form = _run_form()
    if not form.is_submitted():
        form.due_on.data = clock.today()
    if form.validate_on_submit():
        try:
            run = service.start_run(
                due_on=form.due_on.data,
                currency=form.currency.data or None,
                gateway_id=form.gateway_id.data or None,
                account_id=form.account_id.data or None,
                invoice_limit=form.invoice_limit.data,
                actor=current_user,
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("runs/new.html", form=form), 409
        dispatch.submit_run(run.id)
        db.session.refresh(run)
        if run.dispatch_error:
            flash(f"Payment run #{run.id} is queued, but it could not be sent yet.", "error")
        elif jobs.uses_broker():
            flash(f"Payment run #{run.id} is sent to the Celery workers.", "success")
        else:
            flash(f"Payment run #{run.id} started.", "success")
        return redirect(url_for("runs.detail", run_id=run.id))
    status = 400 if form.is_submitted() else 200
    return render_template("runs/new.html", form=form), status


@bp.route("/<int:run_id>")
@requires(Role.AUDITOR)
def detail(run_id: int):
    run = db.get_or_404(PaymentRun, run_id)
    page = keyset(
        select(PaymentTransaction).where(PaymentTransaction.run_id == run.id),
        Order((PaymentTransaction.id,)),
        *row_loads(),
    )
    skipped = db.session.scalars(
        select(RunSkip).where(RunSkip.run_id == run.id).order_by(RunSkip.id).limit(SKIPS_SHOWN)
    ).all()
    reasons = service.skip_reasons(run)
    return render_template(
        "runs/detail.html",
        run=run,
        page=page,
        collected=service.collected(run),
        reasons=reasons,
        skipped=skipped,
        skips_shown=SKIPS_SHOWN,
        not_attempted=sum(
            dict(reasons).get(r, 0) for r in (service.NOT_ATTEMPTED, service.NOT_ATTEMPTED_ERROR)
        ),
        follow_up=db.session.scalar(select(PaymentRun).where(PaymentRun.follows_run_id == run.id)),
        chunks=service.chunk_summary(run) if run.chunk_count > 1 else None,
        events=audit.timeline(run),
        form=ActionForm(),
        report=reconciliation.latest_for_run(run.id),
    )


@bp.route("/<int:run_id>/charge-not-attempted", methods=["POST"])
@requires(Role.SUPERVISOR)
def charge_not_attempted(run_id: int):
    db.get_or_404(PaymentRun, run_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        run = service.start_run_for_not_attempted(run_id, current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("runs.detail", run_id=run_id))
    dispatch.submit_run(run.id)
    flash(f"Payment run #{run.id} charges the invoices run #{run_id} did not attempt.", "success")
    return redirect(url_for("runs.detail", run_id=run.id))


@bp.route("/<int:run_id>/cancel", methods=["POST"])
@requires(Role.SUPERVISOR)
def cancel(run_id: int):
    run = db.get_or_404(PaymentRun, run_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if service.cancel_run(run.id, current_user):
        flash(f"Payment run #{run_id} is cancelled: it charges no further invoice.", "success")
    else:
        flash(f"Payment run #{run_id} had already ended.", "error")
    return redirect(url_for("runs.detail", run_id=run_id))


@bp.route("/<int:run_id>/progress.json")
@requires(Role.AUDITOR)
def progress(run_id: int):
    run = db.get_or_404(PaymentRun, run_id)
    fields = ("state", "selected_count", "processed_count", "skipped_count", "success_count",
              "decline_count", "failure_count", "indeterminate_count", "review_count")  # fmt: skip
    data = {f: getattr(run, f) for f in fields}
    data["percent"] = run.progress_percent
    data["active"] = run.is_active
    data["rate_limit_note"] = run.rate_limit_note
    return jsonify(data)
