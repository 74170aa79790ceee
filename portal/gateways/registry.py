"""The plugin registry: every shipped provider plugin, found by name, with its shipped mapping."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from portal.gateways.base import Gateway, GatewayConfig
from portal.gateways.mapping import CodeMapping, load
from portal.gateways.sandbox.plugin import SandboxGateway

PLUGINS: dict[str, type[Gateway]] = {cls.name: cls for cls in (SandboxGateway,)}

_HERE = Path(__file__).parent


def names() -> list[str]:
    return sorted(PLUGINS)


def plugin_class(name: str) -> type[Gateway]:
    try:
        return PLUGINS[name]
    except KeyError:
        raise KeyError(f"no gateway plugin named {name!r}; known: {', '.join(names())}") from None


def mapping_path(name: str) -> Path:
    plugin_class(name)
    return _HERE / name / "codes.yaml"


@cache
def shipped_mapping(name: str) -> CodeMapping:
    return load(mapping_path(name))


def check_mappings() -> dict[str, CodeMapping]:
    """Load every shipped mapping; the first bad one raises MappingError naming file and line."""
    shipped_mapping.cache_clear()
    return {name: shipped_mapping(name) for name in names()}


def default_sandbox_url() -> str:
    host = os.environ.get("SETTLE_SANDBOX_HOST", "127.0.0.1")
    port = os.environ.get("SETTLE_SANDBOX_PORT", "5081")
    return f"http://{host}:{port}"


def plugin(name: str, config: GatewayConfig | None = None) -> Gateway:
    """A ready plugin with its shipped mapping; by default pointed at the sandbox. No network call."""
    cls = plugin_class(name)
    if config is None:
        config = GatewayConfig(
            base_url=default_sandbox_url(), credentials=sandbox_credentials(name)
        )
    return cls(config, shipped_mapping(name))


def sandbox_credentials(name: str) -> dict[str, str]:
    """Credentials the sandbox server accepts for this plugin (test values, never real ones)."""
    from portal.sandbox.server import SANDBOX_CREDENTIALS

    return dict(SANDBOX_CREDENTIALS[name])
