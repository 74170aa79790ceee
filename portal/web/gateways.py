"""Gateways: configured accounts (masked credentials), their mappings, and the supervisor's form."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.auth.models import Role
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways import registry, service
from portal.gateways.forms import ReviewUnmappedForm, gateway_form
from portal.gateways.models import Gateway
from portal.listings import unmapped as unmapped_codes
from portal.transactions.forms import ActionForm
from portal.webhooks import service as webhooks

bp = Blueprint("gateways", __name__, url_prefix="/gateways")


def _matches(entry, q: str) -> bool:
    text = f"{entry.code} {entry.description} {entry.status.value} {entry.guidance}".lower()
    return q.lower() in text


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    gateways = db.session.scalars(select(Gateway).order_by(Gateway.name)).all()
    q = request.args.get("q", "").strip()[:80]
    mappings = {}
    for name in registry.names():
        mapping = registry.shipped_mapping(name)
        # Without a search, a summary: each mapping's codes are on a page of their own.
        mappings[name] = (mapping, [e for e in mapping.codes.values() if q and _matches(e, q)])
    return render_template(
        "gateways/index.html",
        gateways=gateways,
        unmapped=unmapped_codes.counts_by_gateway(),
        coverage=unmapped_codes.coverage(),
        coverage_days=unmapped_codes.COVERAGE_DAYS,
        mappings=mappings,
        plugins=registry.display_names(),
        q=q,
        action_form=ActionForm(),
        webhook_credential={
            g.id: registry.plugin_class(g.plugin).webhook_credential for g in gateways
        },
        webhook_counts=webhooks.counts_by_gateway(),
    )


@bp.route("/unmapped")
@requires(Role.AUDITOR)
def unmapped():
    return render_template(
        "gateways/unmapped.html", codes=unmapped_codes.queue(), form=ReviewUnmappedForm()
    )


@bp.route("/unmapped/review", methods=["POST"])
@requires(Role.SUPERVISOR)
def review_unmapped():
    form = ReviewUnmappedForm()
    if not form.validate_on_submit():
        flash("Say which code, and keep the note to 500 characters.", "error")
        return redirect(url_for("gateways.unmapped"))
    try:
        service.mark_reviewed(
            form.plugin.data, form.code.data, form.note.data or None, current_user
        )
        db.session.commit()
        flash(f"{form.code.data} ({form.plugin.data}) is marked reviewed.", "success")
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("gateways.unmapped"))


@bp.route("/mappings/<plugin>")
@requires(Role.AUDITOR)
def mapping(plugin: str):
    if plugin not in registry.names():
        abort(404)
    q = request.args.get("q", "").strip()[:80]
    mapping = registry.shipped_mapping(plugin)
    entries = [e for e in mapping.codes.values() if not q or _matches(e, q)]
    return render_template(
        "gateways/mapping.html", name=plugin, m=mapping, entries=entries, q=q,
        gateways=db.session.scalars(select(Gateway).where(Gateway.plugin == plugin)).all(),
    )  # fmt: skip


def _edit(plugin: str, gateway: Gateway | None):
    cls = registry.plugin_class(plugin)
    names = cls.required_credentials + cls.optional_credentials
    form = gateway_form(
        names, editing=gateway is not None, optional=cls.optional_credentials, obj=gateway
    )
    if not form.is_submitted() and gateway is None:
        form.timeout_seconds.data = 120
        form.deadline_seconds.data = 120
    if form.validate_on_submit():
        try:
            saved = service.save_gateway(
                plugin=plugin,
                name=form.name.data,
                base_url=form.base_url.data,
                timeout=form.timeout_seconds.data,
                deadline=form.deadline_seconds.data,
                enabled=form.enabled.data,
                resend_after_timeout=form.resend_after_timeout.data,
                rate_limit=form.rate_limit.data,
                credentials={n: form[f"credential_{n}"].data or "" for n in names},
                actor=current_user,
                gateway=gateway,
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            flash(f"Gateway {saved.name} saved.", "success")
            return redirect(url_for("gateways.index"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "gateways/form.html",
        form=form,
        gateway=gateway,
        plugin=cls,
        credential_names=names,
        mapping=registry.shipped_mapping(plugin),
        allowed_hosts=service.allowed_hosts(plugin),
    ), status


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.SUPERVISOR)
def new():
    plugin = request.args.get("plugin", "")
    if plugin not in registry.names():
        plugins = registry.display_names()
        return render_template("gateways/choose.html", plugins=plugins)
    return _edit(plugin, None)


@bp.route("/<int:gateway_id>/edit", methods=["GET", "POST"])
@requires(Role.SUPERVISOR)
def edit(gateway_id: int):
    gateway = db.get_or_404(Gateway, gateway_id)
    return _edit(gateway.plugin, gateway)


@bp.route("/<int:gateway_id>/test", methods=["POST"])
@requires(Role.SUPERVISOR)
def test(gateway_id: int):
    gateway = db.get_or_404(Gateway, gateway_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    works, detail = service.check_connection(gateway, current_user)
    db.session.commit()
    if works:
        flash(f"{gateway.name}: the URL and credentials work ({detail}).", "success")
    else:
        flash(f"{gateway.name}: the connection does not work: {detail}", "error")
    return redirect(url_for("gateways.index"))
