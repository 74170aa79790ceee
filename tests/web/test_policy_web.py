"""The status policy page and strict mode."""

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.settings import service as settings
from portal.transactions import finalize


def test_the_policy_page_shows_every_status_with_its_action(client, login, make_user):
    login(make_user("auditor"))
    page = client.get("/policy/").get_data(as_text=True)
    for status in ["Success", "Decline", "Validation Error", "Permanent Fail", "Requires Review",
                   "Indeterminate", "System Fail"]:  # fmt: skip
        assert status in page
    assert "Strict mode is off." in page
    assert "Switch strict mode on" not in page  # an auditor reads only


def test_the_policy_page_shows_each_plugins_retry_safety_declaration(client, login, make_user):
    from portal.gateways import registry

    login(make_user("auditor"))
    page = client.get("/policy/").get_data(as_text=True)
    table = page[page.index('id="retry-safety"') :]
    rows = {d.provider: d for d in registry.declarations()}
    assert set(rows) == set(registry.display_names().values())
    for provider in rows:
        assert provider in table
    assert rows["Stripe"].resend_after_timeout and rows["Stripe"].duplicate_window_seconds == 86400
    assert rows["Stripe"].webhooks == "webhook_secret"
    payeezy = rows["Payeezy (First Data)"]
    assert not payeezy.resend_after_timeout and not payeezy.read_only_lookup
    assert "moves money (reverses)" in table and "86400 s" in table


def test_in_strict_mode_a_decline_locks_the_invoice_and_can_be_finalized(
    client, login, make_user, make_invoice, run_for
):
    supervisor = make_user("supervisor")
    login(supervisor)
    response = client.post("/policy/strict-mode", data={"on": "1"}, follow_redirects=True)
    assert "Strict mode is on." in response.get_data(as_text=True)
    invoice = make_invoice(token="tok_decline")
    run_for()
    assert db.session.get(Invoice, invoice.id).corrective_action == "Action Required"
    clerk = make_user("clerk")
    charge_id = 1
    assert finalize.refund_and_unlock(charge_id, clerk).unlocked
    # Switching it off again changes nothing already locked, and is audited both times.
    client.post("/policy/strict-mode", data={"on": "0"})
    assert settings.strict_mode() is False
    from portal.audit.models import AuditEvent

    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("setting.%"))
    ).all()
    assert actions == ["setting.strict_mode", "setting.strict_mode"]


def test_by_default_a_decline_stays_eligible(make_invoice, run_for):
    invoice = make_invoice(token="tok_decline")
    run_for()
    assert db.session.get(Invoice, invoice.id).corrective_action is None


@pytest.mark.parametrize("role", ["auditor", "clerk"])
def test_only_a_supervisor_switches_strict_mode(client, login, make_user, role):
    login(make_user(role))
    assert client.post("/policy/strict-mode", data={"on": "1"}).status_code == 403
    assert settings.strict_mode() is False
