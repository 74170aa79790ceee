"""The one recorded-call cycle, for every operation (charge, refund, void, lookup):

1. `record`: the Pending transaction with its idempotency key, and the call it describes, read
   then; the caller commits it before the call is made (a crash can never lose a call);
2. `Call.make`: the call, with no database transaction open (a gateway may take two minutes);
3. `answer`: under the invoice's lock, the answer is written by `write_answer`, the one function
   that writes a transaction's status, then the caller's `then` applies what the status does (a
   charge's policy from the table, a follow-up's audit), and all of it commits at once.

Runs, clerks' follow-ups, crash recovery, the janitor and the gateways' webhooks all answer through
`answer`, so that no writer can bypass the status's action.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.gateways.base import GatewayRequest, GatewayResult, Settlement
from portal.gateways.service import plugin_for
from portal.invoices import service as invoices
from portal.statuses import GatewayStatus
from portal.transactions.models import Operation, PaymentTransaction

# What an answer does once written: given the transaction (its status now set) and the result.
Then = Callable[[PaymentTransaction, GatewayResult], None]


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Call:
    """A recorded call, with everything it needs read before its Pending row was committed, so
    that making it reads nothing more from the database."""

    txn_id: int
    plugin: object
    operation: str
    request: GatewayRequest
    # Seconds within which the provider answers a repeated key with its first answer, where the
    # plugin declares that and the gateway's supervisor chose to resend (else None: never).
    resend_within: float | None = None

    def make(self) -> GatewayResult:
        send = getattr(self.plugin, self.operation)
        started = time.monotonic()
        result = send(self.request)
        if not result.timed_out or self.resend_within is None:
            return result
        if time.monotonic() - started >= self.resend_within:
            return replace(result, reason=f"{result.reason}; not sent again: past the provider's"
                           f" duplicate window of {self.resend_within:g} s")  # fmt: skip
        # The same key: the provider answers it once, whichever copy reached it first.
        again = send(self.request)
        note = "sent once more with the same key after a time-out"
        return replace(
            again, reason=f"{again.reason}; {note}" if again.reason else note.capitalize()
        )


def resend_within(gateway, plugin) -> float | None:
    """The retry-safety declaration, read once: the plugin's mapping must allow a repeated key
    and the gateway's supervisor must have chosen it."""
    retry = plugin.mapping.retry
    if gateway.resend_after_timeout and retry.resend_after_timeout:
        return float(retry.duplicate_window_seconds)
    return None


def record(
    *,
    operation: Operation,
    invoice,
    gateway,
    amount: Decimal,
    currency: str,
    run=None,
    method=None,
    parent: PaymentTransaction | None = None,
    reference: str | None = None,
    actor=None,
) -> Call:
    """Step 1: a Pending transaction with its idempotency key. The caller commits it before
    making the call."""
    txn = PaymentTransaction(
        operation=operation.value,
        invoice_id=invoice.id,
        run_id=getattr(run, "id", None),
        gateway_id=gateway.id,
        payment_method_id=getattr(method, "id", None),
        parent_id=getattr(parent, "id", None),
        provider_reference=reference,
        amount=amount,
        currency=currency,
        idempotency_key=new_idempotency_key(),
        requested_at=clock.now(),
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(txn)
    db.session.flush()
    plugin = plugin_for(txn.gateway)
    return Call(txn.id, plugin, txn.operation, request_for(txn), resend_within(txn.gateway, plugin))


def request_for(txn: PaymentTransaction) -> GatewayRequest:
    parent = txn.parent
    # A refund may need the charge's stored payment method (Authorize.Net refunds by profile).
    method = txn.payment_method or (parent.payment_method if parent else None)
    return GatewayRequest(
        operation=txn.operation,
        idempotency_key=txn.idempotency_key,
        order_id=txn.invoice.number,
        amount=txn.money if txn.operation != Operation.LOOKUP else None,
        token=method.token if method else None,
        reference=txn.provider_reference or (parent.provider_reference if parent else None),
        original_key=parent.idempotency_key if parent else None,
        original_at=parent.requested_at if parent else None,
    )


def answer(
    txn_id: int,
    result: GatewayResult,
    then: Then | None = None,
    *,
    late: Then | None = None,
    invoice_id: int | None = None,
) -> PaymentTransaction:
    """Step 3, in one database transaction, committed: the answer and what it does.

    When the transaction is no longer Pending (crash recovery closed it meanwhile, believing the
    call dead), its record stands, and `late`, if given, decides what of the answer to keep.
    """
    if invoice_id is None:
        invoice_id = db.session.scalar(
            select(PaymentTransaction.invoice_id).where(PaymentTransaction.id == txn_id)
        )
    invoices.lock_invoice(invoice_id)
    txn = db.session.get(PaymentTransaction, txn_id, populate_existing=True)
    if txn.status != GatewayStatus.PENDING:
        if late is None:
            db.session.rollback()
            return txn
        late(txn, result)
        db.session.commit()
        return txn
    write_answer(txn, result)
    if then is not None:
        then(txn, result)
    db.session.commit()
    return txn


def make_recorded_call(
    then: Then | None = None, **fields
) -> tuple[PaymentTransaction, GatewayResult]:
    """The whole cycle for a follow-up (lookup, void, refund): recorded and committed, made, and
    answered with `then` (its audit event) in the answer's own database transaction. The answer
    is the clerk's to read even if recovery closed the call meanwhile: it is written over."""
    call = record(**fields)
    # Record before call: the one commit a service makes, because the rule needs it here.
    db.session.commit()
    result = call.make()
    txn = answer(call.txn_id, result, then, late=_written_over(then))
    return txn, result


def _written_over(then: Then | None) -> Then:
    def late(txn: PaymentTransaction, result: GatewayResult) -> None:
        if adds_nothing(txn, result):
            return
        write_answer(txn, result)
        if then is not None:
            then(txn, result)

    return late


def adds_nothing(txn: PaymentTransaction, result: GatewayResult) -> bool:
    """A late call's answer that tells less than the gateway's webhook already did (no answer at
    all, or "asked, not done yet": Adyen's received, a pending refund): it changes nothing."""
    interim = (GatewayStatus.INDETERMINATE, GatewayStatus.REQUIRES_REVIEW)
    return bool(txn.webhook_event) and result.event is None and result.status in interim


def write_answer(txn: PaymentTransaction, result: GatewayResult) -> None:
    """The one place a transaction's status is written (through `answer`, with its action)."""
    txn.status = result.status.value
    txn.provider_code = result.code
    txn.provider_message = result.message
    txn.provider_reference = result.reference or txn.provider_reference
    txn.unmapped = result.unmapped
    txn.decided_by = result.rule
    txn.guidance = result.guidance
    txn.reason = result.reason
    txn.request_sent = result.sent
    txn.raw_request = result.raw.get("request")
    txn.raw_response = result.raw.get("response")
    txn.answered_at = clock.now()
    txn.webhook_event = result.event
    if txn.operation == Operation.LOOKUP and result.status is GatewayStatus.SUCCESS:
        found = result.findings[0].state if result.findings else Settlement.NOT_FOUND
        txn.gateway_state = found.value
        txn.findings = [
            {
                "state": f.state.value,
                "amount": f.amount.plain() if f.amount else None,
                "currency": f.amount.currency if f.amount else None,
                "reference": f.reference,
                "at": f.at.isoformat() if f.at else None,
                "code": f.code,
            }
            for f in result.findings
        ]


def charges_of(invoice_id: int) -> list[PaymentTransaction]:
    return list(
        db.session.scalars(
            select(PaymentTransaction)
            .where(
                PaymentTransaction.invoice_id == invoice_id,
                PaymentTransaction.operation == Operation.CHARGE.value,
            )
            .order_by(PaymentTransaction.id)
        )
    )
