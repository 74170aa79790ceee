"""Webhooks in: verified by the provider's own scheme, each event stored once, matched to the
transaction it is about, and acted on through the same answer path as a call's answer.

What an event may do (issue 13, section 2):
- a *final* event settles a charge Settle could not decide (Pending, Indeterminate, System Fail,
  or Requires Review that has since completed), through the charge policy; the invoice unlocks only
  where the new status's policy does not lock and no other charge of it still needs a clerk;
- it completes a refund or void Settle asked for and had no final answer to;
- it never changes an answer the gateway already decided: if it disagrees, a clerk looks;
- an event for a transaction Settle never sent only lands on the list for a clerk: a webhook
  never creates money that no transaction asked for.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.audit import service as audit
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.gateways.models import Gateway
from portal.gateways.service import plugin_for
from portal.gateways.webhooks import Notice, UnreadableWebhook
from portal.statuses import GatewayStatus
from portal.transactions import calls, effects, lookups
from portal.transactions.lifecycle import UNDECIDED, Action, Event
from portal.transactions.models import Operation, PaymentTransaction
from portal.webhooks import undo
from portal.webhooks.models import Outcome, WebhookEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    status: int
    message: str


def receive(gateway_id: int, headers: dict, body: bytes) -> Reply:
    """One delivery, as the web layer received it: verified, read, and every event in it taken."""
    gateway = db.session.get(Gateway, gateway_id)
    if gateway is None:
        log.warning("webhook for gateway %s refused: no such gateway", gateway_id)
        return Reply(404, "No such gateway")
    plugin = plugin_for(gateway)
    secret = plugin.webhook_credential
    if secret is None:
        return _refused(gateway, 404, f"{plugin.display_name} sends no webhooks Settle reads")
    if not (gateway.credentials or {}).get(secret):
        return _refused(gateway, 401, f"the gateway has no {secret} set: nothing can be verified")
    if not plugin.verify_webhook(headers, body, dict(gateway.credentials)):
        return _refused(gateway, 401, "the signature does not verify")
    try:
        notices = plugin.read_webhook(body)
    except UnreadableWebhook as exc:
        return _refused(gateway, 400, f"signed, but unreadable: {exc}")
    stored = _stored_body(plugin, body)
    outcomes = [take(gateway.id, notice, stored) for notice in notices]
    return Reply(200, plugin.webhook_accepted or "; ".join(outcomes) or "no events")


def _refused(gateway: Gateway, status: int, reason: str) -> Reply:
    """Nothing changes but the gateway's count of refused deliveries (shown on its page)."""
    db.session.rollback()
    db.session.execute(
        update(Gateway)
        .where(Gateway.id == gateway.id)
        .values(
            webhooks_refused=Gateway.webhooks_refused + 1,
            webhook_refused_at=clock.now(),
            webhook_refused_reason=reason[:200],
        )
    )
    db.session.commit()
    log.warning("webhook for gateway %s refused: %s", gateway.id, reason)
    return Reply(status, f"Refused: {reason}")


def _stored_body(plugin, body: bytes) -> dict:
    text = plugin.scrub(body.decode("utf-8", "replace"))
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"items": value}


def take(gateway_id: int, notice: Notice, body: dict) -> str:
    """Store one event once and act on it; what it did, in words."""
    if _seen(gateway_id, notice.event_id):
        return f"{notice.event_id}: received before, no change"
    row = _row(gateway_id, notice, body)
    txn = match(gateway_id, notice)
    try:
        if txn is None:
            _unmatched(row, notice)
        elif not _acts_on(notice, txn):
            row.transaction_id = txn.id
            row.outcome = Outcome.NO_CHANGE.value
            row.note = (
                f"Tells progress only ({notice.event_type}): kept as what the gateway says"
                if notice.operation == txn.operation
                else f"About the {txn.operation}, as {notice.event_type}: kept as what it says"
            )
            db.session.add(row)
            db.session.commit()
        else:
            _answer(row, notice, txn)
    except IntegrityError:
        db.session.rollback()
        if not _seen(gateway_id, notice.event_id):
            raise  # not the same event delivered twice at once: a 500, and the provider retries
        return f"{notice.event_id}: received before, no change"
    return f"{notice.event_id}: {row.outcome}"


def _seen(gateway_id: int, event_id: str) -> bool:
    return db.session.scalar(
        select(
            exists().where(WebhookEvent.gateway_id == gateway_id, WebhookEvent.event_id == event_id)
        )
    )


def _row(gateway_id: int, notice: Notice, body: dict) -> WebhookEvent:
    result = notice.result
    return WebhookEvent(
        gateway_id=gateway_id,
        event_id=notice.event_id[:120],
        event_type=notice.event_type[:80],
        operation=notice.operation,
        final=notice.final,
        occurred_at=notice.occurred_at,
        reference=notice.reference,
        settle_key=(notice.key or "")[:64] or None,
        order_id=(notice.order_id or "")[:60] or None,
        amount=notice.amount.amount if notice.amount else None,
        currency=notice.amount.currency if notice.amount else None,
        # A progress event tells no outcome yet: no status is shown for it.
        told_status=result.status.value if result and notice.final else None,
        code=result.code[:40] if result and result.code else None,
        message=result.message if result else None,
        outcome=Outcome.NOT_ACTED.value,
        body=body,
    )


def match(gateway_id: int, notice: Notice) -> PaymentTransaction | None:
    """The transaction an event is about: by the provider's reference or Settle's key, on this
    gateway only; of the event's own operation where there is one (a cancel event names the
    charge's intent, and the void that cancelled it)."""
    clauses = []
    if notice.reference:
        clauses.append(PaymentTransaction.provider_reference == notice.reference)
    if notice.key:
        clauses.append(PaymentTransaction.idempotency_key == notice.key)
    if not clauses:
        return None
    rows = db.session.scalars(
        select(PaymentTransaction)
        .where(PaymentTransaction.gateway_id == gateway_id, or_(*clauses))
        .order_by(PaymentTransaction.id)
    ).all()
    # A lookup only repeats what the gateway said, unless it is the provider's undo.
    found = [t for t in rows if t.operation != Operation.LOOKUP or undo.about(notice, t)]
    same = [t for t in found if undo.about(notice, t)]
    return (same or found or [None])[-1]


def _acts_on(notice: Notice, txn: PaymentTransaction) -> bool:
    return notice.final and notice.result is not None and undo.about(notice, txn)


def _unmatched(row: WebhookEvent, notice: Notice) -> None:
    if notice.operation is None:
        row.note = f"{notice.event_type}: not about a payment Settle makes"
    else:
        row.outcome = Outcome.UNMATCHED.value
        row.note = (
            "No transaction Settle sent has this reference or key: a clerk looks; Settle books"
            " nothing for it"
        )
    db.session.add(row)
    db.session.flush()
    if row.outcome == Outcome.UNMATCHED:
        audit.record(
            "webhook.unmatched", row, after={"event": row.event_id, "type": row.event_type}
        )
    db.session.commit()


def _answer(row: WebhookEvent, notice: Notice, txn: PaymentTransaction) -> None:
    """Under the invoice's lock, through calls.answer: a Pending transaction takes the answer as
    if its call had returned it; an answered one is weighed by `_weigh`."""
    result = replace(notice.result, raw={
        "request": txn.raw_request,
        "response": {"webhook": notice.event_type, "event": notice.event_id, "body": row.body},
    })  # fmt: skip
    row.transaction_id = txn.id

    def then(answered: PaymentTransaction, result: GatewayResult) -> None:
        if answered.operation == Operation.CHARGE:
            effects.apply_policy(answered, result)
        _settled(row, answered, "it had no answer yet")

    def late(answered: PaymentTransaction, result: GatewayResult) -> None:
        _weigh(row, notice, answered, result)

    if notice.amount is not None and notice.amount != txn.money:
        db.session.add(row)
        note = f"The gateway tells {notice.amount}, Settle asked for {txn.money}: nothing changed"
        _to_a_clerk(row, txn, note)
        db.session.commit()
        return
    answered = calls.answer(txn.id, result, then, late=late, invoice_id=txn.invoice_id)
    if row.outcome == Outcome.SETTLED:
        undo.finish(answered, row.event_id)


def _settled(row: WebhookEvent, txn: PaymentTransaction, before: str) -> None:
    row.outcome = Outcome.SETTLED.value
    row.note = f"Gave transaction #{txn.id} the gateway's answer, {txn.status} ({before})"
    db.session.add(row)
    audit.record(
        "transaction.settled_by_webhook", txn,
        after={"status": txn.status, "event": row.event_id, "type": row.event_type}, note=row.note,
    )  # fmt: skip


def _weigh(row: WebhookEvent, notice: Notice, txn: PaymentTransaction, result) -> None:
    """A final event about a transaction that has an answer already."""
    db.session.add(row)
    was = txn.gateway_status
    if txn.operation == Operation.CHARGE:
        decision = effects.take_news(
            txn, replace(result, reason=_reason(txn, notice)), Event.GATEWAY_WORD
        )
        if decision.action in (Action.REPLACE, Action.BOOK):
            _settled(row, txn, f"it was {was}" if decision.action is Action.REPLACE else "booked")
        elif decision.action is Action.NOTHING:
            row.outcome = Outcome.NO_CHANGE.value
            row.note = decision.note
        else:  # CLERK or HOLD (the lifecycle locked the invoice)
            _to_a_clerk(row, txn, decision.note)
        return
    # An undo (void, refund, or a lookup that reverses): its own answer, or a clerk's look.
    if result.status is was:
        row.outcome = Outcome.NO_CHANGE.value
        row.note = f"Settle has this answer already ({was})"
        return
    said = f"The gateway says {result.status}, Settle holds {was}"
    if was is GatewayStatus.SUCCESS and lookups.is_undo(txn):
        # An undo Settle took as done did not happen: the money may still be with the merchant.
        _to_a_clerk(row, txn, said)
        effects.reopen_after_failed_undo(
            txn, replace(result, reason=_reason(txn, notice)), row.note
        )
        return
    if was not in UNDECIDED:
        return _to_a_clerk(row, txn, said)
    calls.write_answer(txn, replace(result, reason=_reason(txn, notice)))
    _settled(row, txn, f"it was {was}")


def _to_a_clerk(row: WebhookEvent, txn: PaymentTransaction, note: str) -> None:
    """The event waits for a clerk (where the lifecycle held the money, the invoice is locked so
    that no run charges it again)."""
    row.outcome = Outcome.FOR_A_CLERK.value
    row.note = f"{note}; a clerk looks"
    db.session.flush()
    audit.record("webhook.for_a_clerk", row, after={"transaction_id": txn.id}, note=row.note)


def _reason(txn: PaymentTransaction, notice: Notice) -> str:
    told = f"then the gateway's webhook event {notice.event_id} ({notice.event_type}) told it"
    return f"{txn.reason}; {told}" if txn.reason else told.capitalize()


def mark_handled(event_id: int, actor, note: str | None) -> WebhookEvent:
    row = db.session.get(WebhookEvent, event_id)
    if row is None:
        raise DomainError(f"Gateway event {event_id} does not exist")
    if row.handled_at is None:
        row.handled_at, row.handled_by_id = clock.now(), actor.id
        row.handled_note = (note or "").strip()[:500] or None
        audit.record("webhook.handled", row, actor=actor, note=row.handled_note)
        db.session.commit()
    return row


def events_of(txn: PaymentTransaction) -> list[WebhookEvent]:
    """What the gateway says about a transaction, oldest first."""
    return list(
        db.session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.transaction_id == txn.id)
            .order_by(WebhookEvent.received_at, WebhookEvent.id)
        )
    )


NEEDS_A_CLERK = (Outcome.UNMATCHED.value, Outcome.FOR_A_CLERK.value)


def counts_by_gateway() -> dict[int, tuple[int, int]]:
    """Per gateway: events received, and how many of them wait for a clerk."""
    waiting = (WebhookEvent.outcome.in_(NEEDS_A_CLERK)) & WebhookEvent.handled_at.is_(None)
    rows = db.session.execute(
        select(
            WebhookEvent.gateway_id,
            func.count(),
            func.count().filter(waiting),
        ).group_by(WebhookEvent.gateway_id)
    )
    return {gateway_id: (received, open_) for gateway_id, received, open_ in rows}
