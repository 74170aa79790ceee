"""Invoices: list (with the Action Required filter) and detail with its whole story."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select

from portal import clock
from portal.accounts.models import Account
from portal.audit import service as audit
from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.extensions import db
from portal.invoices import service
from portal.invoices.forms import ResetRetriesForm
from portal.invoices.models import Invoice
from portal.invoices.service import RunFilter
from portal.pagination import paginate
from portal.payments.models import Allocation
from portal.runs.models import RunSkip
from portal.statuses import ACTION_REQUIRED
from portal.transactions.lookups import latest_answers
from portal.transactions.models import PaymentTransaction

bp = Blueprint("invoices", __name__, url_prefix="/invoices")

FILTERS = {"all": "All invoices", "action-required": "Action Required", "open": "Open balance"}


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    chosen = request.args.get("filter", "all")
    if chosen not in FILTERS:
        chosen = "all"
    q = request.args.get("q", "").strip()[:80]
    query = select(Invoice).join(Account)
    if chosen == "action-required":
        query = query.where(Invoice.corrective_action == ACTION_REQUIRED).order_by(
            Invoice.due_date, Invoice.id
        )
    else:
        if chosen == "open":
            query = query.where(Invoice.balance > 0)
        query = query.order_by(Invoice.id.desc())
    if q:
        like = f"%{q}%"
        query = query.where(
            or_(Invoice.number.ilike(like), Account.name.ilike(like), Account.number.ilike(like))
        )
    page = paginate(query)
    answers = latest_answers(page.items) if chosen == "action-required" else None
    return render_template(
        "invoices/index.html", page=page, filters=FILTERS, chosen=chosen, q=q, answers=answers
    )


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
    declines = [t for t in txns if t.status == "Decline" and t.operation == "charge"]
    return render_template(
        "invoices/detail.html",
        invoice=invoice,
        skips=skips,
        declines=declines,
        retry_days=service.retry_schedule(),
        reset_form=ResetRetriesForm(),
        why_not_now=service.why_not_eligible(invoice, service.charging_method(invoice), today),
        txns=txns,
        allocations=allocations,
        events=audit.timeline(invoice),
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
