"""Account rules: which gateway a payment method charges through."""

from __future__ import annotations

from portal.accounts.models import PaymentMethod
from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.models import Gateway


def assign_gateway(method: PaymentMethod, gateway_id: int, actor) -> None:
    gateway = db.session.get(Gateway, gateway_id)
    if gateway is None:
        raise DomainError("Unknown gateway")
    refusal = another_providers_gateway(method, gateway)
    if refusal:
        raise DomainError(refusal)
    before = method.gateway.name
    method.gateway_id = gateway.id
    db.session.flush()
    audit.record(
        "payment_method.gateway_changed", method, actor=actor,
        before={"gateway": before}, after={"gateway": gateway.name},
    )  # fmt: skip


def another_providers_gateway(method: PaymentMethod, gateway: Gateway) -> str | None:
    """Why a payment method cannot move to this gateway (None: it can). A token is only
    meaningful to the provider that issued it: the portal, the import and the API all ask here."""
    if gateway.plugin != method.gateway.plugin:
        return (
            f"This {method.gateway.plugin} token cannot be charged through a {gateway.plugin}"
            " gateway: a card at another provider is a payment method of its own"
        )
    return None
