"""Calls in flight per gateway: up to C at once, never more; a cap holds with calls in flight."""

import threading
import time

import pytest

from portal.gateways.sandbox.plugin import SandboxGateway

pytestmark = pytest.mark.integration


@pytest.fixture
def counting(monkeypatch):
    """Counts the charges in flight at once, each taking a little while at the gateway."""
    state = {"now": 0, "most": 0, "calls": 0}
    lock = threading.Lock()
    send = SandboxGateway.charge

    def charge(self, request):
        with lock:
            state["now"] += 1
            state["calls"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            time.sleep(0.2)
            return send(self, request)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(SandboxGateway, "charge", charge)
    return state


def test_a_run_keeps_up_to_c_calls_in_flight_per_gateway(
    app, make_invoice, make_gateway, run_for, counting, monkeypatch
):
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 3)
    one, two = make_gateway(name="One"), make_gateway(name="Two")
    for _ in range(6):
        make_invoice(gateway=one)
    run = run_for()
    assert run.success_count == 6
    assert counting["most"] == 3
    for _ in range(6):
        make_invoice(gateway=one)
        make_invoice(gateway=two)
    counting["most"] = 0
    # Two gateways: up to three calls to each at once, so more than three in all, never above six.
    run = run_for(currency="USD")
    assert run.success_count == 12
    assert 3 < counting["most"] <= 6


def test_a_cap_holds_with_calls_in_flight(app, make_invoice, run_for, counting, monkeypatch):
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 8)
    for _ in range(10):
        make_invoice()
    run = run_for(invoice_limit=3)
    assert (run.success_count, counting["calls"]) == (3, 3)
