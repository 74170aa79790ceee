"""Accounts: their invoices and payment methods, and which gateway each method charges through."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select

from portal.accounts import service
from portal.accounts.forms import AssignGatewayForm
from portal.accounts.models import Account, PaymentMethod
from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.pagination import Order, keyset
from portal.transactions.forms import ActionForm

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    q = request.args.get("q", "").strip()[:80]
    query = select(Account)
    if q:
        query = query.where(or_(Account.number.ilike(f"%{q}%"), Account.name.ilike(f"%{q}%")))
    return render_template(
        "accounts/index.html", page=keyset(query, Order((Account.number, Account.id))), q=q
    )


@bp.route("/<int:account_id>")
@requires(Role.AUDITOR)
def detail(account_id: int):
    account = db.get_or_404(Account, account_id)
    invoices = db.session.scalars(
        select(Invoice).where(Invoice.account_id == account.id).order_by(Invoice.due_date.desc())
    ).all()
    gateways = db.session.scalars(select(Gateway).order_by(Gateway.name)).all()
    return render_template(
        "accounts/detail.html",
        account=account,
        invoices=invoices,
        gateways=gateways,
        form=ActionForm(),
    )


@bp.route("/methods/<int:method_id>/gateway", methods=["POST"])
@requires(Role.SUPERVISOR)
def assign_gateway(method_id: int):
    method = db.get_or_404(PaymentMethod, method_id)
    form = AssignGatewayForm()
    if not form.validate_on_submit():
        if form.errors.keys() - {"gateway_id"}:
            abort(400)  # no CSRF token, or another session's
        flash("Choose a gateway from the list.", "error")
        return redirect(url_for("accounts.detail", account_id=method.account_id))
    try:
        service.assign_gateway(method, form.gateway_id.data, current_user)
        db.session.commit()
        flash(f"{method} now charges through {method.gateway.name}.", "success")
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("accounts.detail", account_id=method.account_id))
