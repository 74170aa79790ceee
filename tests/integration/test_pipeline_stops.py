"""A run that stops (cancelled, or an error inside it) with calls claimed but not yet sent:
none of them leaves, each is closed as never sent (nothing moved, nothing locked), every answer
that came back is written, and the counts add up. A repeat after a time-out that the gateway
refuses with 429 is never queued to be sent again."""

import time
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select

from portal import jobs
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.invoices.models import Invoice
from portal.payments.models import Payment
from portal.runs import dispatch, pipeline
from portal.runs.charging import NEVER_SENT
from portal.runs.models import PaymentRun
from portal.runs.service import cancel_run, start_run
from portal.statuses import GatewayStatus
from portal.transactions.calls import Call
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration


def _txns():
    return db.session.scalars(select(PaymentTransaction).order_by(PaymentTransaction.id)).all()


def test_a_cancel_leaves_the_claimed_calls_unsent_and_closed(
    app, make_invoice, make_gateway, sandbox, monkeypatch
):
    monkeypatch.setitem(app.config, "SETTLE_JOBS", "thread")
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 2)
    slow = make_gateway(name="Slow", timeout="1")
    invoices = [make_invoice(token="tok_hang", gateway=slow) for _ in range(8)]
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    dispatch.submit_run(run.id)
    for _ in range(100):  # the first window is claimed: 2 calls out, 2 waiting their turn
        db.session.expire_all()
        if len(_txns()) >= 4:
            break
        time.sleep(0.05)
    assert cancel_run(run.id, None)
    jobs.wait_for_threads(app, timeout=30)
    db.session.expire_all()
    run = db.session.get(PaymentRun, run.id)
    txns = _txns()
    assert run.state == "Cancelled" and "Pending" not in {t.status for t in txns}
    assert run.processed_count + run.skipped_count == run.selected_count == 8
    unsent = [t for t in txns if t.finalization == NEVER_SENT]
    assert unsent, "the window waiting for its turn was closed, not sent"
    held = {c["idempotency_key"] for c in sandbox.ledger.all()}
    for txn in unsent:
        assert txn.status == "System Fail" and txn.request_sent is False
        assert txn.idempotency_key not in held  # it never left
        assert db.session.get(Invoice, txn.invoice_id).corrective_action is None
    assert len(held) == len(txns) - len(unsent) < len(invoices)


def test_a_wider_claim_window_records_no_more_ahead_than_it_says(
    app, make_invoice, make_gateway, sandbox, monkeypatch
):
    """SETTLE_CLAIM_WINDOW: 6 invoices recorded Pending before their calls, 2 of them at the
    gateway at once; a cancel closes the 4 waiting their turn as never sent."""
    monkeypatch.setitem(app.config, "SETTLE_JOBS", "thread")
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 2)
    monkeypatch.setitem(app.config, "SETTLE_CLAIM_WINDOW", 6)
    slow = make_gateway(name="Slow", timeout="3")  # the first 2 calls hang while we look
    for _ in range(10):
        make_invoice(token="tok_hang", gateway=slow)
    run = start_run(due_on=date.today(), actor=None)
    db.session.commit()
    dispatch.submit_run(run.id)
    for _ in range(100):
        db.session.expire_all()
        if len(_txns()) >= 6:
            break
        time.sleep(0.05)
    assert len(_txns()) == 6  # the window, and not one more while its calls hang
    assert cancel_run(run.id, None)
    jobs.wait_for_threads(app, timeout=30)
    db.session.expire_all()
    txns = _txns()
    unsent = [t for t in txns if t.finalization == NEVER_SENT]
    held = {c["idempotency_key"] for c in sandbox.ledger.all()}
    assert len(txns) == 6 and len(unsent) == 4 and len(held) == 2
    assert not {t.idempotency_key for t in unsent} & held


def test_an_error_inside_the_run_still_writes_what_came_back(
    app, make_invoice, sandbox, run_for, monkeypatch
):
    monkeypatch.setitem(app.config, "SETTLE_GATEWAY_CONCURRENCY", 2)
    invoices = [make_invoice() for _ in range(10)]
    real, waits = pipeline.ChargeLoop._take_answers, []

    def broken(self, *, wait=True):
        if wait:
            waits.append(1)
            if len(waits) == 3:
                raise KeyError("internal detail")
        return real(self, wait=wait)

    monkeypatch.setattr(pipeline.ChargeLoop, "_take_answers", broken)
    run = run_for()
    assert run.state == "Completed with errors" and "stopped" in run.error
    assert "internal detail" not in run.error
    txns = _txns()
    assert "Pending" not in {t.status for t in txns}
    assert run.processed_count + run.skipped_count == run.selected_count == len(invoices)
    held = {c["idempotency_key"] for c in sandbox.ledger.all()}
    assert {t.idempotency_key for t in txns if t.status == "Success"} == held
    paid = sum(db.session.get(Invoice, i.id).balance == 0 for i in invoices)
    assert paid == run.success_count == len(held)


def test_the_allocation_audit_names_the_payment_a_run_booked(make_invoice, run_for):
    make_invoice()
    run = run_for()
    assert run.success_count == 1
    payment = db.session.scalar(select(Payment))
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    allocated = next(e for e in events if e.action == "invoice.allocated")
    created = next(e for e in events if e.action == "payment.created")
    assert allocated.after["payment_id"] == payment.id
    assert created.entity_id == payment.id and created.at <= allocated.at


class _Plugin:
    """A gateway whose first send times out and whose repeat is refused with 429."""

    def __init__(self):
        self.sent = 0

    def charge(self, request):
        self.sent += 1
        if self.sent == 1:
            return GatewayResult(GatewayStatus.INDETERMINATE, None, "no answer", reason="no answer",
                                 timed_out=True)  # fmt: skip
        return GatewayResult(GatewayStatus.SYSTEM_FAIL, "rate_limit", "Too many", slow_down=True)


def test_a_repeat_refused_with_429_after_a_time_out_is_never_sent_again():
    plugin = _Plugin()
    call = Call(1, plugin, "charge", request=None, resend_within=300.0, gateway_id=1)
    result = call.make()
    assert plugin.sent == 2
    assert result.status is GatewayStatus.INDETERMINATE and not result.slow_down
    assert "refused with 429" in result.reason
    assert replace(result) == result


def test_an_audit_event_keeps_the_id_of_a_record_it_names(make_invoice):
    from portal.audit import service as audit

    invoice = make_invoice()
    written = Payment(account_id=invoice.account_id, amount=1, currency="USD", method="Wire",
                      received_on=date.today())  # fmt: skip
    db.session.add(written)
    db.session.flush()
    later = Payment(account_id=invoice.account_id, amount=2, currency="USD", method="Wire",
                    received_on=date.today())  # fmt: skip
    db.session.add(later)
    first = audit.record("invoice.allocated", invoice, after={"payment_id": written})
    second = audit.record("invoice.allocated", invoice, after={"payment_id": later})
    db.session.commit()
    assert first.after == {"payment_id": written.id}
    assert second.after == {"payment_id": later.id} and later.id is not None


def test_a_webhook_success_for_a_charge_the_run_never_sent_is_news_the_lifecycle_acts_on():
    from portal.runs.charging import NEVER_SENT as RUN_NEVER_SENT
    from portal.transactions.models import Finalization

    # Every finalization is a member of the one enum, which says which of them hold no money:
    # the gateway's later success contradicts them, and the lifecycle books or holds it.
    assert Finalization(RUN_NEVER_SENT).said_nothing_is_held
    assert all(len(f.value) <= PaymentTransaction.finalization.type.length for f in Finalization)
