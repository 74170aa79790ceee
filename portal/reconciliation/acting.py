"""What reconciliation does about a line it found: the gateway's word in its listing is an event
of the charge's lifecycle like any other, decided by portal.transactions.lifecycle and applied by
portal.transactions.effects, each under the invoice's row lock and read again there."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.invoices import service as invoices
from portal.money import Money
from portal.reconciliation.compare import Kind, Line, SettleCharge, View
from portal.reconciliation.models import ReconciliationReport
from portal.statuses import GatewayStatus
from portal.transactions import effects
from portal.transactions.lifecycle import Action, Event
from portal.transactions.models import PaymentTransaction

# The gateways are asked this much more on both sides of a period (service.py asks them), so
# that a charge made just inside it is found where the gateway stamped it a little off.
ASK_MARGIN = timedelta(minutes=10)


def act_on(report: ReconciliationReport, line: Line, plugin) -> Line:
    """The gateway's word in its listing is an event of the charge's lifecycle like any other.
    Money captured for a charge Settle holds as having moved none (declined, or closed as never
    sent) is booked where the invoice still owes it, else the invoice is locked for a clerk with
    the difference named, so that no run charges the customer again. A payment Settle booked for
    money the gateway does not hold (not listed, given back, partly refunded, another amount)
    locks the invoice until a clerk corrects the booking or gives the money back, so that nobody
    reads it as paid. The line says what was done."""
    charge, finding = line.charge, line.finding
    if charge is None or line.kind is Kind.MATCHED:
        return line
    if charge.booked is not None:
        # A clerk corrected its booking: what it books now is what is compared.
        return _booking_differs(report.id, line)
    if line.kind is Kind.STATUS and charge.view is View.RETURNED and finding.state.holds_money:
        if not _listing_sees_undo(report, charge, plugin):
            return replace(line, advice=line.advice + (
                f" {plugin.display_name} lists a refund in the period it settles in, and Settle's"
                " was later: check the gateway status before acting."
            ))  # fmt: skip
        return _captured(report.id, line)
    if line.kind is Kind.STATUS and charge.view is View.NONE and finding.state.holds_money:
        return _captured(report.id, line)
    if charge.view is View.HELD and line.kind in (Kind.STATUS, Kind.SETTLE_ONLY, Kind.AMOUNT):
        return _booking_differs(report.id, line)
    return line


def _listing_sees_undo(report: ReconciliationReport, charge: SettleCharge, plugin) -> bool:
    """Whether the listing can show Settle's void or refund of the charge: always where it tells
    a charge's state now; else only for an undo answered within the period it asked about."""
    if plugin.listing_tells_later_refunds:
        return True
    txn = db.session.get(PaymentTransaction, charge.transaction_id)
    undo = effects.undo_that_may_have_moved(txn)
    at = undo.answered_at if undo is not None else None
    return at is not None and report.since - ASK_MARGIN <= at < report.until + ASK_MARGIN


def _captured(report_id: int, line: Line) -> Line:
    charge, finding = line.charge, line.finding
    invoices.lock_invoice(charge.invoice_id)
    txn = db.session.get(PaymentTransaction, charge.transaction_id, populate_existing=True)
    said = (
        f"Reconciliation report #{report_id}: the gateway holds it {finding.state}"
        f" ({finding.amount or 'amount not told'}, {finding.reference})"
    )
    told = GatewayResult(
        GatewayStatus.SUCCESS, None, said, reference=finding.reference, reason=said
    )
    decision = effects.take_news(txn, told, Event.RECONCILED)
    done = {
        Action.BOOK: " Settle booked the payment: the invoice still owed it.",
        Action.HOLD: " Settle locked the invoice (Action Required) so that no run charges it"
        " again: open the transaction to book the money as a payment or refund it.",
        Action.NOTHING: " The transaction is open for a clerk already.",
    }.get(decision.action, "")
    return replace(line, advice=line.advice + done)


def _booking_differs(report_id: int, line: Line) -> Line:
    charge, finding = line.charge, line.finding
    held = _held(finding, charge)
    if finding is None:
        holds = "the gateway does not list it"
    elif not finding.state.holds_money:
        holds = f"the gateway holds none of it ({finding.state})"
    elif finding.partly_refunded:
        holds = (
            f"the gateway holds {finding.held} (refunded {finding.refunded} of {finding.amount})"
        )
    else:
        holds = f"the gateway holds {finding.amount or 'an amount it does not tell'}"
    invoices.lock_invoice(charge.invoice_id)
    txn = db.session.get(PaymentTransaction, charge.transaction_id, populate_existing=True)
    payment = effects.booked_payment(txn)
    if payment is not None:
        db.session.refresh(payment)
    books = payment.net if payment is not None else None
    if books is not None and held is not None and books == held:
        # Read again under the invoice's lock: a clerk corrected it while the gateway was asked.
        return replace(line, advice=line.advice + (
            f" Settle's booking was corrected meanwhile to {books}, what the gateway holds:"
            " nothing more to do."
        ))  # fmt: skip
    said = (
        f"Reconciliation report #{report_id}: Settle books {books or charge.booked or charge.money},"
        f" {holds}"
    )
    decision = effects.take_booking_difference(txn, said)
    done = {
        Action.HOLD: " Settle locked the invoice (Action Required) meanwhile, so that no run or"
        " reader takes it as paid.",
    }.get(decision.action, "")
    if decision.action is Action.NOTHING and txn.needs_finalization:
        done = " The transaction is open for a clerk already."
    return replace(line, advice=line.advice + done)


def _held(finding, charge: SettleCharge) -> Money | None:
    """What the gateway holds of the charge by its listing: nothing where it lists none (or does
    not list it); None where it does not tell how much."""
    if finding is None or not finding.state.holds_money:
        return Money(Decimal(0), charge.money.currency)
    return finding.held
