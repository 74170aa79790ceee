"""Payments and allocations have pages of their own; a supervisor takes an allocation back with a
reason (once, however often it is clicked) and allocates what is free; the ledger export has one
row per money movement."""

import csv
import io
import re
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.errors import NotAllowed
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments import service
from portal.payments.models import Allocation, Payment


@pytest.fixture
def paid(make_invoice, run_for):
    invoice = make_invoice(token="tok_approve", amount="120.00")
    run_for()
    return db.session.scalar(select(Allocation).where(Allocation.invoice_id == invoice.id))


def token(client, path, name="once"):
    page = client.get(path).get_data(as_text=True)
    return re.findall(rf'name="{name}"[^>]*value="([^"]+)"', page)


def balance(invoice_id):
    db.session.expire_all()
    return db.session.get(Invoice, invoice_id).balance


def test_the_payments_list_and_a_payments_page(client, login, make_user, paid):
    login(make_user("auditor"))
    listing = client.get("/payments/").get_data(as_text=True)
    assert f'href="/payments/{paid.payment_id}"' in listing and "120.00 USD" in listing
    page = client.get(f"/payments/{paid.payment_id}").get_data(as_text=True)
    assert "INV-0001" in page and "allocated" in page
    assert "Unallocate" not in page  # an auditor reads only


def test_a_double_click_unallocates_once(client, login, make_user, paid):
    login(make_user("supervisor"))
    path = f"/payments/{paid.payment_id}"
    (once,) = token(client, path)
    data = {"once": once, "reason": "Allocated to the wrong invoice by the import"}
    first = client.post(f"/payments/allocations/{paid.id}/unallocate", data=data,
                        follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "is taken back from invoice INV-0001" in first
    again = client.post(f"/payments/allocations/{paid.id}/unallocate", data=data,
                        follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "This form was already submitted at" in again
    assert balance(paid.invoice_id) == Decimal("120.00")  # reopened once, not twice
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "invoice.unallocated")
    ).all()
    assert len(events) == 1 and events[0].note == data["reason"]


def test_two_supervisors_unallocating_at_once_make_one_effect(app, paid, make_user):
    first, second = make_user("supervisor"), make_user("supervisor", "supervisor2")
    outcomes, start = [], threading.Barrier(2)

    def act(user_id):
        with app.app_context():
            from portal.auth.models import User

            user = db.session.get(User, user_id)
            start.wait()
            try:
                service.unallocate(paid.id, "Two people fixing the same mistake", user)
                db.session.commit()
                outcomes.append("done")
            except NotAllowed as exc:
                db.session.rollback()
                outcomes.append(str(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=act, args=(u.id,)) for u in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("done") == 1, outcomes
    assert any(o.startswith("Already unallocated by Supervisor") for o in outcomes), outcomes
    assert balance(paid.invoice_id) == Decimal("120.00")


@pytest.mark.parametrize("reason", ["", "oops"])
def test_an_unallocation_needs_a_reason_and_changes_nothing_without(
    client, login, make_user, paid, reason
):
    login(make_user("supervisor"))
    (once,) = token(client, f"/payments/{paid.payment_id}")
    response = client.post(f"/payments/allocations/{paid.id}/unallocate",
                           data={"once": once, "reason": reason})  # fmt: skip
    assert response.status_code == 400
    assert "Write why the allocation is taken back" in response.get_data(as_text=True)
    assert balance(paid.invoice_id) == Decimal("0")


@pytest.mark.parametrize("role", ["clerk", "auditor"])
def test_only_a_supervisor_unallocates_or_allocates(client, login, make_user, paid, role):
    login(make_user(role))
    reason = {"reason": "Allocated to the wrong invoice"}
    assert (
        client.post(f"/payments/allocations/{paid.id}/unallocate", data=reason).status_code == 403
    )
    assert client.post(f"/payments/{paid.payment_id}/allocate").status_code == 403
    assert balance(paid.invoice_id) == Decimal("0")


def test_what_is_taken_back_is_allocated_to_another_invoice_of_the_account(
    client, login, make_user, paid, make_invoice
):
    supervisor = make_user("supervisor")
    other = make_invoice(token="tok_approve", amount="50.00", due_days=10)
    other.account_id = paid.invoice.account_id
    db.session.commit()
    service.unallocate(paid.id, "It was meant for the next invoice", supervisor)
    db.session.commit()
    login(supervisor)
    path = f"/payments/{paid.payment_id}"
    once = token(client, path)[-1]
    too_much = client.post(f"{path}/allocate",
                           data={"once": once, "invoice_id": other.id, "amount": "60.00"})  # fmt: skip
    assert too_much.status_code == 400
    assert "more than invoice INV-0002&#39;s balance" in too_much.get_data(as_text=True)
    once = token(client, path)[-1]
    done = client.post(f"{path}/allocate", data={"once": once, "invoice_id": other.id,
                                                 "amount": "50.00"}, follow_redirects=True)  # fmt: skip
    assert "50.00 USD of payment" in done.get_data(as_text=True)
    assert balance(other.id) == Decimal("0")
    assert db.session.get(Payment, paid.payment_id).unallocated.amount == Decimal("70.00")


def test_the_ledger_has_one_row_per_money_movement(client, login, make_user, paid):
    supervisor = make_user("supervisor")
    service.unallocate(paid.id, "Allocated to the wrong invoice", supervisor)
    db.session.commit()
    login(make_user("auditor"))
    response = client.get("/payments/ledger.csv")
    assert response.status_code == 200 and response.is_streamed
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["movement"], r["amount"], r["invoice"]) for r in rows] == [
        ("payment", "120.00", ""),
        ("allocation", "120.00", "INV-0001"),
        ("unallocation", "-120.00", "INV-0001"),
    ]
    assert rows[0]["gateway_reference"].startswith("ch_") and rows[0]["at_utc"].endswith("Z")
    assert rows[2]["by"] == "supervisor"
    empty = client.get("/payments/ledger.csv?since=2001-01-01&until=2001-01-31")
    assert empty.get_data(as_text=True).count("\n") == 1  # the header only
    bad = client.get("/payments/ledger.csv?since=2026-12-31&until=2026-12-01")
    assert bad.status_code == 302


def test_the_payments_export_has_a_row_per_allocation(client, login, make_user, paid):
    login(make_user("auditor"))
    rows = list(csv.DictReader(io.StringIO(
        client.get("/payments/export.csv").get_data(as_text=True))))  # fmt: skip
    assert [(r["amount"], r["invoice"], r["allocated"]) for r in rows] == [
        ("120.00", "INV-0001", "120.00")
    ]
