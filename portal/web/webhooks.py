"""Webhooks: the providers' deliveries in (no login: the provider's signature is the proof), and
the gateway events a clerk looks at (unmatched, or disagreeing with what Settle holds)."""

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.extensions import csrf
from portal.pagination import Order, keyset
from portal.transactions.forms import FinalizeForm
from portal.webhooks import service
from portal.webhooks.models import Outcome, WebhookEvent

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.route("/<int:gateway_id>", methods=["POST"])
@csrf.exempt  # a provider's server posts here, with its own signature instead of a session
def receive(gateway_id: int):
    reply = service.receive(gateway_id, dict(request.headers), request.get_data(cache=False))
    return Response(reply.message, status=reply.status, mimetype="text/plain")


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    show = request.args.get("show", "clerk")
    query = select(WebhookEvent)
    if show == "clerk":
        query = query.where(
            WebhookEvent.outcome.in_(service.NEEDS_A_CLERK), WebhookEvent.handled_at.is_(None)
        )
    elif show in {o.value for o in Outcome}:
        query = query.where(WebhookEvent.outcome == show)
    else:
        show = "all"
    return render_template(
        "webhooks/index.html",
        events=keyset(query, Order((WebhookEvent.received_at, WebhookEvent.id), descending=True)),
        show=show,
        outcomes=[o.value for o in Outcome],
        form=FinalizeForm(),
    )


@bp.route("/events/<int:event_id>/handled", methods=["POST"])
@requires(Role.CLERK)
def handled(event_id: int):
    form = FinalizeForm()
    if not form.validate_on_submit():
        flash("The form was stale or incomplete; nothing was changed.", "error")
        return redirect(url_for("webhooks.index"))
    try:
        row = service.mark_handled(event_id, current_user, form.note.data)
    except DomainError as exc:
        flash(str(exc), "error")
        return redirect(url_for("webhooks.index"))
    flash(f"Gateway event {row.event_id} marked handled.", "success")
    return redirect(url_for("webhooks.index"))
