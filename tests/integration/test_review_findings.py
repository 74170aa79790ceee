"""What a review of issue 14's changes found, each held by a test: form tokens in any server time
zone, rotation against a save at the same moment and against another process's rotation, the
watchdog and a finished call, a password change a while after login, and a clerk's manual
payment during their own Refund & Unlock."""

import os
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import time_machine
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from portal import clock, once, vault
from portal.errors import NotAllowed
from portal.extensions import db
from portal.gateways import transport
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.transactions import finalize, lookups, manual_payment
from portal.transactions.models import PaymentTransaction
from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("zone", ["Pacific/Auckland", "America/Los_Angeles"])
def test_a_fresh_form_token_is_good_and_an_old_one_is_not_in_any_server_time_zone(
    app, make_user, monkeypatch, zone
):
    clerk = make_user("clerk")
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        with app.test_request_context():
            once.spend(once.issue(clerk, "allocate:1"), clerk, "allocate:1")
            start = clock.now()
            with time_machine.travel(start, tick=False) as moment:
                token = once.issue(clerk, "allocate:2")
                moment.shift(timedelta(hours=13))
                with pytest.raises(NotAllowed, match="more than 12 hours ago"):
                    once.spend(token, clerk, "allocate:2")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def stored(gateway_id):
    return db.session.execute(
        text("SELECT credentials FROM gateways WHERE id = :id"), {"id": gateway_id}
    ).scalar_one()


def test_a_credential_saved_while_the_key_rotates_is_kept(app, make_gateway, monkeypatch):
    gateway = make_gateway(credentials={"api_key": "the leaked one"})
    real, saved = vault.Vault.reseal, []

    def reseal(self, token):
        if not saved:  # a supervisor replaces the leaked key just now, in another process
            saved.append(1)
            with db.engine.begin() as connection:
                connection.execute(
                    text("UPDATE gateways SET credentials = :v WHERE id = :id"),
                    {"v": vault.current().seal({"api_key": "the new one"}), "id": gateway.id},
                )
        return real(self, token)

    monkeypatch.setattr(vault.Vault, "reseal", reseal)
    result = app.test_cli_runner().invoke(args=["settle", "rotate-key"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Gateway, gateway.id).credentials == {"api_key": "the new one"}


def test_after_another_process_rotates_the_key_file_this_one_seals_under_the_new_key(
    app, make_gateway
):
    path = Path(app.instance_path) / vault.KEY_FILE
    vault.current()  # read now
    newer = Fernet.generate_key().decode()
    path.write_text("\n".join([newer, *path.read_text().split()[:1]]) + "\n")
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    gateway = make_gateway(name="Made after the rotation")
    assert vault.Vault([newer], "test").open(stored(gateway.id)) == gateway.credentials


def test_the_watchdog_never_cuts_a_connection_once_its_call_is_over():
    cut = []
    connection = SimpleNamespace(sock=SimpleNamespace(shutdown=lambda how: cut.append(how)))
    deadline = transport.Deadline(60)
    with deadline:
        deadline.watch(connection)
    deadline.fire()  # the watchdog's moment comes after the call ended
    assert cut == [] and not deadline.fired


def test_a_password_change_a_while_after_login_is_quick(client, login, make_user):
    login(make_user("clerk"))
    with time_machine.travel(clock.now() + timedelta(minutes=3)):
        started = time.monotonic()
        new = "a long enough new passphrase"
        response = client.post(
            "/account/password", data={"current": PASSWORD, "new": new, "again": new}
        )
        assert response.status_code == 302, response.status_code
        assert time.monotonic() - started < 5


def test_a_clerk_cannot_book_a_payment_during_their_own_refund_in_another_tab(
    make_invoice, make_user, run_for
):
    invoice = make_invoice(token="tok_review", amount="30.00")
    run_for()
    clerk = make_user("clerk")
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )
    row = db.session.get(Invoice, invoice.id)
    row.finalizing_by_id, row.finalizing_at = clerk.id, clock.now()
    db.session.commit()
    from decimal import Decimal

    from portal.payments.models import PaymentMethodKind

    with pytest.raises(NotAllowed, match="is attempting a refund and unlock of this invoice"):
        manual_payment.record_manual_payment(
            charge.id, amount=Decimal("30.00"), currency="USD", method=PaymentMethodKind.WIRE,
            reference="W", received_on=None, actor=clerk,
        )  # fmt: skip


def test_a_refund_whose_claim_was_taken_over_stops_and_unlocks_nothing(
    make_invoice, make_user, run_for, monkeypatch
):
    invoice = make_invoice(token="tok_hang")
    run_for()
    slow, other = make_user("clerk", "slow"), make_user("clerk", "other")
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice.id)
    )
    asked = lookups.lookup_charge

    def taken_over(*args, **kwargs):
        with db.engine.begin() as connection:  # 20 minutes passed; the other clerk took over
            connection.execute(
                text("UPDATE invoices SET finalizing_by_id = :o, finalizing_at = :t WHERE id = :i"),
                {"o": other.id, "t": clock.now(), "i": invoice.id},
            )
        return asked(*args, **kwargs)

    monkeypatch.setattr(lookups, "lookup_charge", taken_over)
    with pytest.raises(NotAllowed, match="taken over"):
        finalize.refund_and_unlock(charge.id, slow)
    db.session.expire_all()
    row = db.session.get(Invoice, invoice.id)
    assert row.corrective_action == "Action Required" and row.finalizing_by_id == other.id
