"""Payments and their allocations: the list, each payment's page, the supervisor's unallocate and
allocate, and the CSV exports (the payments, and the ledger for the general ledger)."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import clock, filters, once
from portal.audit import service as audit
from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError, NotAllowed
from portal.exports import csv_response
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.listings import payments as listing
from portal.money import Money, MoneyError, parse_amount
from portal.pagination import keyset
from portal.payments import service
from portal.payments.forms import AllocateForm, UnallocateForm
from portal.payments.models import Allocation, Payment, PaymentMethodKind

bp = Blueprint("payments", __name__, url_prefix="/payments")


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    f = listing.PaymentFilters.from_args(request.args)
    filters.said(f.problems)
    since, until, _ = listing.ledger_period({})
    return render_template(
        "payments/index.html", page=keyset(
            f.query(), f.order, selectinload(Payment.account), selectinload(Payment.allocations),
            selectinload(Payment.reversals),
        ), f=f, methods=list(PaymentMethodKind),
        ledger_since=since, ledger_until=until,
    )  # fmt: skip


@bp.route("/export.csv")
@requires(Role.AUDITOR)
def export():
    f = listing.PaymentFilters.from_args(request.args)
    if f.problems:
        return filters.back_to_list("payments.index", f.problems)
    name = f"settle-payments-{clock.today().isoformat()}.csv"
    return csv_response(name, listing.PAYMENTS_HEADER, listing.payment_rows(f))


@bp.route("/ledger.csv")
@requires(Role.AUDITOR)
def ledger():
    since, until, problems = listing.ledger_period(request.args)
    if problems:
        return filters.back_to_list("payments.index", problems)
    name = f"settle-ledger-{since.isoformat()}-{until.isoformat()}.csv"
    return csv_response(name, listing.LEDGER_HEADER, listing.ledger_rows(since, until))


def _page(payment: Payment, unallocate: UnallocateForm, allocate: AllocateForm, status=200):
    allocations = sorted(payment.allocations, key=lambda a: a.id)
    tokens = {}
    if current_user.can(Role.SUPERVISOR):
        tokens = {
            a.id: once.issue(current_user, f"unallocate:{a.id}") for a in allocations if a.active
        }
        allocate.once.data = once.issue(current_user, f"allocate:{payment.id}")
    open_invoices = db.session.scalars(
        select(Invoice)
        .where(Invoice.account_id == payment.account_id, Invoice.currency == payment.currency,
               Invoice.balance > 0)
        .order_by(Invoice.due_date)
    ).all()  # fmt: skip
    allocate.invoice_id.choices = [
        (i.id, f"{i.number} (balance {i.balance_money})") for i in open_invoices
    ]
    return render_template(
        "payments/detail.html", payment=payment, allocations=allocations, tokens=tokens,
        unallocate_form=unallocate, allocate_form=allocate, open_invoices=open_invoices,
        events=audit.timeline(payment),
    ), status  # fmt: skip


def _offer_invoices(payment: Payment, form: AllocateForm) -> list[Invoice]:
    """The open invoices of the payment's account, in its currency: where it may be allocated."""
    invoices = db.session.scalars(
        select(Invoice)
        .where(Invoice.account_id == payment.account_id, Invoice.currency == payment.currency,
               Invoice.balance > 0)
        .order_by(Invoice.due_date)
    ).all()  # fmt: skip
    form.invoice_id.choices = [(i.id, f"{i.number} (balance {i.balance_money})") for i in invoices]
    return invoices


@bp.route("/<int:payment_id>")
@requires(Role.AUDITOR)
def detail(payment_id: int):
    payment = db.get_or_404(Payment, payment_id)
    return _page(payment, UnallocateForm(formdata=None), AllocateForm(formdata=None))


def _done_already(exc: NotAllowed, payment_id: int):
    db.session.rollback()
    flash(str(exc), "error")
    return redirect(url_for("payments.detail", payment_id=payment_id))


@bp.route("/allocations/<int:allocation_id>/unallocate", methods=["POST"])
@requires(Role.SUPERVISOR)
def unallocate(allocation_id: int):
    allocation = db.get_or_404(Allocation, allocation_id)
    payment = allocation.payment
    form = UnallocateForm()
    if not form.validate_on_submit():
        for error in form.reason.errors:
            flash(error, "error")
        return _page(payment, form, AllocateForm(formdata=None), 400)
    try:
        once.spend(form.once.data, current_user, f"unallocate:{allocation_id}")
        service.unallocate(allocation_id, form.reason.data, current_user)
        db.session.commit()
    except NotAllowed as exc:
        return _done_already(exc, payment.id)
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(db.session.get(Payment, payment.id), form, AllocateForm(formdata=None), 400)
    flash(
        f"{Money(allocation.amount, payment.currency)} is taken back from invoice "
        f"{allocation.invoice.number}; its balance is open again, and the next payment run may "
        "charge it unless the payment is allocated to it again.",
        "success",
    )
    return redirect(url_for("payments.detail", payment_id=payment.id))


@bp.route("/<int:payment_id>/allocate", methods=["POST"])
@requires(Role.SUPERVISOR)
def allocate(payment_id: int):
    payment = db.get_or_404(Payment, payment_id)
    form = AllocateForm()
    _offer_invoices(payment, form)
    if not form.validate_on_submit():
        return _page(payment, UnallocateForm(formdata=None), form, 400)
    try:
        once.spend(form.once.data, current_user, f"allocate:{payment.id}")
        amount = parse_amount(form.amount.data, payment.currency)
        if amount <= 0:
            raise DomainError("The amount must be more than zero")
        service.allocate_remainder(payment.id, form.invoice_id.data, amount, current_user)
        db.session.commit()
    except NotAllowed as exc:
        return _done_already(exc, payment.id)
    except (DomainError, MoneyError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(db.session.get(Payment, payment.id), UnallocateForm(formdata=None), form, 400)
    flash(f"{Money(amount, payment.currency)} of payment #{payment.id} is allocated.", "success")
    return redirect(url_for("payments.detail", payment_id=payment.id))
