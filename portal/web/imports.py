"""Invoices → Import: upload a CSV, read its preview, and (a supervisor) confirm it."""

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from portal import once
from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.imports import service
from portal.imports.models import ImportBatch
from portal.transactions.forms import ActionForm, OnceForm

bp = Blueprint("imports", __name__, url_prefix="/invoices/import")

ROWS_SHOWN = 200


@bp.route("/", methods=["GET", "POST"])
@requires(Role.SUPERVISOR)
def index():
    form = ActionForm()
    if request.method == "POST":
        upload = request.files.get("file")
        if not form.validate_on_submit() or upload is None or not upload.filename:
            flash("Choose a CSV file to import.", "error")
            return render_template("imports/index.html", form=form,
                                   batches=service.recent_batches()), 400  # fmt: skip
        try:
            batch = service.preview(upload.filename, upload.read(), current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("imports/index.html", form=form,
                                   batches=service.recent_batches()), 400  # fmt: skip
        return redirect(url_for("imports.detail", batch_id=batch.id))
    return render_template("imports/index.html", form=form, batches=service.recent_batches())


@bp.route("/template.csv")
@requires(Role.AUDITOR)
def template():
    return Response(service.TEMPLATE, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="settle-import.csv"'})  # fmt: skip


@bp.route("/example.csv")
@requires(Role.AUDITOR)
def example():
    """The shipped example: 200 accounts with a card each, 1,000 invoices, 5 of them bad."""
    return Response(service.EXAMPLE.read_text(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="settle-example.csv"'})  # fmt: skip


@bp.route("/<int:batch_id>")
@requires(Role.SUPERVISOR)
def detail(batch_id: int):
    batch = db.get_or_404(ImportBatch, batch_id)
    result = service.plan(batch.content) if batch.applied_at is None else None
    return render_template(
        "imports/detail.html", batch=batch, plan=result, rows_shown=ROWS_SHOWN, form=ActionForm(),
        once_token=once.issue(current_user, f"import:{batch.id}") if result else None,
    )  # fmt: skip


@bp.route("/<int:batch_id>/progress.json")
@requires(Role.SUPERVISOR)
def progress(batch_id: int):
    batch = db.get_or_404(ImportBatch, batch_id)
    return jsonify(state=batch.state, done=batch.rows_done, total=batch.rows_total,
                   percent=batch.percent, active=batch.state == "Applying")  # fmt: skip


@bp.route("/<int:batch_id>/apply", methods=["POST"])
@requires(Role.SUPERVISOR)
def apply(batch_id: int):
    batch = db.get_or_404(ImportBatch, batch_id)
    form = OnceForm()
    if not form.validate_on_submit():
        flash("The form expired: reload the page and confirm again.", "error")
        return redirect(url_for("imports.detail", batch_id=batch.id))
    try:
        once.spend(form.once.data, current_user, f"import:{batch.id}")
        limit = current_app.config["SETTLE_IMPORT_BACKGROUND_ROWS"]
        result = service.apply(batch.id, current_user, background_rows=limit)
        db.session.commit()
    except (NotAllowed, DomainError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("imports.detail", batch_id=batch.id))
    if result is None:
        service.submit_import(batch.id)
        flash(f"Import #{batch.id} is being written in the background: this page shows how far "
              "it has got.", "info")  # fmt: skip
        return redirect(url_for("imports.detail", batch_id=batch.id))
    c = result.counts
    flash(
        f"Import #{batch.id} applied: {c['create']} created, {c['update']} updated, "
        f"{c['unchanged']} unchanged, {c['refused']} refused (left out).",
        "success",
    )
    return redirect(url_for("imports.detail", batch_id=batch.id))
