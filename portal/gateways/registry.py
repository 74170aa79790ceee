"""The plugin registry: every shipped provider plugin, found by name, with its shipped mapping."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from portal.gateways.base import Gateway, GatewayConfig
from portal.gateways.mapping import CodeMapping, load

_HERE = Path(__file__).parent


def _discover() -> dict[str, type[Gateway]]:
    """One plugin per provider folder: portal/gateways/<name>/plugin.py exports PLUGIN."""
    found = {}
    for folder in sorted(p for p in _HERE.iterdir() if (p / "plugin.py").exists()):
        cls = importlib.import_module(f"{__package__}.{folder.name}.plugin").PLUGIN
        if cls.name != folder.name:
            raise RuntimeError(
                f"{folder}/plugin.py names its plugin {cls.name!r}, not {folder.name!r}"
            )
        found[cls.name] = cls
    return found


PLUGINS: dict[str, type[Gateway]] = _discover()


def names() -> list[str]:
    return sorted(PLUGINS)


def display_names() -> dict[str, str]:
    return {name: PLUGINS[name].display_name for name in names()}


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


def plugin(name: str, config: GatewayConfig) -> Gateway:
    """A ready plugin with its shipped mapping. No network call."""
    return plugin_class(name)(config, shipped_mapping(name))


@dataclass(frozen=True)
class Declaration:
    """A plugin's retry safety, as the engine and recovery read it (issue 13, section 4)."""

    provider: str
    resend_after_timeout: bool
    duplicate_window_seconds: int
    read_only_lookup: bool
    lookup: str
    webhooks: str | None


def declarations() -> list[Declaration]:
    """Every plugin's declaration, from its codes.yaml `retry` block and its class."""
    found = []
    for name in names():
        cls, retry = PLUGINS[name], shipped_mapping(name).retry
        found.append(
            Declaration(
                cls.display_name,
                retry.resend_after_timeout,
                retry.duplicate_window_seconds,
                not cls.lookup_moves_money,
                retry.lookup,
                cls.webhook_credential,
            )  # fmt: skip
        )
    return found
