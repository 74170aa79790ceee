"""Charging a chunk's invoices at the gateway's pace: windows of invoices claimed and recorded
together, their calls in flight at once, their answers written back in batches.

The guarantee is the one of a single charge (record before call): every call is committed as
Pending before it is made. What changes is how many share a database transaction:

- a window (up to 2 C invoices of a gateway, or SETTLE_CLAIM_WINDOW) is locked, checked and
  recorded in one transaction, `charging.claim_many`;
- the calls go out from the gateway's line, C at a time, at its pace (its rate limit, and its
  429 pauses), by threads that touch no database (runs/senders.py);
- the answers, each with its status's action, are written back by `effects.finish_charges` (the charge's lifecycle), one
  transaction per batch, at least every SETTLE_ANSWER_BATCH answers or SETTLE_ANSWER_FLUSH_SECONDS.

Only this thread writes the run's rows, so windows and batches never wait on each other. A crash
anywhere leaves only Pending rows, which recovery resolves as it always has. A window or a batch
that fails is done again one invoice at a time, so that one invoice's trouble stays its own.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from datetime import timedelta

from sqlalchemy import select, update

from portal import clock
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.runs import charging, eligibility
from portal.runs.models import PaymentRun, RunSkip, RunState
from portal.runs.pace import Pace
from portal.runs.senders import Paused, Senders, Sent
from portal.runs.service import (
    NOT_ATTEMPTED_CANCELLED,
    NOT_ATTEMPTED_ERROR,
    considered,
    run_filter,
    trouble,
)
from portal.transactions import effects
from portal.transactions.calls import Call

log = logging.getLogger(__name__)

# No gateway known (no payment method): the claim skips these, so they take no call in flight.
NO_GATEWAY = 0
# How often the run looks whether it was cancelled: calls claimed and not yet sent may still
# leave within about twice this after a supervisor's cancel, none after.
CHECK_EVERY = 0.2
# How many ids one query reads, well within SQLite's limit on bound parameters.
READ_SLICE = 1000
UNSENT_REASON = (
    "Request not sent: the run was cancelled (or its chunk taken over) before this call's turn;"
    " nothing moved and the invoice stays as it was"
)


class ChargeLoop:
    """One chunk's invoices: this thread claims windows and writes answers, the run's senders
    (runs/senders.py) make the calls."""

    def __init__(self, app, run_id: int, owner, ids: list[int]):
        self.run_id, self.owner = run_id, owner
        run = db.session.get(PaymentRun, run_id)
        self.payment_run, self.rf, self.limit = run, run_filter(run), run.invoice_limit
        self.per_gateway = max(1, app.config["SETTLE_GATEWAY_CONCURRENCY"])
        self.window = max(2 * self.per_gateway, app.config["SETTLE_CLAIM_WINDOW"])
        self.batch = max(1, app.config["SETTLE_ANSWER_BATCH"])
        self.flush_after = float(app.config["SETTLE_ANSWER_FLUSH_SECONDS"])
        self.attempted = 0  # calls made or claimed, for a capped run
        if owner.attempt > 1:
            # Taken over or resumed: go on after what the earlier worker charged or skipped.
            done, self.attempted = considered(run_id, ids)
            ids = [i for i in ids if i not in done]
        self.queues = _by_gateway(ids)
        paces = {
            gateway_id: Pace(float(rate) if rate else None)
            for gateway_id, rate in db.session.execute(select(Gateway.id, Gateway.rate_limit))
        }
        db.session.rollback()  # no transaction stays open while the calls are made
        self.senders = Senders(self.per_gateway, paces, f"run-{run_id}")
        self.outstanding: dict[int, int] = {}  # claimed, answer not yet back, per gateway
        self.answers: list[tuple[int, object, int]] = []
        self.answers_since = 0.0
        self.unsent: list[tuple[int, int]] = []  # recorded, then stopped before their turn
        self.skips: list[RunSkip] = []
        self.skips_since = time.monotonic()
        self.errors: list[str] = []
        self.cancelled = False
        self._checked_at = 0.0
        self._paused_note_at = 0.0

    # The loop ------------------------------------------------------------------------------

    def run(self) -> list[str]:
        """Charge every invoice (or up to the cap, or until cancelled); returns the errors.

        Whatever stops it, every answer that came back is written and every invoice it did not
        reach is listed before it returns (or raises)."""
        failed = True
        try:
            self._loop()
            failed = False
        finally:
            if failed:
                self.senders.stop()
            self.senders.close()
            try:
                self._take_answers(wait=False)
                self._flush(force=True)
                self._close(failed)
            except Exception:
                if not failed:
                    raise
                log.exception("payment run #%s: what came back could not be written", self.run_id)
                db.session.rollback()
        return self.errors

    def _loop(self) -> None:
        while True:
            if self._may_claim():
                self._fill()
            if not any(self.outstanding.values()):
                if self._may_claim() and self._waiting():
                    continue  # the whole window was skipped: claim the next
                return
            self._take_answers()
            self._flush()

    def _may_claim(self) -> bool:
        if self._stopped():
            self.senders.stop()  # what is claimed and not sent yet stays unsent
            return False
        return not (self.limit and self.attempted >= self.limit)

    def _waiting(self) -> bool:
        return any(self.queues.values())

    def _stopped(self) -> bool:
        """Cancelled, or taken over: read at most every CHECK_EVERY seconds."""
        if not self.cancelled and time.monotonic() - self._checked_at >= CHECK_EVERY:
            state = db.session.scalar(select(PaymentRun.state).where(PaymentRun.id == self.run_id))
            db.session.rollback()
            self.cancelled = state == RunState.CANCELLED
            self._checked_at = time.monotonic()
        return self.cancelled or self.owner.lost

    # Claiming a window ---------------------------------------------------------------------

    def _fill(self) -> None:
        """Claim one window: for each gateway with at most W - C calls claimed and unanswered,
        its next invoices up to W (the window: 2 C, or SETTLE_CLAIM_WINDOW), within the cap. So
        the next window waits in the gateway's line while the one before it is at the gateway,
        and its calls never wait for this thread."""
        room = (self.limit - self.attempted) if self.limit else None
        window: list[int] = []
        for gateway_id, waiting in self.queues.items():
            if not waiting:
                continue
            if gateway_id == NO_GATEWAY:
                take = len(waiting)
            else:
                outstanding = self.outstanding.get(gateway_id, 0)
                if outstanding > self.window - self.per_gateway:
                    continue
                take = self.window - outstanding
            take = min(take, len(waiting), READ_SLICE)
            if room is not None:
                take = min(take, room - len(window))
            window += [waiting.popleft() for _ in range(max(0, take))]
        if not window:
            return
        for invoice_id, outcome in self._claim(window).items():
            if outcome is None:
                continue
            if isinstance(outcome, str):
                self._skip(invoice_id, outcome)
                if outcome == charging.CANCELLED_BEFORE_ITS_TURN:
                    self.cancelled = True
            else:
                self.attempted += 1
                gateway_id = outcome.gateway_id
                self.outstanding[gateway_id] = self.outstanding.get(gateway_id, 0) + 1
                self.senders.send(gateway_id, invoice_id, outcome)

    def _claim(self, window: list[int]) -> dict[int, Call | str | None]:
        """Each invoice's call, or why it was skipped (None: neither, its charge is recorded
        and recovery finishes it)."""
        try:
            return charging.claim_many(window, self.payment_run, self.rf)
        except Exception as exc:  # one invoice's trouble must not stop the run
            db.session.rollback()
            if len(window) > 1:
                outcome: dict[int, Call | str | None] = {}
                for invoice_id in window:  # one at a time: only the troubled one is left out
                    outcome.update(self._claim([invoice_id]))
                return outcome
            log.exception("payment run #%s: invoice %s failed", self.run_id, window[0])
            self.errors.append(trouble(f"invoice id {window[0]}", exc))
            if considered(self.run_id, [window[0]])[0]:
                return {window[0]: None}  # recorded after all (its commit failed late)
            return {window[0]: NOT_ATTEMPTED_ERROR}

    # Answers -------------------------------------------------------------------------------

    def _take_answers(self, *, wait: bool = True) -> None:
        """Wait for the next answer (at most until a batch is due), then take all that came."""
        try:
            if wait:
                item = self.senders.results.get(timeout=self._until_flush())
            else:
                item = self.senders.results.get_nowait()
        except queue.Empty:
            return
        while True:
            self._take(item)
            try:
                item = self.senders.results.get_nowait()
            except queue.Empty:
                return

    def _take(self, item: Sent | Paused) -> None:
        if isinstance(item, Paused):
            self._note_pause(item.seconds)
            return
        call = item.call
        self.outstanding[call.gateway_id] -= 1
        if item.unsent:
            self.unsent.append((call.txn_id, item.invoice_id))
            return
        if item.error is not None:  # its Pending row stays: recovery asks the gateway
            log.error("payment run #%s: invoice %s failed", self.run_id, item.invoice_id,
                      exc_info=item.error)  # fmt: skip
            self.errors.append(trouble(f"invoice id {item.invoice_id}", item.error))
            return
        if not self.answers:
            self.answers_since = time.monotonic()
        self.answers.append((call.txn_id, item.result, item.invoice_id))

    def _note_pause(self, seconds: float) -> None:
        """The run's page says it waits for the gateway's rate limit, until when (at most one
        write a second)."""
        if time.monotonic() - self._paused_note_at < 1.0:
            return
        self._paused_note_at = time.monotonic()
        try:
            db.session.execute(
                update(PaymentRun)
                .where(PaymentRun.id == self.run_id)
                .values(rate_limited_until=clock.now() + timedelta(seconds=seconds))
            )
            db.session.commit()
        except Exception:  # only a note on the page: the run goes on
            log.exception("payment run #%s: the rate limit note was not written", self.run_id)
            db.session.rollback()

    def _until_flush(self) -> float:
        """How long to wait for answers: until a batch is due, and never longer than the time
        between two looks at whether the run was cancelled."""
        if not self.answers:
            return CHECK_EVERY
        return min(CHECK_EVERY, max(0.0, self.answers_since + self.flush_after - time.monotonic()))

    def _answers_due(self) -> bool:
        return bool(self.answers) and (
            len(self.answers) >= self.batch
            or time.monotonic() - self.answers_since >= self.flush_after
            or not any(self.outstanding.values())
        )

    def _flush(self, force: bool = False) -> None:
        """The answers when a batch is full, old or the last; the skips once a second."""
        if force or self._answers_due():
            answers, self.answers = self.answers, []
            self._write(answers)
        if self.unsent:
            unsent, self.unsent = self.unsent, []
            self._write(unsent, lambda batch: charging.close_unsent(batch, UNSENT_REASON))
        if self.skips and (force or time.monotonic() - self.skips_since >= 1.0):
            self._save_skips()

    def _write(self, answers: list, write=None) -> None:
        """A batch in one transaction; if it fails, one at a time, so that only the troubled
        one stays Pending (recovery finishes it) and is listed with the run's errors."""
        write = write or effects.finish_charges
        if answers:
            try:
                write(answers)
            except Exception:
                db.session.rollback()
                for answer in answers:
                    try:
                        write([answer])
                    except Exception as exc:
                        log.exception("payment run #%s: invoice %s", self.run_id, answer[-1])
                        db.session.rollback()
                        self.errors.append(trouble(f"invoice id {answer[-1]}", exc))

    # Skips and the end ---------------------------------------------------------------------

    def _skip(self, invoice_id: int, reason: str) -> None:
        if not self.skips:
            self.skips_since = time.monotonic()
        self.skips.append(RunSkip(run_id=self.run_id, invoice_id=invoice_id, reason=reason))

    def _save_skips(self) -> None:
        """Skips at most once a second: one write, not one per invoice."""
        skips, self.skips = self.skips, []
        db.session.add_all(skips)
        db.session.execute(
            update(PaymentRun)
            .where(PaymentRun.id == self.run_id)
            .values(skipped_count=PaymentRun.skipped_count + len(skips))
        )
        db.session.commit()

    def _close(self, failed: bool = False) -> None:
        left = [i for waiting in self.queues.values() for i in waiting]
        if self.owner.lost or not left:
            return
        if self.cancelled or failed:
            # Listed, so that the run's counts add up (its error says why it stopped).
            reason = NOT_ATTEMPTED_CANCELLED if self.cancelled else NOT_ATTEMPTED_ERROR
            for invoice_id in left:
                self._skip(invoice_id, reason)
            self._save_skips()
        elif self.limit:
            # The cap stopped the run early: it considered only the others.
            db.session.execute(
                update(PaymentRun)
                .where(PaymentRun.id == self.run_id)
                .values(selected_count=PaymentRun.selected_count - len(left))
            )
            db.session.commit()


def _by_gateway(ids: list[int]) -> dict[int, deque[int]]:
    """The invoices in their order, queued by the gateway their payment method charges now (the
    claim checks it again under the lock; a call whose gateway changed waits for its turn)."""
    queues: dict[int, deque[int]] = {}
    for start in range(0, len(ids), READ_SLICE):
        part = ids[start : start + READ_SLICE]
        accounts = dict(
            db.session.execute(
                select(Invoice.id, Invoice.account_id).where(Invoice.id.in_(part))
            ).all()
        )
        methods = eligibility.charging_methods(accounts.values())
        for invoice_id in part:
            method = methods.get(accounts.get(invoice_id))
            gateway_id = method.gateway_id if method else NO_GATEWAY
            queues.setdefault(gateway_id, deque()).append(invoice_id)
    return queues
