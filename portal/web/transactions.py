"""Transactions: list, detail, and the clerk's finalization actions."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from portal import clock, filters, once
from portal.audit import service as audit
from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError, NotAllowed
from portal.exports import csv_response
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.listings.transactions import EXPORT_HEADER, KINDS, TxnFilters, export_rows, row_loads
from portal.money import Money, MoneyError, parse_amount
from portal.pagination import keyset
from portal.payments.models import PaymentMethodKind
from portal.statuses import POLICY, GatewayStatus
from portal.transactions import corrections, effects, finalize, lookups, reviews
from portal.transactions import manual_payment as manual
from portal.transactions.forms import (
    ActionForm,
    CorrectBookingForm,
    FinalizeForm,
    ManualPaymentForm,
)
from portal.transactions.lifecycle import Event
from portal.transactions.models import (
    CORRECT_BOOKING,
    MANUAL_PAYMENT,
    REFUND_AND_UNLOCK,
    UNLOCK_UNSENT,
    Finalization,
    Operation,
    PaymentTransaction,
)
from portal.webhooks import service as webhooks

bp = Blueprint("transactions", __name__, url_prefix="/transactions")


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    f = TxnFilters.from_args(request.args)
    filters.said(f.problems)
    gateways = db.session.scalars(select(Gateway).order_by(Gateway.name)).all()
    return render_template(
        "transactions/index.html", page=keyset(f.query(), f.order, *row_loads()), f=f, kinds=KINDS,
        gateways=gateways,
    )  # fmt: skip


@bp.route("/export.csv")
@requires(Role.AUDITOR)
def export():
    """The list as on screen, with its filters, as CSV (every page of it)."""
    f = TxnFilters.from_args(request.args)
    if f.problems:
        return filters.back_to_list("transactions.index", f.problems)
    name = f"settle-{f.kind}-{clock.today().isoformat()}.csv"
    return csv_response(name, EXPORT_HEADER, export_rows(f))


@bp.route("/<int:txn_id>")
@requires(Role.AUDITOR)
def detail(txn_id: int):
    txn = db.get_or_404(PaymentTransaction, txn_id)
    lookup = lookups.latest_lookup(txn) if txn.operation == Operation.CHARGE else None
    follow_ups = db.session.scalars(
        select(PaymentTransaction)
        .where(PaymentTransaction.parent_id == txn.id)
        .order_by(PaymentTransaction.id)
    ).all()
    recommendation = finalize.recommendation(txn, lookup) if txn.needs_finalization else None
    return render_template(
        "transactions/detail.html",
        txn=txn,
        lookup=lookup,
        state_now=lookups.state_now(txn) if txn.operation == Operation.CHARGE else None,
        latest=lookups.latest_word(txn) if txn.operation == Operation.CHARGE else None,
        follow_ups=follow_ups,
        policy=POLICY.get(txn.gateway_status),
        guidance=reviews.guidance_for(txn),
        recommendation=recommendation,
        can_look_up=lookups.lookup_is_read_only(txn),
        once_token=(
            once.issue(current_user, f"refund-unlock:{txn.id}")
            if recommendation == UNLOCK_UNSENT and current_user.can(Role.CLERK)
            else None
        ),
        events=audit.timeline(txn),
        gateway_says=webhooks.events_of(txn),
        form=ActionForm(),
        labels={
            "refund": REFUND_AND_UNLOCK,
            "manual": MANUAL_PAYMENT,
            "unsent": UNLOCK_UNSENT,
            "correct": CORRECT_BOOKING,
        },  # fmt: skip
        booked=effects.booked_payment(txn) if txn.operation == Operation.CHARGE else None,
    )


@bp.route("/<int:txn_id>/review")
@requires(Role.AUDITOR)
def review(txn_id: int):
    txn = db.get_or_404(PaymentTransaction, txn_id)
    review = reviews.review_of(txn)
    return render_template(
        "transactions/review.html", **review, gateway_says=webhooks.events_of(txn)
    )


@bp.route("/<int:txn_id>/check-status", methods=["POST"])
@requires(Role.CLERK)
def check_status(txn_id: int):
    txn = db.get_or_404(PaymentTransaction, txn_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        lookup, result = finalize.check_gateway_status(txn.id, current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if result.status is GatewayStatus.SUCCESS:
            flash(f"The gateway says: {lookup.gateway_state}.", "info")
        else:
            flash(f"The gateway did not answer the lookup: {result.message}", "error")
    return redirect(url_for("transactions.detail", txn_id=txn_id))


def _refused(exc: DomainError, txn_id: int) -> None:
    """The reason, and when the action was done already, a link to the record of what was done."""
    db.session.rollback()
    txn = db.session.get(PaymentTransaction, txn_id)
    if not (isinstance(exc, NotAllowed) and txn.finalized_at is not None):
        flash(str(exc), "error")
        return
    if txn.payment is not None and txn.finalization == Finalization.MANUAL_PAYMENT:
        href = url_for("invoices.detail", invoice_id=txn.invoice_id, _anchor="payments")
        label = f"the payment on invoice {txn.invoice.number}"
    else:
        href = url_for("transactions.detail", txn_id=txn.id, _anchor="who-did-what")
        label = f"who did what on transaction #{txn.id}"
    flash(Markup('{} <a href="{}">See {}.</a>').format(str(exc), href, label), "error")


@bp.route("/<int:txn_id>/refund-unlock", methods=["GET", "POST"])
@requires(Role.CLERK)
def refund_unlock(txn_id: int):
    txn = db.get_or_404(PaymentTransaction, txn_id)
    if request.method == "GET":
        # Money may go back to the customer: the clerk confirms, seeing the amounts, first.
        try:
            finalize.ensure_finalizable(txn)
        except DomainError as exc:
            _refused(exc, txn_id)
            return redirect(url_for("transactions.detail", txn_id=txn_id))
        charges = [(c, lookups.state_now(c)) for c in finalize.open_charges(txn.invoice_id)]
        return render_template(
            "transactions/refund_unlock.html", txn=txn, charges=charges, form=ActionForm(),
            once_token=once.issue(current_user, f"refund-unlock:{txn.id}"), label=REFUND_AND_UNLOCK,
        )  # fmt: skip
    form = FinalizeForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        finalize.ensure_finalizable(txn)  # the clearer reason first, when there is one
        once.spend(form.once.data, current_user, f"refund-unlock:{txn.id}")
        outcome = finalize.refund_and_unlock(txn.id, current_user, note=form.note.data)
    except DomainError as exc:
        _refused(exc, txn_id)
        return redirect(url_for("transactions.detail", txn_id=txn_id))
    for line in outcome.actions:
        flash(line, "info")
    if outcome.unlocked:
        flash(
            f"Invoice {txn.invoice.number} is unlocked and eligible for payment runs again.",
            "success",
        )
    else:
        for line in outcome.problems:
            flash(line, "error")
        flash(f"Invoice {txn.invoice.number} stays locked.", "error")
    return redirect(url_for("transactions.detail", txn_id=txn_id))


@bp.route("/<int:txn_id>/unlock-unsent", methods=["POST"])
@requires(Role.CLERK)
def unlock_unsent(txn_id: int):
    txn = db.get_or_404(PaymentTransaction, txn_id)
    form = FinalizeForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        finalize.ensure_finalizable(txn)
        # The same one-time token as Refund & Unlock: of the two buttons, one click counts.
        once.spend(form.once.data, current_user, f"refund-unlock:{txn.id}")
        finalize.unlock_unsent(txn.id, current_user, note=form.note.data)
    except DomainError as exc:
        _refused(exc, txn_id)
        return redirect(url_for("transactions.detail", txn_id=txn_id))
    flash(
        f"Invoice {txn.invoice.number} is unlocked and eligible for payment runs again; the "
        "gateway was not asked, since the request never reached it.",
        "success",
    )
    return redirect(url_for("transactions.detail", txn_id=txn_id))


@bp.route("/<int:txn_id>/manual-payment", methods=["GET", "POST"])
@requires(Role.CLERK)
def manual_payment(txn_id: int):
    txn = db.get_or_404(PaymentTransaction, txn_id)
    basis = manual.payment_basis(txn)
    form = ManualPaymentForm()
    if not form.is_submitted():
        try:
            finalize.ensure_finalizable(txn)
        except DomainError as exc:
            _refused(exc, txn_id)
            return redirect(url_for("transactions.detail", txn_id=txn_id))
        form.amount.data = basis.amount.plain()
        form.reference.data = basis.reference or ""
        form.method.data = PaymentMethodKind.GATEWAY.value
        form.once.data = once.issue(current_user, f"manual-payment:{txn.id}")
    page = {
        "txn": txn, "form": form, "basis": basis, "lookup": basis.lookup,
        "differs": basis.differs_from(txn),
        "blockers": manual.unaccounted_charges(txn.invoice_id, txn.id),
    }  # fmt: skip
    if form.validate_on_submit():
        currency = txn.invoice.currency
        try:
            once.spend(form.once.data, current_user, f"manual-payment:{txn.id}")
            amount = parse_amount(form.amount.data, currency)
            manual.record_manual_payment(
                txn.id,
                amount=amount,
                currency=currency,
                method=PaymentMethodKind(form.method.data),
                reference=form.reference.data or None,
                received_on=form.received_on.data,
                actor=current_user,
                difference_reason=(
                    form.difference_reason.data if form.amount_differs.data else None
                ),
                note=form.note.data,
            )
        except (DomainError, MoneyError) as exc:
            if isinstance(exc, NotAllowed):  # done already, or stale: show what happened
                _refused(exc, txn_id)
                return redirect(url_for("transactions.detail", txn_id=txn_id))
            db.session.rollback()
            flash(str(exc), "error")
            form.once.data = once.issue(current_user, f"manual-payment:{txn.id}")
            return render_template("transactions/manual_payment.html", **page), 400
        flash(
            f"Payment of {Money(amount, currency)} recorded and allocated; invoice "
            f"{txn.invoice.number} is unlocked.",
            "success",
        )
        return redirect(url_for("transactions.detail", txn_id=txn_id))
    status = 400 if form.is_submitted() else 200
    return render_template("transactions/manual_payment.html", **page), status


@bp.route("/<int:txn_id>/correct-booking", methods=["GET", "POST"])
@requires(Role.CLERK)
def correct_booking(txn_id: int):
    """Set the payment booked for a charge to what the gateway holds of it (a reconciliation
    found it holding less): the rest is reversed and the invoice owes it again."""
    txn = db.get_or_404(PaymentTransaction, txn_id)
    form = CorrectBookingForm()
    if not form.is_submitted():
        try:
            finalize.ensure_finalizable(txn, Event.CORRECT_BOOKING)
        except DomainError as exc:
            _refused(exc, txn_id)
            return redirect(url_for("transactions.detail", txn_id=txn_id))
        now = corrections.held_now(txn)
        form.held.data = now.held.plain() if now.held is not None else ""
        form.once.data = once.issue(current_user, f"correct-booking:{txn.id}")
    if form.validate_on_submit():
        currency = txn.currency
        try:
            finalize.ensure_finalizable(txn, Event.CORRECT_BOOKING)  # the clearer reason first
            once.spend(form.once.data, current_user, f"correct-booking:{txn.id}")
            held = parse_amount(form.held.data, currency)
            reversed_ = corrections.correct_booking(
                txn.id, held=held, currency=currency, reason=form.reason.data,
                actor=current_user, note=form.note.data,
            )  # fmt: skip
        except (DomainError, MoneyError) as exc:
            if isinstance(exc, NotAllowed):
                _refused(exc, txn_id)
                return redirect(url_for("transactions.detail", txn_id=txn_id))
            db.session.rollback()
            flash(str(exc), "error")
            form.once.data = once.issue(current_user, f"correct-booking:{txn.id}")
        else:
            invoice = txn.invoice
            db.session.refresh(invoice)
            still_open = finalize.open_charges(invoice.id)
            if still_open:
                flash(
                    f"The booking is corrected ({reversed_} reversed); invoice {invoice.number}"
                    " stays locked while charge "
                    + ", ".join(f"#{c.id}" for c in still_open)
                    + " of it is open: finalize that one too.",
                    "success",
                )
            elif reversed_.is_positive():
                flash(
                    f"{reversed_} of the payment is reversed; invoice {invoice.number} owes"
                    f" {invoice.balance_money} again and is unlocked: the next payment run"
                    " charges it.",
                    "success",
                )
            else:
                flash(
                    f"The booking stands as the gateway holds it; invoice {invoice.number} is"
                    " unlocked.",
                    "success",
                )
            return redirect(url_for("transactions.detail", txn_id=txn_id))
    status = 400 if form.is_submitted() else 200
    page = {"txn": txn, "form": form, "now": corrections.held_now(txn)}
    return render_template("transactions/correct_booking.html", **page), status
