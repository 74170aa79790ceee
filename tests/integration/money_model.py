"""The money model (issue 26; domain.md section 9): a Hypothesis state machine whose rules are the
actors of a charge's life, played against the sandbox gateway over HTTP, and whose invariants are
checked after every step against the sandbox's own ledger, not Settle's view of itself.

Actors: the billing system (new invoices, a renumbering, a new total, through the import's and the
API's rules), payment runs, a clerk (Refund & Unlock, the guided manual payment, and one for less
than the charge's settled amount, with its reason), two clerks finalizing one invoice at once
from two threads with their own sessions, the gateway's news (a signed "succeeded" delivered late,
twice, for any charge it holds; its batch settling), a gateway's search that does not see a
charge yet (tests/integration/search_lag.py), the janitor with autovoid, crash recovery and
reconciliation. Invoices are charged through two gateways: the Settle Sandbox, and Authorize.Net
(whose invoiceNumber holds 20 characters) with invoice numbers that share their first 20.

Invariants, for every invoice:
- the money the gateway holds for it never exceeds its total unless it is locked;
- what Settle booked for it equals what the gateway holds for it, or it is locked;
- no void or refund touched a charge of another invoice;
- it is not unlocked while one of its charges has an outcome Settle does not know;
- every charge the gateway holds under Settle's keys is known to Settle;
and at the end of each example, the audit chain verifies.

tests/integration/test_money_model.py runs it within CI's budget; benchmarks/money_model.py runs
it long. Both set MoneyModel.app and MoneyModel.sandbox before running it.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections import Counter
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from hypothesis import stateful
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition
from sqlalchemy import func, select

from portal import clock, models  # noqa: F401 (every model mapped before one is built)
from portal.accounts.models import Account, PaymentMethod
from portal.audit import chain
from portal.auth.models import Role, User
from portal.auth.service import create_user
from portal.errors import DomainError
from portal.extensions import db
from portal.gateways.base import GatewayResult
from portal.gateways.models import Gateway
from portal.gateways.webhooks import Notice
from portal.imports import service as imports
from portal.invoices.models import Invoice
from portal.payments.models import Allocation, PaymentMethodKind
from portal.reconciliation import service as reconciliation
from portal.runs.engine import execute_run
from portal.runs.service import start_run
from portal.sandbox.server import sandbox_credentials
from portal.settings import service as settings
from portal.statuses import ACTION_REQUIRED, GatewayStatus
from portal.sweeps import janitor, recovery
from portal.transactions import finalize, manual_payment
from portal.transactions.models import Operation, PaymentTransaction
from portal.webhooks import service as webhooks
from tests.integration.search_lag import SearchLag

# What each test card does at the sandbox: approve, decline, answer "timed out" while holding the
# money, hold it for review, or hang past the gateway's timeout (the money is taken meanwhile).
TOKENS = ["tok_approve", "tok_decline", "tok_timeout", "tok_review", "tok_hang"]
AMOUNTS = ["10.00", "25.50", "100.00"]
HOLDING = ("unsettled", "settled")
# Which invoice, charge or event a rule acts on: an index into what exists when it runs, drawn
# the same way whatever exists (the gateway's timing makes that differ from one replay to the
# next, and Hypothesis must be able to replay and shrink an example).
PICK = st.integers(min_value=0, max_value=2**16)


def one_of(items: list, pick: int):
    return items[pick % len(items)]


GIVEN_BACK = ("voided", "refunded")
# The gateways an invoice's payment method may be at: the Settle Sandbox, and Authorize.Net, whose
# token is "customerProfileId/paymentProfileId" (the sandbox decides by the first half) and whose
# invoices are numbered alike for their first 20 characters, all that its invoiceNumber holds.
GATEWAYS = ("sandbox", "authorize_net")
ANET_PROFILE = "900100200"
ANET_KEY = 20
ANET_REFUND_OF = re.compile(r'"refTransId"\s*:\s*"(\w+)"')
SHARED_PREFIX = "SETTLE-ACME-INVOICE-"
assert len(SHARED_PREFIX) == 20
# What a clerk's manual payment for less than the charge's settled amount leaves out: a cent, or
# half of it. It needs a written reason, which the clerk gives.
SHORT_BY = ("a cent", "half")
PARTIAL_REASON = "The customer agreed to pay the rest of this invoice later"
# What each of two clerks clicks on the same invoice at once.
PARTIAL = "partial manual payment"
CLERK_ACTS = ("Refund & Unlock", "manual payment", PARTIAL)
CENT = Decimal("0.01")


def less_than(amount: Decimal, short_by: str) -> Decimal:
    if short_by == "half":
        return (amount / 2).quantize(CENT, rounding=ROUND_DOWN)
    return amount - CENT


# Hypothesis's rule, initialize and invariant, each call of which the model keeps: an example
# whose failure does not replay the same way (two clerks' race decides otherwise the next time)
# cannot be shrunk or printed by Hypothesis, and benchmarks/money_model.py prints the shortest
# failing steps seen instead (MoneyModel.failures).
def rule(**arguments):
    return lambda function: stateful.rule(**arguments)(_kept(function))


def initialize(**arguments):
    return lambda function: stateful.initialize(**arguments)(_kept(function))


def invariant():
    return lambda function: stateful.invariant()(_kept(function, step=False))


def _kept(function, *, step: bool = True):
    @functools.wraps(function)
    def kept(self, *args, **arguments):
        outermost = self.calls == 0  # a rule may call another (the first run's add_invoice)
        if step and outermost:
            said = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
            self.steps.append(f"state.{function.__name__}({said})")
        self.calls += 1
        started = time.perf_counter()
        try:
            return function(self, *args, **arguments)
        except Exception as exc:
            if outermost:
                self.failures.append((tuple(self.steps), f"{function.__name__}: {exc!r}"))
            raise
        finally:
            self.calls -= 1
            if outermost:
                self.seconds[function.__name__] += time.perf_counter() - started

    return kept


class MoneyModel(RuleBasedStateMachine):
    app = None  # the Flask app, set by whoever runs the model
    sandbox = None  # the running SandboxServer
    empty_database = None  # the suite's table-emptying function
    # What the examples did, added up over a whole run of the model (benchmarks/money_model.py
    # prints it): each rule, and what came of it.
    stats: Counter = Counter()
    # Whether clerks book manual payments for less than the settled amount (without() turns it
    # off with the rule clerk_books_a_partial_manual_payment, in the two clerks' race too).
    partial_payments = True
    # Where the time went: seconds in each rule and invariant, over a whole run of the model.
    seconds: Counter = Counter()
    # Each failing example's steps and what failed, over a whole run of the model.
    failures: list[tuple[tuple[str, ...], str]] = []
    # The users' password hash, made once for a whole run of the model (_user).
    password_hash: str | None = None

    def __init__(self):
        super().__init__()
        type(self).empty_database(self.app)
        self.sandbox.ledger.reset()
        self.context = self.app.app_context()
        self.context.push()
        self.gateways = {
            "sandbox": Gateway(name="Sandbox", plugin="sandbox", base_url=self.sandbox.url,
                               credentials=sandbox_credentials("sandbox"),
                               timeout_seconds=Decimal("0.5")),
            "authorize_net": Gateway(name="Authorize.Net", plugin="authorize_net",
                                     base_url=self.sandbox.url_for("authorize_net"),
                                     credentials=sandbox_credentials("authorize_net"),
                                     timeout_seconds=Decimal("0.5")),
        }  # fmt: skip
        db.session.add_all(self.gateways.values())
        self.clerk = self._user("clerk", Role.CLERK)
        self.second_clerk = self._user("clerk2", Role.CLERK)
        self.supervisor = self._user("boss", Role.SUPERVISOR)
        db.session.commit()
        self.n = 0
        self.steps: list[str] = []
        self.calls = 0
        self.events_sent: list[str] = []
        self.lag = SearchLag(self.sandbox.ledger).install()
        self.stats["examples"] += 1

    def _user(self, username: str, role: Role) -> User:
        """A user as create_user makes one, the password hashed once for a whole run of the
        model: hashing is slow on purpose, and no actor logs in."""
        if MoneyModel.password_hash is None:
            user = create_user(username, "a long enough password", role)
            MoneyModel.password_hash = user.password_hash
            return user
        user = User(username=username, display_name=username.title(), role=role.value,
                    password_hash=MoneyModel.password_hash)  # fmt: skip
        db.session.add(user)
        db.session.flush()
        return user

    def teardown(self):
        try:
            self.lag.uninstall()
            db.session.rollback()
            chain.wait_idle()
            verdict = chain.verify()
            assert verdict.intact, verdict.problems
        finally:
            db.session.remove()
            self.context.pop()

    # The billing system ------------------------------------------------------------------

    @initialize(
        cards=st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(AMOUNTS),
                                 st.sampled_from(GATEWAYS)),
                       min_size=1, max_size=4),
    )  # fmt: skip
    def invoices_and_a_first_run(self, cards):
        """Every example starts with a few invoices charged once: the rules then have charges of
        every outcome to act on."""
        for token, amount, at in cards:
            self.add_invoice(token, amount, at)
        self.payment_run()

    @rule(token=st.sampled_from(TOKENS), amount=st.sampled_from(AMOUNTS),
          at=st.sampled_from(GATEWAYS))  # fmt: skip
    def add_invoice(self, token, amount, at):
        self.n += 1
        account = Account(number=f"ACC-{self.n}", name=f"Customer {self.n}",
                          external_id=f"CRM-{self.n}")  # fmt: skip
        db.session.add(account)
        db.session.flush()
        if at == "authorize_net":
            token, number = f"{token}/{ANET_PROFILE}", f"{SHARED_PREFIX}{self.n:04d}"
        else:
            number = f"INV-{self.n:04d}"
        db.session.add(
            PaymentMethod(account_id=account.id, gateway_id=self.gateways[at].id, token=token,
                          brand="Visa", last4="4242", exp_month=12, exp_year=2030,
                          external_id=f"PM-{self.n}")
        )  # fmt: skip
        db.session.add(
            Invoice(number=number, account_id=account.id, currency="USD",
                    total=Decimal(amount), balance=Decimal(amount), external_id=f"BILL-{self.n}",
                    due_date=date.today() - timedelta(days=1), posted=True)
        )  # fmt: skip
        db.session.commit()

    def _invoices(self):
        return list(db.session.scalars(select(Invoice).order_by(Invoice.id)))

    @precondition(lambda self: self.n > 0)
    @rule(pick=PICK, renumber=st.booleans(), total=st.sampled_from(AMOUNTS))
    def billing_system_changes_an_invoice(self, pick, renumber, total):
        invoice = one_of(self._invoices(), pick)
        values = {
            "record": "invoice", "external_id": invoice.external_id,
            "account_external_id": invoice.account.external_id,
            "number": f"{invoice.number}-R" if renumber else invoice.number,
            "currency": "USD", "total": total, "due_date": invoice.due_date.isoformat(),
        }  # fmt: skip
        planned = imports.plan_rows([(1, values)])
        imports.write(planned)
        db.session.commit()
        (row,) = planned.rows
        self.stats[f"billing system: {row.action}"] += 1

    # Runs, clerks, the janitor, recovery ---------------------------------------------------

    @precondition(lambda self: self.n > 0)
    @rule()
    def payment_run(self):
        run = start_run(due_on=date.today(), actor=self.supervisor)
        db.session.commit()
        execute_run(run.id)
        db.session.expire_all()
        for plugin, status, n in db.session.execute(
            select(Gateway.plugin, PaymentTransaction.status, func.count())
            .join(Gateway, Gateway.id == PaymentTransaction.gateway_id)
            .where(PaymentTransaction.run_id == run.id)
            .group_by(Gateway.plugin, PaymentTransaction.status)
        ):
            self.stats[f"run charged at {plugin}: {status}"] += n

    def _open_charges(self):
        db.session.expire_all()
        return [
            c
            for c in db.session.scalars(
                select(PaymentTransaction)
                .where(PaymentTransaction.operation == Operation.CHARGE.value)
                .order_by(PaymentTransaction.id)
            )
            if c.needs_finalization
        ]

    @precondition(lambda self: self.n > 0)
    @rule(pick=PICK)
    def clerk_refunds_and_unlocks(self, pick):
        charges = self._open_charges()
        if not charges:
            self.stats["Refund & Unlock: nothing open"] += 1
            return
        said = self._clerk_does("Refund & Unlock", one_of(charges, pick).id, self.clerk)
        self.stats[f"Refund & Unlock: {said}"] += 1

    @precondition(lambda self: self.n > 0)
    @rule(pick=PICK)
    def clerk_books_a_manual_payment(self, pick):
        charges = self._open_charges()
        if not charges:
            self.stats["manual payment: nothing open"] += 1
            return
        said = self._clerk_does("manual payment", one_of(charges, pick).id, self.clerk)
        self.stats[f"manual payment: {said}"] += 1

    @precondition(lambda self: self.n > 0)
    @rule(pick=PICK, short_by=st.sampled_from(SHORT_BY))
    def clerk_books_a_partial_manual_payment(self, pick, short_by):
        """The guided manual payment for less than the charge's settled amount (the gateway's
        word, else Settle's record of the charge), with the written reason it asks for."""
        charges = self._open_charges()
        if not charges:
            self.stats["partial manual payment: nothing open"] += 1
            return
        charge_id = one_of(charges, pick).id
        said = self._clerk_does(PARTIAL, charge_id, self.clerk, short_by)
        self.stats[f"partial manual payment ({short_by} short): {said}"] += 1

    @precondition(lambda self: self.n > 0)
    @rule(pick=PICK, first=st.sampled_from(CLERK_ACTS), second=st.sampled_from(CLERK_ACTS),
          short_by=st.sampled_from(SHORT_BY))  # fmt: skip
    def two_clerks_finalize_at_once(self, pick, first, second, short_by):
        """Two clerks click on the same invoice's charge at the same moment, each in a thread of
        their own with an app context and a database session of their own (one of the invoice's
        open charges for both). On SQLite their writes take turns; on PostgreSQL they race."""
        charges = self._open_charges()
        if not charges:
            self.stats["two clerks: nothing open"] += 1
            return
        charge_id = one_of(charges, pick).id
        if not self.partial_payments:  # left out: each clerk books the full amount instead
            first, second = ("manual payment" if a == PARTIAL else a for a in (first, second))
        clerks = [(self.clerk.id, first), (self.second_clerk.id, second)]
        db.session.rollback()  # the model's own session holds nothing while they click
        together = threading.Barrier(len(clerks))
        said: list = [None] * len(clerks)

        def click(i: int, user_id: int, act: str) -> None:
            with self.app.app_context():
                try:
                    user = db.session.get(User, user_id)
                    together.wait(timeout=30)
                    said[i] = self._clerk_does(act, charge_id, user, short_by)
                except BaseException as exc:  # raised again below, in the model's thread
                    said[i] = exc
                finally:
                    db.session.remove()

        threads = [
            threading.Thread(target=click, args=(i, user_id, act), name=f"clerk-{i + 1}")
            for i, (user_id, act) in enumerate(clerks)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(t.is_alive() for t in threads), "a clerk's click never came back"
        for outcome in said:
            if isinstance(outcome, BaseException):
                raise outcome
        db.session.expire_all()
        self.stats[f"two clerks: {first} ({said[0]}) and {second} ({said[1]})"] += 1

    def _clerk_does(self, act: str, charge_id: int, clerk, short_by: str = "a cent") -> str:
        """One clerk's finalization of a charge, in the session of the thread it runs in: what
        came of it, in words."""
        if act == "Refund & Unlock":
            try:
                outcome = finalize.refund_and_unlock(charge_id, clerk)
                return "unlocked" if outcome.unlocked else "stays locked"
            except DomainError:
                db.session.rollback()
                return "refused"
        try:
            charge = db.session.get(PaymentTransaction, charge_id)
            if finalize.lookups.lookup_is_read_only(charge):
                finalize.check_gateway_status(charge_id, clerk)
            basis = manual_payment.payment_basis(db.session.get(PaymentTransaction, charge_id))
            amount, reason = basis.amount.amount, None
            if act == PARTIAL:
                amount, reason = less_than(amount, short_by), PARTIAL_REASON
                if amount <= 0:
                    return "nothing to pay"
            manual_payment.record_manual_payment(
                charge_id, amount=amount, currency=basis.amount.currency,
                method=PaymentMethodKind.GATEWAY, reference=basis.reference, received_on=None,
                actor=clerk, difference_reason=reason,
            )  # fmt: skip
            return "booked"
        except DomainError:
            db.session.rollback()
            return "refused"

    @precondition(lambda self: self.n > 0)
    @rule(autovoid=st.booleans())
    def janitor(self, autovoid):
        settings.put(janitor.AUTOVOID, autovoid, None)
        db.session.commit()
        report = janitor.run_janitor(clock.now() + timedelta(hours=2))
        self.stats["janitor: looked up"] += len(report.looked_up)
        db.session.rollback()

    @rule()
    def crash_recovery(self):
        recovery.recover(clock.now() + timedelta(minutes=10))
        self.stats["crash recovery"] += 1
        db.session.rollback()

    @precondition(lambda self: self.n > 0)
    @rule()
    def reconciliation(self):
        report = reconciliation.reconcile(self.supervisor, day=date.today())
        db.session.commit()
        self.stats[f"reconciliation: {report.state}"] += 1

    # The gateway's news --------------------------------------------------------------------

    @precondition(lambda self: self.n > 0)
    @rule(pick=PICK, again=st.booleans())
    def gateway_tells_a_charge_succeeded(self, pick, again):
        """A signed "succeeded" for a charge the gateway holds, delivered late (after whatever
        happened since), or a repeat of an event delivered before."""
        held = [c for c in self.sandbox.ledger.all() if c["state"] in HOLDING]
        if again and self.events_sent:
            event_id = one_of(self.events_sent, pick)
            charge = next((c for c in held if f"evt_{c['id']}" == event_id), None)
            if charge is None:
                return
        elif held:
            charge = one_of(held, pick)
            event_id = f"evt_{charge['id']}"
            self.events_sent.append(event_id)
        else:
            return
        amount = Decimal(charge["amount"])
        at = self._gateway_of(charge)
        # Authorize.Net's event names the transaction by its transId alone: it keeps no key.
        notice = Notice(
            event_id=event_id, event_type="charge.succeeded", operation="charge", final=True,
            result=GatewayResult(GatewayStatus.SUCCESS, "approved", "Approved",
                                 reference=charge["id"]),
            reference=charge["id"],
            key=None if at == "authorize_net" else charge["idempotency_key"],
            amount=_money(amount),
        )  # fmt: skip
        said = webhooks.take(self.gateways[at].id, notice, {})
        self.stats[f"gateway's word: {said.split(': ', 1)[-1]}"] += 1
        db.session.rollback()

    def _gateway_of(self, charge: dict) -> str:
        """Which emulation of the sandbox holds a charge of its ledger."""
        anet = self.sandbox.ledger.charge("authorize_net", charge["id"]) is not None
        return "authorize_net" if anet else "sandbox"

    @rule()
    def gateway_settles_its_batch(self):
        self.sandbox.ledger.settle()

    @precondition(lambda self: self.n > 0)
    @rule(pick=PICK, from_now_on=st.booleans())
    def gateway_search_lags(self, pick, from_now_on):
        """The gateway's search does not see a charge yet: one that holds money and that no
        search has returned (a search index is late, never forgetful), or every charge it makes
        from now on, until it catches up."""
        if from_now_on:
            self.lag.fall_behind()
            self.stats["search lags: behind from now on"] += 1
            return
        unseen = [c["id"] for c in self.lag.unseen() if c["state"] in HOLDING]
        if not unseen:
            self.stats["search lags: every charge holding money seen already"] += 1
            return
        self.lag.hide(one_of(unseen, pick))
        self.stats["search lags: a charge hidden"] += 1

    @rule(pick=PICK, everything=st.booleans())
    def gateway_search_catches_up(self, pick, everything):
        """What the search left out becomes visible: one charge, or every one (and it is not
        behind any more)."""
        waiting = self.lag.waiting()
        if everything or not waiting:
            self.lag.catch_up()
            self.stats[f"search catches up: {'everything' if waiting else 'nothing hidden'}"] += 1
            return
        self.lag.catch_up(one_of(waiting, pick))
        self.stats["search catches up: one charge"] += 1

    # Invariants, against the sandbox's own ledger ------------------------------------------

    def _ledger_by_invoice(self):
        db.session.rollback()
        db.session.expire_all()
        keys = dict(
            db.session.execute(
                select(PaymentTransaction.idempotency_key, PaymentTransaction.invoice_id).where(
                    PaymentTransaction.operation == Operation.CHARGE.value
                )
            ).all()
        )
        # Authorize.Net keeps the first 20 characters of the key (refId holds 20): as unique as
        # the key, for 32 random hex digits.
        keys |= {key[:ANET_KEY]: invoice_id for key, invoice_id in keys.items()}
        held: dict[int, Decimal] = {}
        for charge in self.sandbox.ledger.all():
            invoice_id = keys.get(charge["idempotency_key"])
            assert invoice_id is not None or charge["state"] not in HOLDING, (
                f"the gateway holds {charge} under a key Settle does not know"
            )
            if charge["state"] in HOLDING:
                held[invoice_id] = held.get(invoice_id, Decimal(0)) + Decimal(charge["amount"])
        return held, keys

    @invariant()
    def the_gateway_holds_what_settle_booked_or_the_invoice_is_locked(self):
        if self.n == 0:
            return
        held, _ = self._ledger_by_invoice()
        booked = dict(
            db.session.execute(
                select(Allocation.invoice_id, func.sum(Allocation.amount))
                .where(Allocation.unallocated_at.is_(None))
                .group_by(Allocation.invoice_id)
            ).all()
        )
        for invoice in self._invoices():
            locked = invoice.corrective_action == ACTION_REQUIRED
            at_gateway = held.get(invoice.id, Decimal(0))
            in_settle = Decimal(booked.get(invoice.id) or 0)
            assert locked or at_gateway <= invoice.total, (
                f"{invoice.number}: the gateway holds {at_gateway} of a {invoice.total} invoice"
                " and it is not locked"
            )
            assert locked or at_gateway == in_settle, (
                f"{invoice.number}: the gateway holds {at_gateway}, Settle booked {in_settle},"
                " and it is not locked"
            )

    @invariant()
    def no_void_or_refund_touched_another_invoices_charge(self):
        if self.n == 0:
            return
        _, keys = self._ledger_by_invoice()
        undone_by = {}
        for reference, request, invoice_id in db.session.execute(
            select(
                PaymentTransaction.provider_reference,
                PaymentTransaction.raw_request,
                PaymentTransaction.invoice_id,
            ).where(
                PaymentTransaction.operation.in_([Operation.VOID, Operation.REFUND]),
                PaymentTransaction.status == GatewayStatus.SUCCESS.value,
            )
        ):
            undone_by[reference] = invoice_id
            # Authorize.Net answers a refund with a transaction of its own: the charge it gave
            # back is the one its request named.
            named = ANET_REFUND_OF.search(str((request or {}).get("body") or ""))
            if named:
                undone_by[named.group(1)] = invoice_id
        for charge in self.sandbox.ledger.all():
            if charge["state"] in GIVEN_BACK and charge["id"] in undone_by:
                assert undone_by[charge["id"]] == keys.get(charge["idempotency_key"]), (
                    f"{charge['id']} of invoice #{keys.get(charge['idempotency_key'])} was given"
                    f" back by a call for invoice #{undone_by[charge['id']]}"
                )

    @invariant()
    def no_invoice_is_unlocked_while_a_charge_outcome_is_unknown(self):
        if self.n == 0:
            return
        for invoice in self._invoices():
            if invoice.corrective_action == ACTION_REQUIRED:
                continue
            unknown = db.session.scalar(
                select(func.count()).where(
                    PaymentTransaction.invoice_id == invoice.id,
                    PaymentTransaction.operation == Operation.CHARGE.value,
                    PaymentTransaction.finalized_at.is_(None),
                    (PaymentTransaction.status == GatewayStatus.PENDING.value)
                    | PaymentTransaction.locked_invoice.is_(True),
                )
            )
            assert unknown == 0, f"{invoice.number} is unlocked with {unknown} open charge(s)"


def _money(amount: Decimal):
    from portal.money import Money

    return Money(amount, "USD")


def without(*rules: str) -> type[MoneyModel]:
    """The model with some of its rules left out (an actor whose finding is still open, so that a
    long run looks for the next one): a subclass in which each is no rule."""
    # (Hypothesis marks each rule's function with this attribute.)
    unknown = [
        r for r in rules if not hasattr(getattr(MoneyModel, r, None), "hypothesis_stateful_rule")
    ]
    assert not unknown, f"the money model has no rule {unknown}"
    left_out: dict = dict.fromkeys(rules)
    if "clerk_books_a_partial_manual_payment" in rules:
        left_out["partial_payments"] = False  # in the two clerks' race too
    if "gateway_search_lags" in rules:
        left_out["gateway_search_catches_up"] = None  # nothing to catch up on
    return type(MoneyModel.__name__, (MoneyModel,), left_out)
