"""Turning a configured gateway (a row) into a ready plugin."""

from __future__ import annotations

from portal.gateways import registry
from portal.gateways.base import Gateway, GatewayConfig
from portal.gateways.models import Gateway as GatewayRow


def plugin_for(row: GatewayRow) -> Gateway:
    config = GatewayConfig(
        base_url=row.base_url,
        credentials=dict(row.credentials or {}),
        timeout=float(row.timeout_seconds),
    )
    return registry.plugin(row.plugin, config)
