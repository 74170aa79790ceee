"""Every provider plugin against its sandbox emulation, over real HTTP: the README's table of what
each token answers is what the sandbox answers today (read from the README itself, so the two
cannot drift apart), and every plugin's seven statuses are reachable."""

import re
import uuid
from pathlib import Path

import pytest

from portal import demo
from portal.gateways import registry
from portal.gateways.base import GatewayConfig, GatewayRequest
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[2] / "README.md"
CELL = re.compile(r"^(?:`(?P<code>[^`]+)` )?(?:unmapped → )?(?P<status>[A-Z][A-Za-z ]+)$")


def table() -> dict[str, dict[str, tuple[str | None, str]]]:
    """provider -> token -> (code, status), from the README's 'Every provider' table."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| token | adyen |"))
    providers = [c.strip() for c in lines[start].strip("|").split("|")][1:]
    rows: dict[str, dict[str, tuple[str | None, str]]] = {p: {} for p in providers}
    for line in lines[start + 2 :]:
        if not line.startswith("| `tok_"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        tokens = re.findall(r"`(tok_\w+)`", cells[0])
        for provider, cell in zip(providers, cells[1:], strict=True):
            match = CELL.match(cell)
            assert match, f"README cell {cell!r} for {provider} is not `code` Status"
            for token in tokens:
                rows[provider][token] = (match["code"], match["status"])
    return rows


TABLE = table()


def test_the_table_names_every_provider_plugin():
    assert sorted(TABLE) == registry.names()


@pytest.mark.parametrize(
    ("provider", "token"),
    [(p, t) for p, tokens in TABLE.items() for t in tokens if t not in ("tok_hang", "tok_drop")],
)
def test_each_provider_answers_each_token_as_the_readme_says(sandbox, provider, token):
    creds = sandbox_credentials(provider)
    gateway = registry.plugin(provider, GatewayConfig(sandbox.url_for(provider), creds, timeout=2))
    stored = demo.TOKEN_FORMAT.get(provider, "{}").format(token)
    request = GatewayRequest("charge", uuid.uuid4().hex[:32], "INV-ALL-1",
                             Money.parse("10.00", "USD"), stored)  # fmt: skip
    result = gateway.charge(request)
    code, status = TABLE[provider][token]
    assert result.status.value == status, (provider, token, result.code, result.message)
    if code is not None:
        assert result.code == code
    assert result.unmapped is (token == "tok_unknown")


def test_every_plugin_reaches_all_seven_statuses():
    every = {s.value for s in GatewayStatus if s is not GatewayStatus.PENDING}
    for provider, tokens in TABLE.items():
        assert {status for _, status in tokens.values()} == every, provider
