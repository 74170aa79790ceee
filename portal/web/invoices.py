"""Invoices: list (with the Action Required filter) and detail with its whole story."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import clock, filters
from portal.audit import service as audit
from portal.auth.models import Role, User
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.exports import csv_response
from portal.extensions import db
from portal.invoices import service
from portal.invoices.forms import OwnerForm, ResetRetriesForm
from portal.invoices.models import Invoice
from portal.listings.invoices import EXPORT_HEADER, OWNERS, STATES, InvoiceFilters, export_rows
from portal.pagination import keyset
from portal.payments.models import Allocation
from portal.runs.eligibility import RunFilter, charging_method, why_not_eligible
from portal.runs.models import RunSkip
from portal.statuses import GatewayStatus
from portal.transactions.forms import ActionForm
from portal.transactions.lookups import latest_answers
from portal.transactions.models import Operation, PaymentTransaction

bp = Blueprint("invoices", __name__, url_prefix="/invoices")


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    f = InvoiceFilters.from_args(request.args)
    filters.said(f.problems)
    page = keyset(
        f.query(current_user), f.order, selectinload(Invoice.account), selectinload(Invoice.owner)
    )
    return render_template(
        "invoices/index.html", page=page, f=f, states=STATES, owners=OWNERS,
        answers=latest_answers(page.items) if f.is_queue else None, now=clock.now(),
        clerks=_clerks() if f.is_queue and current_user.can(Role.SUPERVISOR) else [],
        form=ActionForm(),
    )  # fmt: skip


@bp.route("/export.csv")
@requires(Role.AUDITOR)
def export():
    """The list as on screen, with its filters, as CSV (every page of it)."""
    f = InvoiceFilters.from_args(request.args)
    if f.problems:
        return filters.back_to_list("invoices.index", f.problems)
    name = f"settle-invoices-{f.state}-{clock.today().isoformat()}.csv"
    return csv_response(name, EXPORT_HEADER, export_rows(f, current_user))


def _clerks() -> list[User]:
    """Who may be given an invoice's finalization: every active user who can finalize."""
    users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.username))
    return [u for u in users if u.can(Role.CLERK)]


@bp.route("/<int:invoice_id>/take", methods=["POST"])
@requires(Role.CLERK)
def take(invoice_id: int):
    """A clerk takes a locked invoice; a supervisor may give it to another clerk."""
    invoice = db.get_or_404(Invoice, invoice_id)
    form = OwnerForm()
    if not form.validate_on_submit():
        abort(400)
    owner = None
    if form.owner.data is not None:
        owner = db.session.get(User, form.owner.data)
        if owner is None:
            abort(400)
    try:
        invoice = service.take(invoice.id, current_user, owner)
        db.session.commit()
        flash(f"Invoice {invoice.number} is now {invoice.owner}'s to finalize.", "success")
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(form.back_to() or url_for("invoices.detail", invoice_id=invoice_id))


@bp.route("/<int:invoice_id>/release", methods=["POST"])
@requires(Role.CLERK)
def release(invoice_id: int):
    invoice = db.get_or_404(Invoice, invoice_id)
    form = OwnerForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        service.release(invoice.id, current_user)
        db.session.commit()
        flash(f"Invoice {invoice.number} is back in the queue: nobody's yet.", "success")
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(form.back_to() or url_for("invoices.detail", invoice_id=invoice_id))


@bp.route("/<int:invoice_id>")
@requires(Role.AUDITOR)
def detail(invoice_id: int):
    invoice = db.get_or_404(Invoice, invoice_id)
    txns = db.session.scalars(
        select(PaymentTransaction)
        .where(PaymentTransaction.invoice_id == invoice.id)
        .order_by(PaymentTransaction.id)
    ).all()
    allocations = db.session.scalars(
        select(Allocation).where(Allocation.invoice_id == invoice.id).order_by(Allocation.id)
    ).all()
    skips = db.session.scalars(
        select(RunSkip).where(RunSkip.invoice_id == invoice.id).order_by(RunSkip.id.desc()).limit(5)
    ).all()
    today = RunFilter(due_on=clock.today())
    declines = [
        t for t in txns if t.status == GatewayStatus.DECLINE and t.operation == Operation.CHARGE
    ]
    return render_template(
        "invoices/detail.html",
        invoice=invoice,
        skips=skips,
        declines=declines,
        retry_days=service.retry_schedule(),
        reset_form=ResetRetriesForm(),
        why_not_now=why_not_eligible(invoice, charging_method(invoice), today),
        txns=txns,
        allocations=allocations,
        events=audit.timeline(invoice),
        form=ActionForm(),
        clerks=_clerks() if current_user.can(Role.SUPERVISOR) else [],
    )


@bp.route("/<int:invoice_id>/reset-retries", methods=["POST"])
@requires(Role.SUPERVISOR)
def reset_retries(invoice_id: int):
    invoice = db.get_or_404(Invoice, invoice_id)
    form = ResetRetriesForm()
    if form.validate_on_submit():
        try:
            service.reset_retries(service.lock_invoice(invoice.id), form.reason.data, current_user)
            db.session.commit()
            flash(f"Retries of {invoice.number} reset: the next run may charge it.", "success")
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    else:
        for error in form.reason.errors:
            flash(error, "error")
    return redirect(url_for("invoices.detail", invoice_id=invoice_id))
