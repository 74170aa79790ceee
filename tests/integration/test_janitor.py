"""The janitor asks the gateway about locked charges on a back-off schedule; autovoid voids."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.sandbox.server import sandbox_credentials
from portal.settings import service as settings
from portal.sweeps import janitor
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


@pytest.fixture
def locked(make_invoice, run_for):
    def make(token="tok_hang", gateway=None):
        invoice = make_invoice(token=token, gateway=gateway)
        run_for()
        return db.session.scalar(
            select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
        )

    return make


def lookups_of(charge):
    db.session.expire_all()
    return db.session.scalars(
        select(PaymentTransaction).where(
            PaymentTransaction.parent_id == charge.id, PaymentTransaction.operation == "lookup"
        )
    ).all()


def test_the_janitor_backs_off_and_never_moves_money(locked, sandbox):
    charge = locked()
    start = charge.answered_at
    assert janitor.run_janitor(start + timedelta(seconds=30)).looked_up == []
    report = janitor.run_janitor(start + timedelta(minutes=1))
    assert report.looked_up == [f"#{charge.id}: unsettled"]
    assert [lk.gateway_state for lk in lookups_of(charge)] == ["unsettled"]
    # The next check waits 5 minutes, the one after 30.
    assert janitor.run_janitor(start + timedelta(minutes=4)).looked_up == []
    assert len(janitor.run_janitor(start + timedelta(minutes=7)).looked_up) == 1
    assert janitor.run_janitor(start + timedelta(minutes=20)).looked_up == []
    assert len(janitor.run_janitor(start + timedelta(minutes=40)).looked_up) == 1
    assert [c["state"] for c in sandbox.ledger.all()] == ["unsettled"]
    assert db.session.get(Invoice, charge.invoice_id).corrective_action == "Action Required"


def test_the_janitor_stops_after_its_schedule(locked):
    charge = locked()
    settings.put(janitor.SCHEDULE, [1, 1], None)
    db.session.commit()
    moment = charge.answered_at
    for _ in range(5):
        moment += timedelta(minutes=2)
        janitor.run_janitor(moment)
    assert len(lookups_of(charge)) == 2


def test_autovoid_voids_an_unsettled_indeterminate_charge_and_unlocks(locked, sandbox):
    charge = locked()
    review = locked("tok_review")
    settings.put(janitor.AUTOVOID, True, None)
    db.session.commit()
    report = janitor.run_janitor(clock.now() + timedelta(minutes=2))
    assert len(report.voided) == 1 and f"#{charge.id}" in report.voided[0]
    db.session.expire_all()
    assert db.session.get(Invoice, charge.invoice_id).corrective_action is None
    # A review hold is the bank's call: looked up, never voided.
    assert db.session.get(Invoice, review.invoice_id).corrective_action == "Action Required"
    states = sorted(c["state"] for c in sandbox.ledger.all())
    assert states == ["unsettled", "voided"]
    unlocked = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invoice.unlocked"))
    assert unlocked.actor_name == "Settle (system)"


def test_autovoid_never_refunds_a_settled_charge(locked, sandbox):
    charge = locked()
    sandbox.ledger.settle()
    settings.put(janitor.AUTOVOID, True, None)
    db.session.commit()
    report = janitor.run_janitor(clock.now() + timedelta(minutes=2))
    assert "a clerk decides" in report.looked_up[0]
    assert [c["state"] for c in sandbox.ledger.all()] == ["settled"]
    db.session.expire_all()
    assert db.session.get(Invoice, charge.invoice_id).corrective_action == "Action Required"


def test_the_janitor_never_asks_a_gateway_whose_lookup_reverses(locked, sandbox):
    gateway = Gateway(name="Payeezy", plugin="payeezy", base_url=sandbox.url_for("payeezy"),
                      credentials=sandbox_credentials("payeezy"), timeout_seconds=1)  # fmt: skip
    db.session.add(gateway)
    db.session.commit()
    charge = locked(gateway=gateway)
    janitor.run_janitor(clock.now() + timedelta(minutes=2))
    assert lookups_of(charge) == []
    assert [c["state"] for c in sandbox.ledger.all()] == ["unsettled"]


def test_a_supervisor_sets_the_janitor_and_autovoid(client, login, make_user):
    login(make_user("supervisor"))
    page = client.post(
        "/policy/janitor", data={"minutes": "2 10 60", "autovoid": "1"}, follow_redirects=True
    )
    assert "autovoid is on" in page.get_data(as_text=True)
    assert janitor.schedule() == [2, 10, 60] and janitor.autovoid() is True
    bad = client.post("/policy/janitor", data={"minutes": "0 x"}, follow_redirects=True)
    assert "Give 1 to 40 waits" in bad.get_data(as_text=True)
    assert janitor.schedule() == [2, 10, 60]


@pytest.mark.parametrize("role", ["auditor", "clerk"])
def test_only_a_supervisor_sets_the_janitor(client, login, make_user, role):
    login(make_user(role))
    assert client.post("/policy/janitor", data={"minutes": "1", "autovoid": "1"}).status_code == 403
    assert janitor.autovoid() is False


def test_the_janitor_command(app):
    result = app.test_cli_runner().invoke(args=["settle", "janitor"])
    assert result.exit_code == 0 and "No locked charge is due a check." in result.output
