"""Every writer of an invoice's money takes its row lock and looks again at write time; an invoice
with a charge whose outcome is unknown keeps its number (issue 26, items 2 and 3). Told as the
billing system would do it: through the API and the import, against a run on the sandbox."""

import pytest

from portal.extensions import db
from portal.imports import service as imports
from portal.invoices.models import Invoice
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.transactions import calls, finalize
from tests.web.test_api import Api, invoice_body, token_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def api(client, token_for, make_gateway):  # noqa: F811
    make_gateway(name="Sandbox")
    _, secret = token_for("supervisor")
    api = Api(client, secret)
    assert api.post("/accounts", {"external_id": "CRM-1", "number": "A-1",
                                  "name": "Adatum"}).status_code == 200  # fmt: skip
    return api


def card(api, token):
    response = api.post("/payment-methods", {
        "external_id": "PM-1", "account_external_id": "CRM-1", "gateway": "Sandbox",
        "token": token, "brand": "Visa", "last4": "4242"})  # fmt: skip
    assert response.status_code == 200, response.json


def timed_out_invoice(api, run_for):
    card(api, "tok_hang")
    created = api.post("/invoices", invoice_body(total="150.00"))
    assert created.status_code == 201, created.json
    run_for()
    invoice = db.session.get(Invoice, created.json["id"])
    (charge,) = calls.charges_of(invoice.id)
    assert charge.gateway_status is GatewayStatus.INDETERMINATE
    assert invoice.corrective_action == ACTION_REQUIRED
    return invoice, charge


def test_an_invoice_whose_charge_timed_out_cannot_be_renumbered_through_the_api(
    api, run_for, make_user
):
    invoice, charge = timed_out_invoice(api, run_for)
    refused = api.patch(f"/invoices/{invoice.id}", {"number": "INV-1-RENAMED"})
    assert refused.status_code == 422
    assert f"cannot be renumbered while charge #{charge.id}" in refused.json["message"]
    assert "number" in refused.json["errors"]["json"]
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).number == "INV-1"
    # Once a clerk has finalized the charge, its outcome is known: the number may change.
    assert finalize.refund_and_unlock(charge.id, make_user("clerk")).unlocked
    assert api.patch(f"/invoices/{invoice.id}", {"number": "INV-1-RENAMED"}).status_code == 200


def test_an_invoice_whose_charge_timed_out_cannot_be_renumbered_by_an_import(api, run_for):
    invoice, charge = timed_out_invoice(api, run_for)
    renumbered = (
        ",".join(imports.COLUMNS)
        + "\n"
        + (f"invoice,INV-EXT-1,CRM-1,INV-1-RENAMED,,USD,150.00,{invoice.due_date},true,,,,,,,\n")
    )
    (row,) = imports.plan(renumbered).rows
    assert row.action == "refused"
    assert f"cannot be renumbered while charge #{charge.id}" in row.reason


def test_an_import_planned_before_a_run_charged_the_invoice_refuses_its_new_total_when_written(
    api, run_for
):
    # The background import's story: the file was planned (total 150 -> 250, no money yet), a
    # run then collected the 150, and only then were the rows written.
    card(api, "tok_approve")
    created = api.post("/invoices", invoice_body(total="150.00"))
    due = db.session.get(Invoice, created.json["id"]).due_date
    raised = (
        ",".join(imports.COLUMNS)
        + "\n"
        + (f"invoice,INV-EXT-1,CRM-1,INV-1,,USD,250.00,{due},true,,,,,,,\n")
    )
    planned = imports.plan(raised)
    assert [r.action for r in planned.rows] == ["update"]
    run_for()
    imports.write(planned)
    db.session.commit()
    db.session.expire_all()
    invoice = db.session.get(Invoice, created.json["id"])
    assert (invoice.total, invoice.balance) == (150, 0)  # paid, and nothing more owed
    (row,) = planned.rows
    assert row.action == "refused"
    assert "refused when written" in row.reason and "charged or paid already" in row.reason
    assert planned.counts["refused"] == 1
    # The next run finds nothing to charge.
    assert run_for().selected_count == 0


def test_an_invoice_with_no_money_on_it_takes_its_new_total_as_its_balance(api):
    card(api, "tok_approve")
    created = api.post("/invoices", invoice_body(total="150.00"))
    changed = api.patch(f"/invoices/{created.json['id']}", {"total": "250.00"})
    assert changed.status_code == 200, changed.json
    invoice = db.session.get(Invoice, created.json["id"])
    assert (invoice.total, invoice.balance) == (250, 250)


def test_a_payment_method_cannot_move_to_another_providers_gateway_through_the_api(
    api, stripe_gateway
):
    card(api, "tok_approve")
    moved = api.post("/payment-methods", {
        "external_id": "PM-1", "account_external_id": "CRM-1", "gateway": stripe_gateway.name,
        "token": "tok_approve", "brand": "Visa", "last4": "4242"})  # fmt: skip
    assert moved.status_code == 422
    assert "cannot be charged through a stripe gateway" in moved.json["message"]
    assert "gateway" in moved.json["errors"]["json"]
