"""A Refund & Unlock that waited for the gateway: its void or refund was answered "asked" (Adyen's
modifications are asynchronous; a Stripe refund may be pending), and the gateway's webhook
confirms it later. Then it finishes as the clerk's own Refund & Unlock would have."""

from __future__ import annotations

from portal.errors import NotAllowed
from portal.extensions import db
from portal.statuses import ACTION_REQUIRED
from portal.transactions import lookups
from portal.transactions.effects import open_charges
from portal.transactions.finalize import RefundOutcome, _claim, _release, _unlock
from portal.transactions.models import Operation, PaymentTransaction


def finish_confirmed_undo(charge_id: int, note: str) -> RefundOutcome | None:
    """Finish once the latest word of every open charge of the invoice says its money is given
    back: for the clerk who asked, and like their Refund & Unlock, after looking for money Settle
    never sent. None when it is not (yet) complete."""
    charge = db.session.get(PaymentTransaction, charge_id, populate_existing=True)
    if charge is None or charge.operation != Operation.CHARGE or charge.finalized_at is not None:
        return None
    if charge.invoice.corrective_action != ACTION_REQUIRED:
        return None
    undone = open_charges(charge.invoice_id)
    words = [lookups.latest_word(c) for c in undone]
    if not undone or any(w is None or not lookups.given_back(w) for w in words):
        return None
    if not any(lookups.is_undo(w) for w in words):
        return None  # nothing was undone: no Refund & Unlock was asked
    asker = max(words, key=lambda w: w.id).created_by
    try:
        _claim(charge, asker)
    except NotAllowed:
        return None  # a clerk is finalizing the invoice right now: theirs is the last word
    try:
        outcome = RefundOutcome(unlocked=False, actions=[note])
        actions, problems = lookups.find_unexplained(undone, asker)
        outcome.actions += actions
        outcome.problems += problems
        if outcome.problems:
            _release(charge.invoice_id, asker)
            return outcome
        _unlock(charge.id, asker, outcome, {c.id for c in undone}, note)
        return outcome
    except NotAllowed:
        _release(charge.invoice_id, asker)  # another confirmation unlocked it a moment ago
        return None
    except BaseException:
        _release(charge.invoice_id, asker)
        raise
