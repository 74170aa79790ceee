"""Gateways: what is configured, with masked credentials and the code mapping that decides statuses."""

from flask import Blueprint, render_template
from sqlalchemy import func, select

from portal.auth.models import Role
from portal.auth.roles import requires
from portal.extensions import db
from portal.gateways import registry
from portal.gateways.models import Gateway
from portal.transactions.models import PaymentTransaction

bp = Blueprint("gateways", __name__, url_prefix="/gateways")


@bp.route("/")
@requires(Role.AUDITOR)
def index():
    gateways = db.session.scalars(select(Gateway).order_by(Gateway.name)).all()
    unmapped = dict(
        db.session.execute(
            select(PaymentTransaction.gateway_id, func.count())
            .where(PaymentTransaction.unmapped.is_(True))
            .group_by(PaymentTransaction.gateway_id)
        ).all()
    )
    mappings = {name: registry.shipped_mapping(name) for name in registry.names()}
    return render_template(
        "gateways/index.html", gateways=gateways, unmapped=unmapped, mappings=mappings
    )
