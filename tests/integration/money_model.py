"""The money model (issue 26; domain.md section 9): a Hypothesis state machine whose rules are the
actors of a charge's life, played against the sandbox gateway over HTTP, and whose invariants are
checked after every step against the sandbox's own ledger, not Settle's view of itself.

Actors: the billing system (new invoices, a renumbering, a new total, through the import's and the
API's rules), payment runs, a clerk (Refund & Unlock, the guided manual payment), the gateway's
news (a signed "succeeded" delivered late, twice, for any charge it holds; its batch settling),
the janitor with autovoid, crash recovery and reconciliation.

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

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import func, select

from portal import clock, models  # noqa: F401 (every model mapped before one is built)
from portal.accounts.models import Account, PaymentMethod
from portal.audit import chain
from portal.auth.models import Role
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


class MoneyModel(RuleBasedStateMachine):
    app = None  # the Flask app, set by whoever runs the model
    sandbox = None  # the running SandboxServer
    empty_database = None  # the suite's table-emptying function
    # What the examples did, added up over a whole run of the model (benchmarks/money_model.py
    # prints it): each rule, and what came of it.
    stats: Counter = Counter()

    def __init__(self):
        super().__init__()
        type(self).empty_database(self.app)
        self.sandbox.ledger.reset()
        self.context = self.app.app_context()
        self.context.push()
        self.gateway = Gateway(name="Sandbox", plugin="sandbox", base_url=self.sandbox.url,
                               credentials=sandbox_credentials("sandbox"),
                               timeout_seconds=Decimal("0.5"))  # fmt: skip
        db.session.add(self.gateway)
        self.clerk = create_user("clerk", "a long enough password", Role.CLERK)
        self.supervisor = create_user("boss", "a long enough password", Role.SUPERVISOR)
        db.session.commit()
        self.n = 0
        self.events_sent: list[str] = []
        self.stats["examples"] += 1

    def teardown(self):
        try:
            db.session.rollback()
            chain.wait_idle()
            verdict = chain.verify()
            assert verdict.intact, verdict.problems
        finally:
            db.session.remove()
            self.context.pop()

    # The billing system ------------------------------------------------------------------

    @initialize(
        cards=st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(AMOUNTS)),
                       min_size=1, max_size=4),
    )  # fmt: skip
    def invoices_and_a_first_run(self, cards):
        """Every example starts with a few invoices charged once: the rules then have charges of
        every outcome to act on."""
        for token, amount in cards:
            self.add_invoice(token, amount)
        self.payment_run()

    @rule(token=st.sampled_from(TOKENS), amount=st.sampled_from(AMOUNTS))
    def add_invoice(self, token, amount):
        self.n += 1
        account = Account(number=f"ACC-{self.n}", name=f"Customer {self.n}",
                          external_id=f"CRM-{self.n}")  # fmt: skip
        db.session.add(account)
        db.session.flush()
        db.session.add(
            PaymentMethod(account_id=account.id, gateway_id=self.gateway.id, token=token,
                          brand="Visa", last4="4242", exp_month=12, exp_year=2030,
                          external_id=f"PM-{self.n}")
        )  # fmt: skip
        db.session.add(
            Invoice(number=f"INV-{self.n:04d}", account_id=account.id, currency="USD",
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
        for status, n in db.session.execute(
            select(PaymentTransaction.status, func.count())
            .where(PaymentTransaction.run_id == run.id)
            .group_by(PaymentTransaction.status)
        ):
            self.stats[f"run charged: {status}"] += n

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
        charge = one_of(charges, pick)
        try:
            outcome = finalize.refund_and_unlock(charge.id, self.clerk)
            self.stats[
                f"Refund & Unlock: {'unlocked' if outcome.unlocked else 'stays locked'}"
            ] += 1
        except DomainError:
            db.session.rollback()
            self.stats["Refund & Unlock: refused"] += 1

    @precondition(lambda self: self.n > 0)
    @rule(pick=PICK)
    def clerk_books_a_manual_payment(self, pick):
        charges = self._open_charges()
        if not charges:
            self.stats["manual payment: nothing open"] += 1
            return
        charge = one_of(charges, pick)
        try:
            if finalize.lookups.lookup_is_read_only(charge):
                finalize.check_gateway_status(charge.id, self.clerk)
            basis = manual_payment.payment_basis(db.session.get(PaymentTransaction, charge.id))
            manual_payment.record_manual_payment(
                charge.id, amount=basis.amount.amount, currency=basis.amount.currency,
                method=PaymentMethodKind.GATEWAY, reference=basis.reference, received_on=None,
                actor=self.clerk,
            )  # fmt: skip
            self.stats["manual payment: booked"] += 1
        except DomainError:
            db.session.rollback()
            self.stats["manual payment: refused"] += 1

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
        notice = Notice(
            event_id=event_id, event_type="charge.succeeded", operation="charge", final=True,
            result=GatewayResult(GatewayStatus.SUCCESS, "approved", "Approved",
                                 reference=charge["id"]),
            reference=charge["id"], key=charge["idempotency_key"],
            amount=_money(amount),
        )  # fmt: skip
        said = webhooks.take(self.gateway.id, notice, {})
        self.stats[f"gateway's word: {said.split(': ', 1)[-1]}"] += 1
        db.session.rollback()

    @rule()
    def gateway_settles_its_batch(self):
        self.sandbox.ledger.settle()

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
        undone_by = dict(
            db.session.execute(
                select(PaymentTransaction.provider_reference, PaymentTransaction.invoice_id).where(
                    PaymentTransaction.operation.in_([Operation.VOID, Operation.REFUND]),
                    PaymentTransaction.status == GatewayStatus.SUCCESS.value,
                )
            ).all()
        )
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
