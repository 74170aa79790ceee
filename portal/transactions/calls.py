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

from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload

from portal import clock
from portal.extensions import db
from portal.gateways import registry
from portal.gateways.base import GatewayRequest, GatewayResult, Settlement
from portal.gateways.service import plugin_for
from portal.invoices import service as invoices
from portal.money import Money
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
    gateway_id: int | None = None

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
        if again.slow_down:
            # The repeat was refused (429), so what the first send did stays unknown: never
            # queued to be sent yet again, perhaps past the provider's duplicate window.
            note = "sent once more with the same key, which the gateway refused with 429"
            return replace(result, reason=f"{result.reason}; {note}")
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
    fields = dict(operation=operation, invoice=invoice, gateway=gateway, amount=amount,
                  currency=currency, run=run, method=method, parent=parent, reference=reference,
                  actor=actor)  # fmt: skip
    return record_many([fields])[0]


def record_many(items: list[dict]) -> list[Call]:
    """Step 1 for a window of calls: their Pending transactions in one INSERT (SQLAlchemy Core,
    no unit of work: a run records thousands), each described by the fields `record` takes. The
    caller commits them before making any call."""
    now = clock.now()
    rows = []
    for f in items:
        key, parent = new_idempotency_key(), f.get("parent")
        order_id, order_reference = _identity(
            f["operation"], key, f["invoice"], f["gateway"], parent
        )
        rows.append(
            {
                "operation": f["operation"].value,
                "invoice_id": f["invoice"].id,
                "run_id": getattr(f.get("run"), "id", None),
                "gateway_id": f["gateway"].id,
                "payment_method_id": getattr(f.get("method"), "id", None),
                "parent_id": getattr(f.get("parent"), "id", None),
                "provider_reference": f.get("reference"),
                "amount": f["amount"],
                "currency": f["currency"],
                "idempotency_key": key,
                "order_id": order_id,
                "order_reference": order_reference,
                "status": GatewayStatus.PENDING.value,
                "requested_at": now,
                "created_by_id": getattr(f.get("actor"), "id", None),
            }
        )
    ids = db.session.scalars(
        insert(PaymentTransaction).returning(PaymentTransaction.id, sort_by_parameter_order=True),
        rows,
    ).all()
    plugins: dict[int, object] = {}
    recorded = []
    for fields, row, txn_id in zip(items, rows, ids, strict=True):
        gateway = fields["gateway"]
        if gateway.id not in plugins:
            plugins[gateway.id] = plugin_for(gateway)
        plugin = plugins[gateway.id]
        parent = fields.get("parent")
        request = build_request(
            row["operation"], row["idempotency_key"], row["order_id"],
            Money(row["amount"], row["currency"]),
            fields.get("method") or (parent.payment_method if parent else None),
            row["provider_reference"], parent, row["order_reference"],
        )  # fmt: skip
        recorded.append(
            Call(
                txn_id,
                plugin,
                row["operation"],
                request,
                resend_within(gateway, plugin),
                gateway.id,
            )  # fmt: skip
        )
    return recorded


def _identity(operation: Operation, key: str, invoice, gateway, parent) -> tuple[str, str | None]:
    """The order id and per-charge reference a call is sent with, fixed when it is recorded: a
    charge's are its invoice's number now and its plugin's reference from its own key; a
    follow-up (lookup, void, refund) of a charge asks about what that charge was sent with,
    whatever the invoice is called today; a lookup of the whole invoice, by its number now."""
    if parent is not None:
        return parent.order_id or invoice.number, parent.order_reference
    if operation == Operation.CHARGE:
        return invoice.number, registry.plugin_class(gateway.plugin).order_reference(key)
    return invoice.number, None


def request_for(txn: PaymentTransaction) -> GatewayRequest:
    """The request a recorded transaction describes."""
    parent = txn.parent
    # A refund may need the charge's stored payment method (Authorize.Net refunds by profile).
    method = txn.payment_method or (parent.payment_method if parent else None)
    return build_request(txn.operation, txn.idempotency_key, txn.order_id or txn.invoice.number,
                         txn.money, method, txn.provider_reference, parent,
                         txn.order_reference)  # fmt: skip


def build_request(
    operation: str,
    key: str,
    order_id: str,
    money: Money,
    method,
    reference: str | None,
    parent,
    order_reference: str | None = None,
) -> GatewayRequest:
    return GatewayRequest(
        operation=operation,
        idempotency_key=key,
        order_id=order_id,
        order_reference=order_reference,
        amount=money if operation != Operation.LOOKUP else None,
        token=method.token if method else None,
        reference=reference or (parent.provider_reference if parent else None),
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
    return answer_many([(txn_id, result, invoice_id)], then, late=late)[0]


def answer_many(
    answers: list[tuple[int, GatewayResult, int | None]],
    then: Then | None = None,
    *,
    late: Then | None = None,
) -> list[PaymentTransaction]:
    """Step 3 for a batch of answers (transaction id, result, invoice id or None), in one
    database transaction, committed: every invoice's lock, taken at once, then each answer and
    what it does, in the order given, exactly as `answer` does for one."""
    unknown = [txn_id for txn_id, _, invoice_id in answers if invoice_id is None]
    found = dict(
        db.session.execute(
            select(PaymentTransaction.id, PaymentTransaction.invoice_id).where(
                PaymentTransaction.id.in_(unknown)
            )
        ).all()
    ) if unknown else {}  # fmt: skip
    # Held here: the session keeps only weak references, and each answer reads its invoice.
    locked = invoices.lock_invoices(
        invoice_id or found[txn_id] for txn_id, _, invoice_id in answers
    )
    txns = {
        txn.id: txn
        for txn in db.session.scalars(
            select(PaymentTransaction)
            .where(PaymentTransaction.id.in_([txn_id for txn_id, _, _ in answers]))
            .options(selectinload(PaymentTransaction.payment_method))
            .execution_options(populate_existing=True)
        )
    }
    wrote = False
    for txn_id, result, _ in answers:
        txn = txns[txn_id]
        if txn.status == GatewayStatus.PENDING:
            write_answer(txn, result)
            if then is not None:
                then(txn, result)
        elif late is not None:
            late(txn, result)
        else:
            continue  # answered meanwhile, and nothing to keep: its record stands
        wrote = True
    if wrote:
        db.session.commit()
    else:
        db.session.rollback()
    del locked
    return [txns[txn_id] for txn_id, _, _ in answers]


def make_recorded_call(
    then: Then | None = None,
    *,
    vet: Callable[[GatewayResult], GatewayResult] | None = None,
    **fields,
) -> tuple[PaymentTransaction, GatewayResult]:
    """The whole cycle for a follow-up (lookup, void, refund): recorded and committed, made, and
    answered with `then` (its audit event) in the answer's own database transaction. The answer
    is the clerk's to read even if recovery closed the call meanwhile: it is written over.
    `vet`, given, reads the answer against what Settle knows before it is written (a lookup's
    findings that belong to other charges)."""
    call = record(**fields)
    # Record before call: the one commit a service makes, because the rule needs it here.
    db.session.commit()
    result = call.make()
    if vet is not None:
        result = vet(result)
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
                "refunded": f.refunded.plain() if f.refunded else None,
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


def charge_of_unknown_outcome(invoice_id: int, besides: int | None = None):
    """A charge of the invoice (other than `besides`) whose outcome Settle does not know: not
    answered yet (Pending), or answered with a status that locked the invoice and not finalized
    since. None: every such charge's outcome is known."""
    t = PaymentTransaction
    query = select(t).where(
        t.invoice_id == invoice_id,
        t.operation == Operation.CHARGE.value,
        t.finalized_at.is_(None),
        (t.status == GatewayStatus.PENDING.value) | t.locked_invoice.is_(True),
    )
    if besides is not None:
        query = query.where(t.id != besides)
    return db.session.scalars(query.order_by(t.id).limit(1)).first()
