"""The status policy page, where a supervisor switches strict mode on or off."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways import registry
from portal.invoices import service as invoices
from portal.settings import service
from portal.settings.forms import JanitorForm, RetryScheduleForm, StrictModeForm
from portal.statuses import GatewayStatus, policy_for
from portal.sweeps import janitor
from portal.transactions.forms import ActionForm

bp = Blueprint("settings", __name__, url_prefix="/policy")


@bp.route("/")
@requires(Role.AUDITOR)
def policy():
    strict = service.strict_mode()
    rows = [policy_for(s, strict=strict) for s in GatewayStatus.answered()]
    return render_template(
        "settings/policy.html",
        rows=rows,
        strict=strict,
        form=ActionForm(),
        retry_days=invoices.retry_schedule(),
        autovoid=janitor.autovoid(),
        janitor_minutes=janitor.schedule(),
        declarations=registry.declarations(),
    )


@bp.route("/strict-mode", methods=["POST"])
@requires(Role.SUPERVISOR)
def strict_mode():
    form = StrictModeForm()
    if not form.validate_on_submit():
        abort(400)
    wanted = form.on.data == "1"
    if wanted != service.strict_mode():
        service.put(service.STRICT_MODE, wanted, current_user)
        db.session.commit()
    flash(f"Strict mode is {'on' if wanted else 'off'}.", "success")
    return redirect(url_for("settings.policy"))


@bp.route("/retry-schedule", methods=["POST"])
@requires(Role.SUPERVISOR)
def retry_schedule():
    form = RetryScheduleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        days = invoices.set_retry_schedule(form.days.data or "", current_user)
        db.session.commit()
        flash(
            f"Soft declines are now retried {', '.join(map(str, days))} days after each.", "success"
        )
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("settings.policy"))


@bp.route("/janitor", methods=["POST"])
@requires(Role.SUPERVISOR)
def janitor_settings():
    form = JanitorForm()
    if not form.validate_on_submit():
        abort(400)
    wanted = bool(form.autovoid.data)
    try:
        janitor.configure(form.minutes.data or "", wanted, current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("settings.policy"))
    flash(f"Janitor saved; autovoid is {'on' if wanted else 'off'}.", "success")
    return redirect(url_for("settings.policy"))
