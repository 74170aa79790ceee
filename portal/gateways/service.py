"""Configured gateways: create, update, turn into a ready plugin, test the connection."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways import hosts, registry
from portal.gateways.base import Gateway, GatewayConfig, GatewayRequest
from portal.gateways.models import Gateway as GatewayRow
from portal.gateways.models import UnmappedReview
from portal.statuses import GatewayStatus

# One plugin (and so one HTTP session with its kept-alive connections) per thread and gateway
# configuration: a run's calls reuse connections, and a changed configuration gets a new plugin.
_plugins = threading.local()


def _host_mode() -> dict[str, bool]:
    """This app's settings for gateways.hosts."""
    return {
        "production": current_app.config.get("SETTLE_PRODUCTION", False),
        "test_hosts": current_app.config.get("SETTLE_GATEWAY_TEST_HOSTS", False),
    }


def host_refusal(plugin: str, base_url: str) -> str | None:
    """Why this app may not send `plugin`'s calls to `base_url` (gateways.hosts), or None."""
    return hosts.refusal(registry.plugin_class(plugin), base_url, **_host_mode())


def allowed_hosts(plugin: str) -> tuple[str, ...] | None:
    """The hosts the gateway form names, or None where any host is accepted."""
    return hosts.allowed_hosts(registry.plugin_class(plugin), **_host_mode())


def plugin_for(row: GatewayRow) -> Gateway:
    config = GatewayConfig(
        base_url=row.base_url,
        credentials=dict(row.credentials or {}),
        timeout=float(row.timeout_seconds),
        deadline=float(row.deadline_seconds or row.timeout_seconds),
        refused=host_refusal(row.plugin, row.base_url),
    )
    cache = _plugins.__dict__.setdefault("by_config", {})
    key = (row.plugin, config.base_url, tuple(sorted(config.credentials.items())), config.timeout)
    key += (config.deadline, config.refused)
    if key not in cache:
        if len(cache) > 32:  # configurations changed many times: start afresh
            cache.clear()
        cache[key] = registry.plugin(row.plugin, config)
    return cache[key]


def _check(
    plugin: str, name: str, base_url: str, timeout: Decimal, deadline: Decimal,
    gateway_id: int | None,
) -> None:  # fmt: skip
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DomainError("The base URL must start with https:// (or http:// for a local sandbox)")
    try:
        parts.port  # noqa: B018  (urlsplit checks the port only when asked)
    except ValueError:
        raise DomainError("The base URL's port must be a number from 1 to 65535") from None
    if refused := host_refusal(plugin, base_url):
        raise DomainError(refused)
    if not timeout.is_finite() or not Decimal(1) <= timeout <= Decimal(300):
        raise DomainError("The timeout must be between 1 and 300 seconds")
    # 300 s: recovery's longest call (runs.lease.LONGEST_CALL) must outlast every deadline.
    if not deadline.is_finite() or not timeout <= deadline <= Decimal(300):
        raise DomainError("The deadline must be at least the timeout and at most 300 seconds")
    clash = db.session.scalar(select(GatewayRow).where(GatewayRow.name == name))
    if clash is not None and clash.id != gateway_id:
        raise DomainError(f"A gateway named {name!r} exists already")


def save_gateway(
    *,
    plugin: str,
    name: str,
    base_url: str,
    timeout: Decimal,
    enabled: bool,
    deadline: Decimal | None = None,
    credentials: dict[str, str],
    actor,
    gateway: GatewayRow | None = None,
    resend_after_timeout: bool = False,
    rate_limit: Decimal | None = None,
) -> GatewayRow:
    """Create a gateway, or update one; a credential left empty on update keeps its old value,
    but only while the URL's scheme, host and port stay: credentials belong to the address they
    were entered for, so a changed address clears them and asks for them again (else a
    supervisor could point a gateway at a server of their own and have Test connection send it
    the merchant's keys)."""
    cls = registry.plugin_class(plugin)
    name, base_url = name.strip(), base_url.strip()
    if deadline is None:
        default = max(timeout, Decimal(120)) if timeout.is_finite() else Decimal(120)
        deadline = gateway.deadline_seconds if gateway else default
    _check(plugin, name, base_url, timeout, deadline, gateway.id if gateway else None)
    if rate_limit is not None and not (
        rate_limit.is_finite() and Decimal("0.1") <= rate_limit <= Decimal(10000)
    ):
        raise DomainError(
            "The rate limit must be between 0.1 and 10000 requests a second, or empty for none"
        )
    retry = registry.shipped_mapping(plugin).retry
    if resend_after_timeout and not retry.resend_after_timeout:
        raise DomainError(
            f"{cls.display_name} does not make a repeated key safe (its codes.yaml says"
            " resend_after_timeout: false): Settle never sends its calls twice"
        )
    kept = dict(gateway.credentials) if gateway else {}
    moved = gateway is not None and hosts.origin(gateway.base_url) != hosts.origin(base_url)
    names = cls.required_credentials + cls.optional_credentials
    merged = {k: credentials.get(k) or ("" if moved else kept.get(k, "")) for k in names}
    missing = [k for k in cls.required_credentials if not merged[k]]
    if missing and moved:
        raise DomainError(
            "The base URL's address changed: saved credentials are kept only for the address they"
            f" were entered for, so give the {', '.join(missing)} again"
        )
    if missing:
        raise DomainError(f"Give the {', '.join(missing)}")
    before = _public(gateway) if gateway else None
    if gateway is None:
        gateway = GatewayRow(plugin=plugin)
        db.session.add(gateway)
    changed_credentials = sorted(k for k in merged if merged[k] != kept.get(k))
    gateway.name, gateway.base_url = name, base_url
    gateway.timeout_seconds, gateway.enabled = timeout, enabled
    gateway.deadline_seconds = deadline
    gateway.resend_after_timeout = resend_after_timeout
    gateway.rate_limit = rate_limit
    gateway.credentials = merged
    db.session.flush()
    audit.record(
        "gateway.updated" if before else "gateway.created", gateway, actor=actor,
        before=before, after={**_public(gateway), "credentials_changed": changed_credentials},
    )  # fmt: skip
    return gateway


def _public(gateway: GatewayRow) -> dict:
    """What an audit event may keep of a gateway: never its credentials."""
    return {
        "name": gateway.name,
        "plugin": gateway.plugin,
        "base_url": gateway.base_url,
        "timeout_seconds": str(gateway.timeout_seconds),
        "deadline_seconds": str(gateway.deadline_seconds),
        "enabled": gateway.enabled,
        "resend_after_timeout": gateway.resend_after_timeout,
        "rate_limit": None if gateway.rate_limit is None else str(gateway.rate_limit),
    }


def check_connection(gateway: GatewayRow, actor) -> tuple[bool, str]:
    """Ask the gateway about a charge that cannot exist: an answer proves the URL and credentials."""
    key = uuid.uuid4().hex
    request = GatewayRequest(
        operation="lookup", idempotency_key=key, order_id=f"SETTLE-TEST-{key[:8]}", original_key=key
    )
    result = plugin_for(gateway).lookup(request)
    works = result.status is GatewayStatus.SUCCESS
    detail = result.message if not result.code else f"{result.code}: {result.message}"
    audit.record("gateway.tested", gateway, actor=actor, after={"works": works, "answer": detail})
    return works, detail


def mark_reviewed(plugin: str, code: str, note: str | None, actor) -> UnmappedReview:
    """A supervisor has looked at an unmapped code (audited); marking it again is refused, with
    who did it, also when two supervisors mark it at once (the unique row decides)."""
    if plugin not in registry.names():
        raise DomainError(f"Unknown provider {plugin!r}")
    review = db.session.scalar(
        select(UnmappedReview).where(UnmappedReview.plugin == plugin, UnmappedReview.code == code)
    )
    if review is not None:
        raise DomainError(
            f"{code} of {plugin} was marked reviewed already by {review.reviewed_by or 'Settle'}"
        )
    review = UnmappedReview(
        plugin=plugin, code=code, note=note, reviewed_by_id=getattr(actor, "id", None)
    )
    db.session.add(review)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()  # the other supervisor's row won
        raise DomainError(f"{code} of {plugin} was marked reviewed a moment ago") from None
    audit.record(
        "gateway.unmapped_reviewed",
        review,
        actor=actor,
        after={"plugin": plugin, "code": code},
        note=note,
    )
    return review
