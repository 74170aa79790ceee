"""What a lookup found becomes a status in the plugin, never in its callers (crash recovery)."""

import pytest

from portal.gateways.base import Finding, GatewayConfig, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.statuses import GatewayStatus as S


@pytest.fixture
def sandbox_plugin():
    return plugin("sandbox", GatewayConfig("http://127.0.0.1:9", {"api_key": "k"}))


@pytest.mark.parametrize(
    ("state", "code", "status", "unmapped"),
    [
        (Settlement.UNSETTLED, "approved", S.SUCCESS, False),  # the code decides, as a charge's answer
        (Settlement.DECLINED, "incorrect_cvc", S.VALIDATION_ERROR, False),
        (Settlement.UNSETTLED, "zz_never_heard_of", S.SYSTEM_FAIL, True),  # the mapping's default
        (Settlement.SETTLED, None, S.SUCCESS, False),  # no code: what the gateway holds decides
        (Settlement.UNSETTLED, None, S.SUCCESS, False),
        (Settlement.DECLINED, None, S.DECLINE, False),
    ],
)  # fmt: skip
def test_a_finding_becomes_a_status_through_the_plugins_mapping(sandbox_plugin, state, code,
                                                                  status, unmapped):  # fmt: skip
    finding = Finding(state, Money.parse("10.00", "USD"), "ch_1", code=code)
    result = sandbox_plugin.interpret_finding(finding)
    assert (result.status, result.unmapped, result.reference) == (status, unmapped, "ch_1")
    if code is None:
        assert result.message == f"the gateway holds it as {state}"
