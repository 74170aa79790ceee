"""The comparison at the heart of a reconciliation report, without a database or a gateway."""

from datetime import datetime, timedelta

from portal.gateways.base import Finding, Settlement
from portal.money import Money
from portal.reconciliation.compare import Kind, SettleCharge, View, compare
from portal.reconciliation.service import settle_view

SINCE = datetime(2026, 12, 1, 0, 0)
UNTIL = datetime(2026, 12, 2, 0, 0)
NOON = datetime(2026, 12, 1, 12, 0)


def charge(n, view, amount="10.00", reference="auto", status="Success"):
    return SettleCharge(
        transaction_id=n, gateway_id=1, invoice_id=n, order_id=f"INV-{n}", key=f"key-{n}",
        reference=f"ch_{n}" if reference == "auto" else reference,
        money=Money.parse(amount, "USD"), status=status, view=view,
    )  # fmt: skip


def found(n, state, amount="10.00", currency="USD", at=NOON, key=None, reference="auto"):
    return Finding(
        state=state, amount=Money.parse(amount, currency), at=at,
        reference=f"ch_{n}" if reference == "auto" else reference, key=key, order_id=f"INV-{n}",
    )  # fmt: skip


def kinds(lines):
    return [(line.kind, line.charge.transaction_id if line.charge else None) for line in lines]


def test_every_kind_of_line():
    charges = [
        charge(1, View.HELD),
        charge(2, View.NONE, status="Decline"),  # declined, and the gateway lists it so
        charge(3, View.NONE, status="Decline"),  # declined, the gateway lists nothing
        charge(4, View.HELD),  # the gateway lost it
        charge(5, View.HELD),  # the gateway holds less
        charge(6, View.NONE, status="Decline"),  # ...but the gateway captured it
        charge(7, View.UNKNOWN, reference=None, status="Indeterminate"),  # found by its key
        charge(8, View.IN_FLIGHT, status="Pending"),  # not compared
    ]
    findings = [
        found(1, Settlement.SETTLED),
        found(2, Settlement.DECLINED),
        found(5, Settlement.SETTLED, amount="9.00"),
        found(6, Settlement.UNSETTLED),
        found(7, Settlement.UNSETTLED, key="key-7", reference="ch_x7"),
        found(9, Settlement.SETTLED),  # a charge Settle never sent
    ]
    lines = compare(charges, findings, SINCE, UNTIL)
    assert kinds(lines) == [
        (Kind.MATCHED, 1), (Kind.MATCHED, 2), (Kind.MATCHED, 3), (Kind.SETTLE_ONLY, 4),
        (Kind.AMOUNT, 5), (Kind.STATUS, 6), (Kind.STATUS, 7), (Kind.GATEWAY_ONLY, None),
    ]  # fmt: skip
    by_id = {ln.charge.transaction_id: ln for ln in lines if ln.charge}
    assert "Settle says Decline, but the gateway captured the money" in by_id[6].advice
    assert "manual payment pre-filled" in by_id[7].advice
    assert "charged 10.00 USD, the gateway holds 9.00 USD" in by_id[5].advice
    assert lines[-1].finding.reference == "ch_9"


def test_a_currency_that_differs_is_an_amount_line():
    (line,) = compare([charge(1, View.HELD)], [found(1, Settlement.SETTLED, currency="EUR")],
                      SINCE, UNTIL)  # fmt: skip
    assert line.kind is Kind.AMOUNT


def test_refunds_and_voids_match_either_way_and_a_refund_the_gateway_does_not_show_is_flagged():
    lines = compare(
        [charge(1, View.RETURNED), charge(2, View.NONE), charge(3, View.RETURNED),
         charge(4, View.HELD)],
        [found(1, Settlement.VOIDED), found(2, Settlement.REFUNDED), found(3, Settlement.SETTLED),
         found(4, Settlement.REFUNDED)],
        SINCE, UNTIL,
    )  # fmt: skip
    assert [ln.kind for ln in lines] == [Kind.MATCHED, Kind.MATCHED, Kind.STATUS, Kind.STATUS]
    assert "refund that the gateway does not show" in lines[2].advice
    assert "Correct the booking" in lines[3].advice


def test_a_leftover_outside_the_period_or_known_elsewhere_is_not_gateway_only():
    findings = [
        found(1, Settlement.SETTLED, at=SINCE - timedelta(minutes=1)),  # the day before
        found(2, Settlement.SETTLED, at=UNTIL),  # the next day
        found(3, Settlement.SETTLED),  # another run's charge
        found(4, Settlement.DECLINED),  # someone else's declined attempt
    ]
    lines = compare([], findings, SINCE, UNTIL, known_elsewhere=lambda left: {0})
    assert [(ln.kind, ln.finding.reference) for ln in lines] == [(Kind.GATEWAY_ONLY, "ch_4")]
    assert "holds no money" in lines[0].advice


def test_one_finding_pairs_with_one_charge():
    lines = compare([charge(1, View.HELD), charge(1, View.HELD)], [found(1, Settlement.SETTLED)],
                    SINCE, UNTIL)  # fmt: skip
    assert [ln.kind for ln in lines] == [Kind.MATCHED, Kind.SETTLE_ONLY]


def test_what_settle_says_of_a_charge():
    assert settle_view("Success", True, None, False) is View.HELD
    assert settle_view("Success", True, None, True) is View.RETURNED
    assert settle_view("Decline", True, None, False) is View.NONE
    assert settle_view("Pending", None, None, False) is View.IN_FLIGHT
    assert settle_view("Indeterminate", True, None, False) is View.UNKNOWN
    assert settle_view("Indeterminate", True, "Manual payment", False) is View.HELD
    assert settle_view("Indeterminate", True, "Refund & Unlock", False) is View.NONE
    assert settle_view("System Fail", False, None, False) is View.NONE
    assert settle_view("Requires Review", True, None, False) is View.UNKNOWN


def test_a_provider_without_keys_pairs_a_charge_that_got_no_reference_by_invoice_and_amount():
    lost_answer = charge(1, View.UNKNOWN, reference=None, status="Indeterminate")
    answered = charge(2, View.HELD, reference="t2")
    findings = [
        # Invoice INV-2's own charge, listed first, is kept for the charge that names it...
        Finding(Settlement.SETTLED, Money.parse("10.00", "USD"), "t2", NOON, order_id="INV-1"),
        Finding(Settlement.UNSETTLED, Money.parse("10.00", "USD"), "t1", NOON, order_id="INV-1"),
        # ...and a declined attempt listed at 0.00 is no amount mismatch.
        Finding(Settlement.DECLINED, Money.parse("0.00", "USD"), "t3", NOON, order_id="INV-3"),
    ]
    declined = charge(3, View.NONE, reference="t3", status="Decline")
    lines = compare([lost_answer, answered, declined], findings, SINCE, UNTIL)
    assert [(ln.kind, ln.finding.reference) for ln in lines] == [
        (Kind.STATUS, "t1"), (Kind.MATCHED, "t2"), (Kind.MATCHED, "t3")]  # fmt: skip


def test_a_charge_partly_refunded_at_the_gateway_is_a_difference_not_a_match():
    partly = Finding(
        state=Settlement.SETTLED, amount=Money.parse("10.00", "USD"), at=NOON, reference="ch_1",
        order_id="INV-1", refunded=Money.parse("4.00", "USD"),
    )  # fmt: skip
    (line,) = compare([charge(1, View.HELD)], [partly], SINCE, UNTIL)
    assert line.kind is Kind.AMOUNT
    assert "Partly refunded at the gateway, 4.00 USD of 10.00 USD" in line.advice
    assert "it holds 6.00 USD" in line.advice
    # Refunded in full it is the gateway's "given back", and nothing partly.
    whole = Finding(
        state=Settlement.REFUNDED, amount=Money.parse("10.00", "USD"), at=NOON, reference="ch_1",
        refunded=Money.parse("10.00", "USD"),
    )  # fmt: skip
    assert not whole.partly_refunded and whole.held is None
