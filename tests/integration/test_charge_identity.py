"""A charge's identity at the gateway is Settle's own and never drifts: voids, refunds and lookups
find a charge by the provider's reference or Settle's key, never by a truncated or mutable invoice
number, and never touch a charge that another of Settle's transactions owns (issue 26, items 1
and 2). Told as a clerk's stories against the sandbox's Authorize.Net over HTTP, checked against
the sandbox's own ledger."""

from datetime import timedelta
from decimal import Decimal

import pytest

from portal import clock
from portal.extensions import db
from portal.gateways.authorize_net.plugin import AuthorizeNetGateway
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.sandbox.server import sandbox_credentials
from portal.settings import service as settings
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.sweeps import janitor
from portal.transactions import calls, finalize
from portal.transactions.models import Operation, PaymentTransaction

pytestmark = pytest.mark.integration

PROFILE = "900100200"
# Two invoice numbers that Authorize.Net's 20-character invoiceNumber cannot tell apart.
PAID, TIMED_OUT = "INV-2026-12-ACME-CORP-0001", "INV-2026-12-ACME-CORP-0002"


@pytest.fixture
def anet(app, sandbox):
    gateway = Gateway(name="Authorize.Net", plugin="authorize_net",
                      base_url=sandbox.url_for("authorize_net"),
                      credentials=sandbox_credentials("authorize_net"),
                      timeout_seconds=Decimal("0.3"))  # fmt: skip
    db.session.add(gateway)
    db.session.commit()
    return gateway


@pytest.fixture
def two_invoices(make_invoice, anet, run_for):
    """One invoice paid by a run, and one whose charge timed out and locked it: same amount, and
    numbers that share their first 20 characters."""
    paid = make_invoice(token=f"tok_approve/{PROFILE}", gateway=anet)
    hung = make_invoice(token=f"tok_hang/{PROFILE}", gateway=anet)
    paid.number, hung.number = PAID, TIMED_OUT
    db.session.commit()
    run_for()
    paid_charge, hung_charge = calls.charges_of(paid.id)[0], calls.charges_of(hung.id)[0]
    assert paid_charge.gateway_status is GatewayStatus.SUCCESS
    assert hung_charge.gateway_status is GatewayStatus.INDETERMINATE
    assert hung_charge.provider_reference is None  # no transId: found only by a search
    return paid_charge, hung_charge


def held(sandbox, reference):
    return next(c for c in sandbox.ledger.all() if c["id"] == reference)["state"]


def test_refund_and_unlock_of_a_timed_out_charge_never_voids_another_invoices_paid_charge(
    two_invoices, sandbox, make_user
):
    paid_charge, hung_charge = two_invoices
    outcome = finalize.refund_and_unlock(hung_charge.id, make_user("clerk"))
    assert outcome.unlocked, outcome.problems
    assert held(sandbox, paid_charge.provider_reference) == "unsettled"  # untouched
    (hung_held,) = [c for c in sandbox.ledger.all() if c["id"] != paid_charge.provider_reference]
    assert hung_held["state"] == "voided"  # its own money, given back
    (void,) = [t for t in _follow_ups(hung_charge) if t.operation == Operation.VOID]
    assert void.provider_reference == hung_held["id"]
    assert db.session.get(Invoice, paid_charge.invoice_id).balance == Decimal("0.00")


def test_each_charge_is_sent_with_its_own_reference_and_keeps_its_invoice_number(two_invoices):
    paid_charge, hung_charge = two_invoices
    for charge, number in ((paid_charge, PAID), (hung_charge, TIMED_OUT)):
        assert charge.order_id == number
        assert charge.order_reference == charge.idempotency_key[:20]
        order = charge.raw_request["body"]
        assert f'"invoiceNumber": "{charge.order_reference}"' in order
        assert f"Invoice {number} (Settle {charge.idempotency_key})" in order


def test_a_charge_sent_with_a_truncated_invoice_number_sets_aside_the_one_another_charge_owns(
    make_invoice, anet, run_for, sandbox, make_user, monkeypatch
):
    # Charges recorded before per-charge references: their invoiceNumber is the invoice number,
    # cut to 20 characters, so the search finds both invoices' charges.
    monkeypatch.setattr(AuthorizeNetGateway, "order_reference", classmethod(lambda cls, key: None))
    paid = make_invoice(token=f"tok_approve/{PROFILE}", gateway=anet)
    hung = make_invoice(token=f"tok_hang/{PROFILE}", gateway=anet)
    paid.number, hung.number = PAID, TIMED_OUT
    db.session.commit()
    run_for()
    paid_charge, hung_charge = calls.charges_of(paid.id)[0], calls.charges_of(hung.id)[0]
    outcome = finalize.refund_and_unlock(hung_charge.id, make_user("clerk"))
    assert outcome.unlocked, outcome.problems
    assert held(sandbox, paid_charge.provider_reference) == "unsettled"
    lookup = next(t for t in _follow_ups(hung_charge) if t.operation == Operation.LOOKUP)
    assert f"set aside, as other charges': {paid_charge.provider_reference}" in (
        lookup.provider_message
    )


def test_autovoid_never_voids_another_invoices_paid_charge(two_invoices, sandbox):
    paid_charge, hung_charge = two_invoices
    settings.put(janitor.AUTOVOID, True, None)
    db.session.commit()
    janitor.run_janitor(clock.now() + timedelta(minutes=2))
    assert held(sandbox, paid_charge.provider_reference) == "unsettled"
    assert db.session.get(Invoice, hung_charge.invoice_id).corrective_action is None


def test_a_found_charge_of_another_amount_is_not_taken_for_this_one(
    make_invoice, anet, run_for, sandbox, make_user, monkeypatch
):
    # Searched by invoice number (a charge from before references), the gateway lists a charge
    # of another amount made outside Settle: nothing proves it is this charge, so nothing is
    # voided and the invoice stays locked for a person.
    monkeypatch.setattr(AuthorizeNetGateway, "order_reference", classmethod(lambda cls, key: None))
    hung = make_invoice(token=f"tok_hang/{PROFILE}", gateway=anet, amount="100.00")
    run_for()
    hung_charge = calls.charges_of(hung.id)[0]
    other = _charge_outside_settle(sandbox, hung.number, "45.00")
    outcome = finalize.refund_and_unlock(hung_charge.id, make_user("clerk"))
    assert not outcome.unlocked
    assert any("neither its amount (100.00 USD) nor its time" in p for p in outcome.problems)
    assert held(sandbox, other) == "unsettled"
    assert db.session.get(Invoice, hung.id).corrective_action == ACTION_REQUIRED


def _charge_outside_settle(sandbox, invoice_number, amount):
    """A charge made in the provider's portal for the invoice: not one of Settle's."""
    from portal.gateways.base import GatewayConfig, GatewayRequest
    from portal.gateways.registry import plugin
    from portal.money import Money

    gateway = plugin("authorize_net", GatewayConfig(sandbox.url_for("authorize_net"),
                                                    sandbox_credentials("authorize_net"), 2.0))  # fmt: skip
    result = gateway.charge(
        GatewayRequest("charge", "f" * 32, invoice_number, Money.parse(amount, "USD"),
                       f"tok_approve/{PROFILE}")
    )  # fmt: skip
    assert result.status is GatewayStatus.SUCCESS
    return result.reference


def _follow_ups(charge):
    db.session.expire_all()
    return list(
        db.session.scalars(
            db.select(PaymentTransaction)
            .where(PaymentTransaction.parent_id == charge.id)
            .order_by(PaymentTransaction.id)
        )
    )


def test_a_timed_out_charge_that_settled_before_anyone_asked_is_found_and_never_charged_again(
    make_invoice, anet, run_for, sandbox, make_user
):
    # Found by attack: the unsettled list no longer showed it, the lookup said "not found",
    # Refund & Unlock unlocked, and the next run charged the customer a second time.
    invoice = make_invoice(token=f"tok_hang/{PROFILE}", gateway=anet)
    run_for()
    (charge,) = calls.charges_of(invoice.id)
    sandbox.ledger.settle()  # the gateway's nightly batch closed
    clerk = make_user("clerk")
    lookup, result = finalize.check_gateway_status(charge.id, clerk)
    (found,) = result.findings
    assert found.state.value == "settled" and "settled transaction(s)" in result.message
    assert finalize.recommendation(charge, lookup) == finalize.MANUAL_PAYMENT
    outcome = finalize.refund_and_unlock(charge.id, clerk)
    assert outcome.unlocked and any("refund of 100.00 USD" in a for a in outcome.actions)
    assert [c["state"] for c in sandbox.ledger.all()] == ["refunded"]
