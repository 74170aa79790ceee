"""The charge's lifecycle as a table: what each event does to a charge in each state
(portal/transactions/lifecycle.py), first as the stories a clerk would tell, then over every
combination of state, event and word, against the rules no combination may break."""

import itertools

import pytest

from portal.statuses import GatewayStatus as S
from portal.transactions.lifecycle import (
    FINALIZING,
    Action,
    ChargeState,
    Event,
    Undo,
    decide,
)
from portal.transactions.models import Finalization as F

A = Action
WORD, LATE = Event.GATEWAY_WORD, Event.LATE_ANSWER


def state(status, **kw):
    return ChargeState(status=status, **kw)


LOCKED = dict(locked=True, invoice_locked=True)

TABLE = [
    # (story, state, event, told, action)
    ("the call's own answer is applied", state(S.PENDING), Event.ANSWER, S.DECLINE, A.APPLY),
    ("the webhook's word for a charge still in flight is its answer",
     state(S.PENDING), WORD, S.SUCCESS, A.APPLY),
    ("the same word again changes nothing", state(S.SUCCESS), WORD, S.SUCCESS, A.NOTHING),
    ("success for an open charge of an invoice paid meanwhile: held twice, never booked",
     state(S.INDETERMINATE, owes_it=False, **LOCKED), WORD, S.SUCCESS, A.HOLD),
    ("success after a clerk booked less than the charge: held for a clerk",
     state(S.INDETERMINATE, finalization=F.MANUAL_PAYMENT, booked_short=True), WORD, S.SUCCESS,
     A.HOLD),
    ("the gateway's success replaces Settle's Indeterminate",
     state(S.INDETERMINATE, **LOCKED), WORD, S.SUCCESS, A.REPLACE),
    ("the gateway's decline replaces Settle's System Fail",
     state(S.SYSTEM_FAIL, **LOCKED), WORD, S.DECLINE, A.REPLACE),
    ("a review that completed replaces Requires Review",
     state(S.REQUIRES_REVIEW, **LOCKED), WORD, S.SUCCESS, A.REPLACE),
    ("success over Settle's decided decline: money may be held, the invoice locked for a clerk",
     state(S.DECLINE), WORD, S.SUCCESS, A.HOLD),
    ("a decline over Settle's success: a clerk looks", state(S.SUCCESS), WORD, S.DECLINE, A.CLERK),
    ("success after Refund & Unlock found nothing, invoice still owes it: booked",
     state(S.INDETERMINATE, finalization=F.REFUND_AND_UNLOCK), WORD, S.SUCCESS, A.BOOK),
    ("success after Refund & Unlock found nothing, invoice paid meanwhile: held twice, refund",
     state(S.INDETERMINATE, finalization=F.REFUND_AND_UNLOCK, owes_it=False), WORD, S.SUCCESS,
     A.HOLD),
    ("success after an unlock, another charge's outcome unknown: held, never booked over it",
     state(S.SYSTEM_FAIL, finalization=F.UNLOCKED_UNSENT, other_unknown=True), WORD, S.SUCCESS,
     A.HOLD),
    ("success for a charge recovery closed as never sent, still owed: booked",
     state(S.SYSTEM_FAIL, finalization=F.RECOVERED_NEVER_SENT), LATE, S.SUCCESS, A.BOOK),
    ("success for a charge a stopped run never sent, still owed: booked",
     state(S.SYSTEM_FAIL, finalization=F.RUN_NEVER_SENT), WORD, S.SUCCESS, A.BOOK),
    ("success after a clerk booked a manual payment: nothing more",
     state(S.INDETERMINATE, finalization=F.MANUAL_PAYMENT), WORD, S.SUCCESS, A.NOTHING),
    ("success for a charge recovery found given back: old news, a clerk looks",
     state(S.SYSTEM_FAIL, finalization=F.RECOVERED_REVERSED), WORD, S.SUCCESS, A.CLERK),
    ("success while its void went through or may have: a clerk looks",
     state(S.INDETERMINATE, undo=Undo.MAY_HAVE_MOVED, **LOCKED), WORD, S.SUCCESS, A.CLERK),
    ("success after a Refund & Unlock gave the money back: older news, kept",
     state(S.INDETERMINATE, finalization=F.REFUND_AND_UNLOCK, undo=Undo.MAY_HAVE_MOVED),
     WORD, S.SUCCESS, A.NOTHING),
    ("success while a Refund & Unlock is under way: held, and the Refund & Unlock stops",
     state(S.INDETERMINATE, being_finalized=True, **LOCKED), WORD, S.SUCCESS, A.HOLD),
    ("a decline while a Refund & Unlock is under way: a clerk looks",
     state(S.INDETERMINATE, being_finalized=True, **LOCKED), WORD, S.DECLINE, A.CLERK),
    ("a decline for a finalized charge is kept, nothing changes",
     state(S.INDETERMINATE, finalization=F.REFUND_AND_UNLOCK), WORD, S.DECLINE, A.NOTHING),
    ("a late decline moves no money: the record stands",
     state(S.INDETERMINATE, **LOCKED), LATE, S.DECLINE, A.NOTHING),
    ("a late success over recovery's Indeterminate replaces it",
     state(S.INDETERMINATE, **LOCKED), LATE, S.SUCCESS, A.REPLACE),
    ("a late 'may have moved' over recovery's System Fail: held for a clerk",
     state(S.SYSTEM_FAIL, **LOCKED), LATE, S.INDETERMINATE, A.HOLD),
    ("a late Indeterminate tells less than the webhook did",
     state(S.SUCCESS, webhook_told=True), LATE, S.INDETERMINATE, A.NOTHING),
    ("reconciliation finds a declined charge captured: held for a clerk, never charged again",
     state(S.DECLINE), Event.RECONCILED, S.SUCCESS, A.HOLD),
    ("reconciliation finds it again while a clerk has it: nothing more",
     state(S.DECLINE, **LOCKED), Event.RECONCILED, S.SUCCESS, A.NOTHING),
    ("reconciliation finds a charge a stopped run never sent captured, still owed: booked",
     state(S.SYSTEM_FAIL, finalization=F.RUN_NEVER_SENT), Event.RECONCILED, S.SUCCESS, A.BOOK),
    ("Refund & Unlock of a locked, open charge", state(S.INDETERMINATE, **LOCKED),
     Event.REFUND_AND_UNLOCK, None, A.FINALIZE),
    ("a manual payment of a locked, open charge", state(S.REQUIRES_REVIEW, **LOCKED),
     Event.MANUAL_PAYMENT, None, A.FINALIZE),
    ("no finalization twice", state(S.INDETERMINATE, finalization=F.MANUAL_PAYMENT, **LOCKED),
     Event.REFUND_AND_UNLOCK, None, A.REFUSE),
    ("no finalization of a charge in flight", state(S.PENDING, **LOCKED), Event.MANUAL_PAYMENT,
     None, A.REFUSE),
    ("no finalization of a charge that locked nothing", state(S.DECLINE, invoice_locked=True),
     Event.REFUND_AND_UNLOCK, None, A.REFUSE),
    ("no finalization of an invoice unlocked meanwhile", state(S.INDETERMINATE, locked=True),
     Event.UNLOCK_UNSENT, None, A.REFUSE),
    ("reconciliation finds money still held after Settle's refund of it went through: held",
     state(S.INDETERMINATE, finalization=F.REFUND_AND_UNLOCK, undo=Undo.MAY_HAVE_MOVED),
     Event.RECONCILED, S.SUCCESS, A.HOLD),
    ("a webhook older than the refund that went through changes nothing",
     state(S.INDETERMINATE, finalization=F.REFUND_AND_UNLOCK, undo=Undo.MAY_HAVE_MOVED),
     WORD, S.SUCCESS, A.NOTHING),
    ("reconciliation finds the gateway holding less than Settle booked: held for a clerk",
     state(S.SUCCESS, booked=True), Event.BOOKING_DIFFERS, None, A.HOLD),
    ("the same difference found again while a clerk has it: nothing more",
     state(S.SUCCESS, booked=True, **LOCKED), Event.BOOKING_DIFFERS, None, A.NOTHING),
    ("a difference about a charge with no gateway payment booked (paid by check): nothing",
     state(S.DECLINE, finalization=F.MANUAL_PAYMENT), Event.BOOKING_DIFFERS, None, A.NOTHING),
    ("a difference while a Refund & Unlock is under way: shown to a clerk",
     state(S.SUCCESS, booked=True, being_finalized=True), Event.BOOKING_DIFFERS, None, A.CLERK),
    ("a late success of a charge whose booking a clerk corrected: nothing new, no false lock",
     state(S.INDETERMINATE, finalization=F.BOOKING_CORRECTED, booked=True, owes_it=False),
     WORD, S.SUCCESS, A.NOTHING),
    ("a clerk corrects the booking of a held, booked charge",
     state(S.SUCCESS, booked=True, **LOCKED), Event.CORRECT_BOOKING, None, A.FINALIZE),
    ("no correction of a charge with no payment booked",
     state(S.INDETERMINATE, **LOCKED), Event.CORRECT_BOOKING, None, A.REFUSE),
    ("no second payment for a charge with a payment booked",
     state(S.SUCCESS, booked=True, **LOCKED), Event.MANUAL_PAYMENT, None, A.REFUSE),
    ("a booked charge's money may be given back: its payment is then reversed",
     state(S.SUCCESS, booked=True, **LOCKED), Event.REFUND_AND_UNLOCK, None, A.FINALIZE),
]  # fmt: skip


@pytest.mark.parametrize(("story", "charge", "event", "told", "action"), TABLE,
                         ids=[row[0] for row in TABLE])  # fmt: skip
def test_the_lifecycle_table(story, charge, event, told, action):
    assert decide(charge, event, told).action is action


def test_money_held_twice_is_named_with_its_way_out():
    held = decide(state(S.INDETERMINATE, finalization=F.REFUND_AND_UNLOCK, owes_it=False),
                  WORD, S.SUCCESS)  # fmt: skip
    assert held.refund and "held twice" in held.note and "refund this charge" in held.note


# Every combination -------------------------------------------------------------------------

STATUSES = list(S)
ANSWERED = [s for s in S if s is not S.PENDING]
FINALIZATIONS = [None, *F]
NEWS = [Event.ANSWER, Event.LATE_ANSWER, Event.GATEWAY_WORD, Event.RECONCILED]


def every_state():
    flags = [False, True]
    for status, finalization, owes, other, short, undo, busy, webhook, locked, inv, booked in (
        itertools.product(STATUSES, FINALIZATIONS, flags, flags, flags, list(Undo), flags,
                          flags, flags, flags, flags)
    ):  # fmt: skip
        yield ChargeState(
            status=status, finalization=finalization, locked=locked, invoice_locked=inv,
            owes_it=owes, other_unknown=other, booked_short=short, undo=undo,
            being_finalized=busy, webhook_told=webhook, booked=booked,
        )  # fmt: skip


STATES = list(every_state())


def test_every_state_and_event_has_a_decision():
    for charge in STATES:
        for event in NEWS:
            for told in ANSWERED:
                assert isinstance(decide(charge, event, told).action, Action)
        for event in FINALIZING:
            assert decide(charge, event).action in (A.FINALIZE, A.REFUSE)
        assert decide(charge, Event.BOOKING_DIFFERS).action in (A.HOLD, A.NOTHING, A.CLERK)


def test_news_that_money_moved_is_never_dropped_while_settle_has_not_booked_it():
    """Late or contradicting news never becomes "no change" while money may be held: a success
    for a charge Settle does not hold as Success is applied, booked, held for a clerk, or shown
    to one; it is dropped only where a clerk booked the money already."""
    for charge in STATES:
        if charge.status in (S.SUCCESS, S.PENDING):
            continue
        for event in (Event.LATE_ANSWER, Event.GATEWAY_WORD, Event.RECONCILED):
            decision = decide(charge, event, S.SUCCESS)
            if decision.action is A.NOTHING:
                in_a_clerks_hands = (
                    event is Event.RECONCILED
                    and charge.locked
                    and charge.invoice_locked
                    and charge.finalization is None
                )
                given_back = charge.undo is Undo.MAY_HAVE_MOVED and charge.finalization
                booked_in_full = (
                    charge.finalization is F.MANUAL_PAYMENT and not charge.booked_short
                ) or charge.finalization is F.BOOKING_CORRECTED
                assert booked_in_full or in_a_clerks_hands or given_back, (
                    charge, event, decision,
                )  # fmt: skip


def test_a_payment_is_booked_late_only_for_an_invoice_that_still_owes_it():
    for charge in STATES:
        for event in NEWS:
            for told in ANSWERED:
                decision = decide(charge, event, told)
                if decision.action is A.BOOK:
                    assert told is S.SUCCESS
                    assert charge.owes_it and not charge.other_unknown
                    assert charge.finalization is not None
                    assert charge.finalization.said_nothing_is_held
                    assert charge.undo is Undo.NONE and not charge.being_finalized


def test_the_gateways_word_never_replaces_a_finalized_or_decided_answer():
    for charge in STATES:
        for event in (Event.LATE_ANSWER, Event.GATEWAY_WORD, Event.RECONCILED):
            for told in ANSWERED:
                if decide(charge, event, told).action is A.REPLACE:
                    assert charge.finalization is None
                    assert told is not S.SUCCESS or charge.owes_it
                    assert charge.status in (S.INDETERMINATE, S.SYSTEM_FAIL, S.REQUIRES_REVIEW)
                    assert charge.undo is Undo.NONE and not charge.being_finalized


def test_a_finalization_goes_ahead_only_for_a_locked_open_answered_charge():
    for charge in STATES:
        for event in FINALIZING:
            if decide(charge, event).action is A.FINALIZE:
                assert charge.locked and charge.invoice_locked
                assert charge.finalization is None and charge.status is not S.PENDING


def test_a_booked_payment_is_never_booked_twice_nor_left_standing_unseen():
    """A charge with a payment of the gateway's money booked is never finalized by a second
    payment or an unlock that leaves the first as it is; a correction needs a booked payment; a
    difference about a booked charge is dropped only while a clerk has it already."""
    for charge in STATES:
        if decide(charge, Event.CORRECT_BOOKING).action is A.FINALIZE:
            assert charge.booked
        if charge.booked:
            for event in (Event.MANUAL_PAYMENT, Event.UNLOCK_UNSENT):
                assert decide(charge, event).action is A.REFUSE
            decision = decide(charge, Event.BOOKING_DIFFERS)
            if decision.action is A.NOTHING:
                assert charge.locked and charge.invoice_locked and charge.finalization is None
        else:
            assert decide(charge, Event.BOOKING_DIFFERS).action is A.NOTHING


def test_an_event_that_tells_no_status_is_refused():
    with pytest.raises(ValueError, match="needs the status"):
        decide(state(S.INDETERMINATE), WORD)
