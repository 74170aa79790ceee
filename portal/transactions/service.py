"""The gateway call cycle: record before call, call with no database transaction open, answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.gateways.base import GatewayRequest, GatewayResult, Settlement
from portal.gateways.service import plugin_for
from portal.statuses import GatewayStatus
from portal.transactions.models import Operation, PaymentTransaction


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def record_call(
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
) -> PaymentTransaction:
    """A Pending transaction with its idempotency key. The caller commits it before calling."""
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
    return txn


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


@dataclass(frozen=True)
class PreparedCall:
    """Everything a call needs, read before the Pending row is committed, so that making the call
    afterwards reads nothing more from the database."""

    plugin: object
    operation: str
    request: GatewayRequest

    def make(self) -> GatewayResult:
        return getattr(self.plugin, self.operation)(self.request)


def prepare_call(txn: PaymentTransaction) -> PreparedCall:
    return PreparedCall(plugin_for(txn.gateway), txn.operation, request_for(txn))


def call_gateway(txn_id: int) -> GatewayResult:
    """Make the call a committed Pending transaction describes. No database transaction stays open."""
    prepared = prepare_call(db.session.get(PaymentTransaction, txn_id))
    # Release the connection: a gateway may take two minutes, and SQLite must not stay locked.
    db.session.commit()
    return prepared.make()


def make_recorded_call(**fields) -> tuple[PaymentTransaction, GatewayResult]:
    """A follow-up call (lookup, void, refund): recorded Pending and committed, made, and its
    answer stored in the session. The caller adds its audit event and commits."""
    txn = record_call(**fields)
    db.session.commit()
    result = call_gateway(txn.id)
    txn = db.session.get(PaymentTransaction, txn.id, populate_existing=True)
    store_answer(txn, result)
    return txn, result


def store_answer(txn: PaymentTransaction, result: GatewayResult) -> None:
    txn.status = result.status.value
    txn.provider_code = result.code
    txn.provider_message = result.message
    txn.provider_reference = result.reference or txn.provider_reference
    txn.unmapped = result.unmapped
    txn.reason = result.reason
    txn.request_sent = result.sent
    txn.raw_request = result.raw.get("request")
    txn.raw_response = result.raw.get("response")
    txn.answered_at = clock.now()
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
