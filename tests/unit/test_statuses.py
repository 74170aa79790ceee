"""The policy table: each of the seven statuses has exactly the action domain.md section 2 gives."""

import pytest

from portal.statuses import POLICY, GatewayStatus, MethodState, RunCounter, policy_for

S = GatewayStatus


def test_the_seven_statuses_are_spelled_as_the_seed_spells_them():
    assert [s.value for s in GatewayStatus.answered()] == [
        "Success", "Decline", "Validation Error", "Permanent Fail",
        "Requires Review", "Indeterminate", "System Fail",
    ]  # fmt: skip
    assert set(POLICY) == set(GatewayStatus.answered())


@pytest.mark.parametrize(
    ("status", "creates_payment", "locks", "method_state", "counter"),
    [
        (S.SUCCESS, True, False, MethodState.ACTIVE, RunCounter.SUCCESS),
        (S.DECLINE, False, False, MethodState.ACTIVE, RunCounter.DECLINE),
        (S.VALIDATION_ERROR, False, False, MethodState.NEEDS_UPDATE, RunCounter.FAILURE),
        (S.PERMANENT_FAIL, False, False, MethodState.INACTIVE, RunCounter.FAILURE),
        (S.REQUIRES_REVIEW, False, True, MethodState.ACTIVE, RunCounter.REVIEW),
        (S.INDETERMINATE, False, True, MethodState.ACTIVE, RunCounter.INDETERMINATE),
        (S.SYSTEM_FAIL, False, True, MethodState.ACTIVE, RunCounter.FAILURE),
    ],
)
def test_each_status_has_its_action(status, creates_payment, locks, method_state, counter):
    policy = policy_for(status)
    assert policy.creates_payment is creates_payment
    assert policy.locks_invoice is locks
    assert policy.method_state is method_state
    assert policy.counter is counter
    assert policy.guidance and policy.meaning and policy.action


def test_indeterminate_does_not_count_as_a_failure():
    assert policy_for(S.INDETERMINATE).counter is not RunCounter.FAILURE


def test_pending_has_no_action():
    with pytest.raises(ValueError):
        policy_for(S.PENDING)


def test_status_names_are_read_exactly():
    assert GatewayStatus("Validation Error") is S.VALIDATION_ERROR
    with pytest.raises(ValueError):
        GatewayStatus("validation error")
