"""A charge's one lifecycle: what each event after its call does, decided by one pure function
(`decide`, table-tested) from what Settle knows of the charge (`ChargeState`).

The events are the call's own answer, a late answer (after crash recovery closed the call), the
gateway's word by webhook or in a reconciliation's listing, and a clerk's finalization. A new
event (a dispute, a bank return) is a new row of the table, not a new writer. The decisions are
applied by `portal.transactions.effects`, the one module that writes a charge's lock, unlock,
reopen, finalization and payment."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from portal.statuses import GatewayStatus
from portal.transactions.models import Finalization

S = GatewayStatus
# Statuses Settle gave without the gateway's decided word: the gateway's word may replace them.
UNDECIDED = (S.INDETERMINATE, S.SYSTEM_FAIL, S.REQUIRES_REVIEW)
# The gateway decided that no money moved.
DECIDED_FAILURES = (S.DECLINE, S.VALIDATION_ERROR, S.PERMANENT_FAIL)
# What a late answer may say that must not be lost: money moved, or may have.
MONEY_MAY_HAVE_MOVED = (S.SUCCESS, S.REQUIRES_REVIEW, S.INDETERMINATE)


class Event(enum.StrEnum):
    ANSWER = "the call's answer"
    LATE_ANSWER = "a late answer"  # the call's own answer, after recovery closed the call
    GATEWAY_WORD = "the gateway's word"  # a final webhook event about the charge
    # What a reconciliation report found the gateway holding of a charge (its listing's word).
    RECONCILED = "reconciliation's finding"
    # A reconciliation found the gateway holding another amount than the payment Settle booked for
    # the charge (less, after a refund outside Settle; none; or more): the word names how much.
    BOOKING_DIFFERS = "reconciliation's finding that the booking differs"
    REFUND_AND_UNLOCK = "Refund & Unlock"
    MANUAL_PAYMENT = "a manual payment"
    UNLOCK_UNSENT = "an unlock of a charge never sent"
    CORRECT_BOOKING = "a correction of the booking"


FINALIZING = (
    Event.REFUND_AND_UNLOCK, Event.MANUAL_PAYMENT, Event.UNLOCK_UNSENT, Event.CORRECT_BOOKING,
)  # fmt: skip
INVOICE_UNLOCKED = "The invoice is not locked any more"


class Undo(enum.StrEnum):
    NONE = "none"
    # A void or refund of the charge (or a lookup that reverses it) went through, or may have:
    # its money may be back with the customer.
    MAY_HAVE_MOVED = "may have moved"


@dataclass(frozen=True)
class ChargeState:
    """What Settle knows of a charge and its invoice when an event arrives."""

    status: GatewayStatus
    finalization: Finalization | None = None
    locked: bool = False  # the charge's answer locked its invoice
    invoice_locked: bool = False  # the invoice's Corrective Action is Action Required
    owes_it: bool = True  # the invoice still owes at least the charge's amount
    # Another charge of the invoice has an outcome Settle does not know (in flight, or open).
    other_unknown: bool = False
    # A clerk's manual payment for this charge booked less than the charge's amount.
    booked_short: bool = False
    undo: Undo = Undo.NONE
    undo_said: str = "a void or refund of it went through or may have"  # which, as a clerk reads it
    being_finalized: bool = False  # a Refund & Unlock of the invoice is talking to the gateway
    webhook_told: bool = False  # the gateway's webhook gave the status it has
    # A payment of the gateway's money (method Gateway) is booked for the charge and not reversed.
    booked: bool = False


class Action(enum.StrEnum):
    APPLY = "apply"  # write the answer and what its status does
    REPLACE = "replace"  # the gateway's decided word replaces the status Settle gave without it
    BOOK = "book"  # money held for a charge finalized as holding none: book it, the invoice owes it
    HOLD = "hold"  # money may be held: keep the word, lock the invoice for a clerk
    CLERK = "clerk"  # nothing of the charge changes; a clerk looks at the word
    NOTHING = "nothing"  # the word is kept where it came; nothing changes
    FINALIZE = "finalize"  # the clerk's finalization may go ahead
    REFUSE = "refuse"  # the clerk's finalization is not (or no longer) possible


@dataclass(frozen=True)
class Decision:
    action: Action
    note: str
    # Money may be held twice for the invoice: the way out is a refund of this charge.
    refund: bool = False
    # A Refund & Unlock under way loses its claim on the invoice, and so never unlocks it.
    stops_finalizing: bool = False


def decide(state: ChargeState, event: Event, told: GatewayStatus | None = None) -> Decision:
    """What an event does to a charge in `state`; `told` is the status an answer or the
    gateway's word gives it. Pure: reads nothing, writes nothing."""
    if event in FINALIZING:
        return _finalizing(state, event)
    if event is Event.BOOKING_DIFFERS:
        return _booking_differs(state)
    if told is None or told is S.PENDING:
        raise ValueError(f"{event} needs the status it tells")
    if state.status is S.PENDING:
        return Decision(Action.APPLY, f"{event}: the charge had no answer yet")
    return _news(state, event, told)


def _finalizing(state: ChargeState, event: Event) -> Decision:
    if state.finalization is not None:
        return Decision(Action.REFUSE, f"Already done ({state.finalization})")
    if state.status is S.PENDING:
        return Decision(Action.REFUSE, "The gateway has not answered this charge yet")
    if not state.locked:
        return Decision(
            Action.REFUSE,
            f"A {state.status} transaction did not lock its invoice: nothing to finalize",
        )
    if not state.invoice_locked:
        return Decision(Action.REFUSE, INVOICE_UNLOCKED)
    if event is Event.CORRECT_BOOKING and not state.booked:
        return Decision(
            Action.REFUSE, "No payment of the gateway's money is booked for this charge: nothing"
            " to correct",
        )  # fmt: skip
    if event in (Event.MANUAL_PAYMENT, Event.UNLOCK_UNSENT) and state.booked:
        # A second payment, or an unlock that leaves the first as it is, would book money twice.
        return Decision(
            Action.REFUSE, "A payment is booked for this charge already: correct the booking to"
            " what the gateway holds, or give the money back with Refund & Unlock",
        )  # fmt: skip
    # A Refund & Unlock of a booked charge reverses its payment once the money is given back.
    return Decision(Action.FINALIZE, f"{event} of a {state.status} charge")


def _booking_differs(state: ChargeState) -> Decision:
    """The gateway holds another amount than Settle booked for the charge: a clerk corrects the
    booking, or gives the money back, before any run charges the invoice again or anyone reads it
    as paid."""
    if not state.booked:
        return Decision(Action.NOTHING, "Settle has booked no payment of the gateway's for it")
    if state.locked and state.invoice_locked and state.finalization is None:
        return Decision(Action.NOTHING, "Already open for a clerk")
    if state.being_finalized:
        return Decision(Action.CLERK, "A Refund & Unlock of this invoice is under way")
    return Decision(
        Action.HOLD,
        "The gateway holds another amount than the payment Settle booked: the invoice is locked"
        " until a clerk corrects the booking or gives the money back",
    )


def _news(state: ChargeState, event: Event, told: GatewayStatus) -> Decision:
    """An answer or the gateway's word about a charge that has an answer already."""
    was = state.status
    if told is was:
        return Decision(Action.NOTHING, f"Settle has this answer already ({was})")
    late = event is Event.LATE_ANSWER
    if late and state.webhook_told and told in (S.INDETERMINATE, S.REQUIRES_REVIEW):
        return Decision(Action.NOTHING, "It tells less than the gateway's webhook already did")
    if late and told not in MONEY_MAY_HAVE_MOVED:
        return Decision(Action.NOTHING, f"A late {told} moved no money: the record stands")
    said = f"The gateway says {told}, Settle holds {was}"
    if (
        event is Event.RECONCILED
        and state.locked
        and state.invoice_locked
        and not state.finalization
    ):
        # A report asked again: the charge is open and its invoice locked, in a clerk's hands.
        return Decision(Action.NOTHING, f"{said}: already open for a clerk")
    if state.being_finalized and told is S.SUCCESS:
        # The clerk's Refund & Unlock asked before this money showed: it must not unlock now.
        return Decision(
            Action.HOLD,
            f"{said}, while a Refund & Unlock of this invoice was under way: it stops before it"
            " unlocks",
            stops_finalizing=True,
        )
    if state.being_finalized:
        return Decision(
            Action.CLERK, f"{said}, while a Refund & Unlock of this invoice is under way"
        )
    if event is Event.RECONCILED and told is S.SUCCESS and state.undo is Undo.MAY_HAVE_MOVED:
        # The gateway's listing, asked after the undo, still shows the money held: the undo did
        # not go through as Settle took it, and the invoice may be charged (or paid) twice.
        return Decision(
            Action.HOLD,
            f"{said}, though {state.undo_said}: the gateway still holds the money; refund it",
            refund=True,
        )
    if state.undo is Undo.MAY_HAVE_MOVED and state.finalization is not None:
        # Finalized once its money was given back: the word is older than the undo.
        return Decision(
            Action.NOTHING,
            f"Already finalized ({state.finalization}), and {state.undo_said}: the word {told}"
            " is kept",
        )
    if state.undo is Undo.MAY_HAVE_MOVED:
        return Decision(Action.CLERK, f"{said}, but {state.undo_said}: nothing changed")
    if state.finalization is Finalization.RECOVERED_REVERSED:
        return Decision(Action.CLERK, f"{said}, but the gateway had given it back")
    if told is S.SUCCESS:
        return _money_moved(state, said)
    if was is S.SUCCESS or was in DECIDED_FAILURES:
        return Decision(Action.CLERK, said)
    if state.finalization is not None:
        return Decision(
            Action.NOTHING, f"Already finalized ({state.finalization}); the word {told} is kept"
        )
    if late:
        # Recovery closed it undecided, and the call itself says money may have moved.
        return Decision(Action.HOLD, f"A late answer after recovery closed it as {was}: {told}")
    return Decision(Action.REPLACE, f"{said}: the gateway's word replaces it")


def _money_moved(state: ChargeState, said: str) -> Decision:
    """The gateway says the charge took the customer's money: it is booked only where the invoice
    still owes it all, and otherwise held for a clerk, named as money held twice."""
    if state.finalization is Finalization.BOOKING_CORRECTED:
        # Booked, and corrected by a clerk to what the gateway holds of it: that it succeeded
        # says nothing new about what it holds now (a reconciliation compares that).
        return Decision(
            Action.NOTHING, f"{said}: a clerk corrected its booking to what the gateway holds"
        )
    if state.finalization is Finalization.MANUAL_PAYMENT:
        if not state.booked_short:
            return Decision(
                Action.NOTHING, f"{said}: a clerk booked it as a manual payment already"
            )
        return Decision(
            Action.HOLD,
            f"{said}: the gateway took the whole charge, but a clerk booked less for it",
            refund=True,
        )
    if state.finalization is None and state.status in DECIDED_FAILURES:
        return Decision(
            Action.HOLD,
            f"{said}: the money moved after all, and a run would charge the invoice again",
        )
    if state.finalization is None and state.owes_it:
        return Decision(Action.REPLACE, f"{said}: the gateway's word replaces it")
    if (
        state.finalization is not None
        and state.finalization.said_nothing_is_held
        and state.owes_it
        and not state.other_unknown
    ):
        # Finalized on the word that the gateway held nothing of it: the money came after all.
        return Decision(
            Action.BOOK,
            f"{said}, finalized as {state.finalization}: the invoice still owes it, so the"
            " payment is booked",
        )
    why = (
        "the invoice no longer owes it"
        if not state.owes_it
        else "another charge of the invoice has an outcome Settle does not know"
    )
    return Decision(
        Action.HOLD,
        f"{said}, and {why}: the customer's money may be held twice; refund this charge",
        refund=True,
    )
