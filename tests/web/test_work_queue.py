"""Working the Action Required queue every day: how long each invoice has been locked, who owns
it, the list filtered to "mine", invoice states, and filters kept in the URL."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.transactions import finalize
from portal.transactions.models import PaymentTransaction


@pytest.fixture
def queue(make_invoice, run_for):
    """Three locked invoices, one paid, one partially paid, one open (not due)."""
    locked = [make_invoice(token=t) for t in ("tok_review", "tok_hang", "tok_misconfigured")]
    paid = make_invoice(token="tok_approve")
    make_invoice(token="tok_approve", due_days=5)
    run_for()
    return locked, paid


def invoice(number_or_obj):
    db.session.expire_all()
    return db.session.get(Invoice, number_or_obj.id)


def numbers(page: str) -> list[str]:
    return re.findall(r'href="/invoices/\d+">(INV-\d+)<', page)


def test_a_locked_invoice_knows_since_when(queue):
    locked, paid = queue
    assert invoice(locked[0]).locked_at is not None
    assert invoice(paid).locked_at is None


def test_a_clerk_takes_an_invoice_and_filters_the_queue_to_mine(client, login, make_user, queue):
    locked, _ = queue
    login(make_user("clerk"))
    page = client.get("/invoices/?filter=action-required").get_data(as_text=True)
    assert "Locked for" in page and "0 min" in page and "nobody yet" in page
    client.post(
        f"/invoices/{locked[1].id}/take", data={"next": "/invoices/?filter=action-required"}
    )
    assert invoice(locked[1]).owner.username == "clerk"
    mine = client.get("/invoices/?filter=action-required&owner=mine").get_data(as_text=True)
    assert numbers(mine) == [locked[1].number]
    nobody = client.get("/invoices/?filter=action-required&owner=nobody").get_data(as_text=True)
    assert numbers(nobody) == [locked[0].number, locked[2].number]
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "invoice.owner_changed")
    )
    assert event.after == {"owner": "Clerk"}


def test_only_a_supervisor_gives_an_invoice_to_another_clerk(client, login, make_user, queue):
    locked, _ = queue
    other = make_user("clerk", "clerk2")
    login(make_user("clerk"))
    page = client.post(
        f"/invoices/{locked[0].id}/take", data={"owner": other.id}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Only a supervisor gives an invoice to another clerk" in page
    assert invoice(locked[0]).owner_id is None


def test_a_supervisor_assigns_and_an_auditor_cannot(client, login, make_user, queue):
    locked, _ = queue
    clerk = make_user("clerk")
    auditor = make_user("auditor")
    login(auditor)
    assert client.post(f"/invoices/{locked[0].id}/take").status_code == 403
    client.post("/logout")
    login(make_user("supervisor"))
    client.post(f"/invoices/{locked[0].id}/take", data={"owner": clerk.id})
    assert invoice(locked[0]).owner_id == clerk.id
    refused = client.post(
        f"/invoices/{locked[0].id}/take", data={"owner": auditor.id}, follow_redirects=True
    )
    assert "cannot finalize invoices" in refused.get_data(as_text=True)
    client.post(f"/invoices/{locked[0].id}/release")
    assert invoice(locked[0]).owner_id is None


def test_an_unlocked_invoice_cannot_be_taken_and_unlocking_ends_ownership(
    client, login, make_user, queue
):
    locked, paid = queue
    clerk = make_user("clerk")
    login(clerk)
    page = client.post(f"/invoices/{paid.id}/take", follow_redirects=True).get_data(as_text=True)
    assert "is not locked: there is nothing to take" in page
    client.post(f"/invoices/{locked[1].id}/take")
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == locked[1].id)
    )
    finalize.refund_and_unlock(charge.id, clerk, note="Customer asked us to retry next week")
    after = invoice(locked[1])
    assert (after.corrective_action, after.owner_id, after.locked_at) == (None, None, None)
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "transaction.finalized")
    )
    assert event.note == "Customer asked us to retry next week"


def test_the_note_on_a_finalization_form_is_kept(client, login, make_user, queue):
    locked, _ = queue
    login(make_user("clerk"))
    charge = db.session.scalar(
        select(PaymentTransaction).where(PaymentTransaction.invoice_id == locked[0].id)
    )
    path = f"/transactions/{charge.id}/manual-payment"
    token = re.search(r'name="once"[^>]*value="([^"]+)"', client.get(path).get_data(as_text=True))
    client.post(path, data={"amount": "100.00", "method": "Wire", "note": "Wire ref 8812 seen",
                            "once": token.group(1)})  # fmt: skip
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "transaction.finalized")
    )
    assert event.note == "Wire ref 8812 seen"
    assert "Wire ref 8812 seen" in client.get(f"/transactions/{charge.id}").get_data(as_text=True)


def test_invoice_states_are_shown_and_filtered(client, login, make_user, queue, make_invoice):
    locked, paid = queue
    login(make_user("auditor"))
    partial = make_invoice(amount="100.00")
    partial.balance = partial.total - 40
    db.session.commit()
    everything = client.get("/invoices/").get_data(as_text=True)
    for state in ("Action Required", "Paid", "Partially paid", "Open"):
        assert f">{state}</span>" in everything
    assert numbers(client.get("/invoices/?filter=paid").get_data(as_text=True)) == [paid.number]
    assert numbers(client.get("/invoices/?filter=partially-paid").get_data(as_text=True)) == [
        partial.number
    ]
    assert len(numbers(client.get("/invoices/?filter=open").get_data(as_text=True))) == 1


def test_invoice_filters_are_kept_in_the_url_and_bad_values_are_said(
    client, login, make_user, queue
):
    locked, _ = queue
    login(make_user("auditor"))
    yesterday = (clock.today() - timedelta(days=1)).isoformat()
    page = client.get(f"/invoices/?filter=action-required&due_from={yesterday}&sort=due&dir=desc")
    text = page.get_data(as_text=True)
    assert numbers(text) == [n.number for n in reversed(locked)]
    assert 'aria-sort="descending"' in text
    bad = client.get("/invoices/?currency=QQQ&due_to=soon").get_data(as_text=True)
    assert "Currency: &#39;QQQ&#39; is not one Settle knows; left out" in bad
    assert "Due to: &#39;soon&#39; is not a date (YYYY-MM-DD); left out" in bad
    locked_long_ago = client.get(
        f"/invoices/?filter=action-required&locked_before={clock.today() - timedelta(days=3)}"
    )
    assert numbers(locked_long_ago.get_data(as_text=True)) == []


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "javascript:x"])
def test_taking_an_invoice_goes_back_only_to_a_page_of_this_site(
    client, login, make_user, queue, target
):
    locked, _ = queue
    login(make_user("clerk"))
    answer = client.post(f"/invoices/{locked[0].id}/take", data={"next": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"/invoices/{locked[0].id}"
    assert client.post(f"/invoices/{locked[1].id}/take", data={"owner": "x"}).status_code == 400
    assert invoice(locked[1]).owner is None
