"""The retry-safety declaration is read by the engine: a call that timed out is sent once more,
with the same key, only where the plugin's mapping declares a repeated key safe, the gateway's
supervisor chose it, and the provider's duplicate window has not passed."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.errors import DomainError
from portal.extensions import db
from portal.gateways import service as gateways
from portal.gateways.base import GatewayRequest, GatewayResult
from portal.money import Money
from portal.runs.engine import execute_run
from portal.runs.service import start_run
from portal.statuses import GatewayStatus
from portal.transactions.calls import Call
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


def _charges():
    db.session.expire_all()
    return db.session.scalars(select(PaymentTransaction).order_by(PaymentTransaction.id)).all()


def test_a_timed_out_charge_is_sent_once_more_with_its_key_and_charged_once(
    make_gateway, make_invoice, sandbox
):
    gateway = make_gateway(timeout="1")  # the sandbox holds tok_hang's answer for 2 s
    gateway.resend_after_timeout = True
    db.session.commit()
    invoice = make_invoice(token="tok_hang", gateway=gateway)
    execute_run(start_run(due_on=date.today(), actor=None).id)
    (charge,) = _charges()
    # The provider answered the repeated key with the first answer: charged once, and known.
    assert (charge.status, charge.provider_code) == ("Success", "approved")
    assert "sent once more with the same key" in charge.reason.lower()
    assert [c["idempotency_key"] for c in sandbox.ledger.all()] == [charge.idempotency_key]
    assert invoice.balance == Decimal("0")


def test_without_the_supervisors_choice_a_timed_out_charge_is_never_sent_again(
    make_gateway, make_invoice, sandbox
):
    gateway = make_gateway(timeout="1")
    make_invoice(token="tok_hang", gateway=gateway)
    execute_run(start_run(due_on=date.today(), actor=None).id)
    (charge,) = _charges()
    assert charge.status == "Indeterminate" and "once more" not in charge.reason


def test_a_gateway_whose_provider_makes_no_repeated_key_safe_cannot_be_set_to_resend(app):
    with pytest.raises(DomainError, match="does not make a repeated key safe"):
        gateways.save_gateway(
            plugin="payeezy", name="P", base_url="https://api-cert.payeezy.com", timeout=Decimal(5),
            enabled=True, credentials={"api_key": "a", "api_secret": "b", "merchant_token": "c"},
            actor=None, resend_after_timeout=True,
        )  # fmt: skip


class _Slow:
    """A plugin whose every call times out, counting the calls."""

    def __init__(self):
        self.sent = 0

    def charge(self, request):
        self.sent += 1
        return GatewayResult(GatewayStatus.INDETERMINATE, None, "no answer", reason="no answer",
                             timed_out=True)  # fmt: skip


def test_past_the_duplicate_window_or_without_a_timeout_nothing_is_sent_again():
    request = GatewayRequest("charge", "k", "INV-1", amount=Money(Decimal("5.00"), "USD"))
    slow = _Slow()
    result = Call(1, slow, "charge", request, resend_within=0.0).make()
    assert slow.sent == 1 and "past the provider's duplicate window" in result.reason
    twice = _Slow()
    again = Call(1, twice, "charge", request, resend_within=60.0).make()
    assert twice.sent == 2 and again.status is GatewayStatus.INDETERMINATE
    never = _Slow()
    Call(1, never, "charge", request).make()
    assert never.sent == 1
