"""The seven gateway statuses, and the one policy table that says what each does."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class GatewayStatus(enum.StrEnum):
    SUCCESS = "Success"
    DECLINE = "Decline"
    VALIDATION_ERROR = "Validation Error"
    PERMANENT_FAIL = "Permanent Fail"
    REQUIRES_REVIEW = "Requires Review"
    INDETERMINATE = "Indeterminate"
    SYSTEM_FAIL = "System Fail"
    # Recorded, not yet answered. A finished transaction never keeps it.
    PENDING = "Pending"

    @classmethod
    def answered(cls) -> list[GatewayStatus]:
        return [s for s in cls if s is not cls.PENDING]


class MethodState(enum.StrEnum):
    ACTIVE = "Active"
    NEEDS_UPDATE = "Needs Update"
    INACTIVE = "Inactive"


class RunCounter(enum.StrEnum):
    SUCCESS = "success_count"
    DECLINE = "decline_count"
    FAILURE = "failure_count"
    INDETERMINATE = "indeterminate_count"
    REVIEW = "review_count"


ACTION_REQUIRED = "Action Required"


@dataclass(frozen=True)
class StatusPolicy:
    status: GatewayStatus
    meaning: str
    action: str
    creates_payment: bool
    locks_invoice: bool
    method_state: MethodState
    counter: RunCounter
    guidance: str


_S = GatewayStatus
# Settle's defaults (domain.md section 2); the wording of meaning and action is the seed's.
POLICY: dict[GatewayStatus, StatusPolicy] = {
    p.status: p
    for p in [
        StatusPolicy(
            _S.SUCCESS, "The gateway call succeeded.",
            "Create a payment and allocate it to the invoice.",
            True, False, MethodState.ACTIVE, RunCounter.SUCCESS,
            "Nothing to do: the payment is recorded and allocated.",
        ),
        StatusPolicy(
            _S.DECLINE, "Failed, but can work if tried again (soft decline).",
            "Update the run's decline count; the invoice stays eligible for the retry schedule.",
            False, False, MethodState.ACTIVE, RunCounter.DECLINE,
            "Wait for the next run, or ask the customer for another payment method.",
        ),
        StatusPolicy(
            _S.VALIDATION_ERROR, "Customer payment data is wrong (address, CVV).",
            "Mark the payment method Needs Update; runs skip it until it is updated.",
            False, False, MethodState.NEEDS_UPDATE, RunCounter.FAILURE,
            "Ask the customer to correct the card details.",
        ),
        StatusPolicy(
            _S.PERMANENT_FAIL, "Will never work; don't use this payment method again.",
            "Mark the payment method Inactive; runs skip it until another method exists.",
            False, False, MethodState.INACTIVE, RunCounter.FAILURE,
            "Ask the customer for a new payment method.",
        ),
        StatusPolicy(
            _S.REQUIRES_REVIEW, "The customer's bank needs more information before completing.",
            "Lock the invoice (Action Required): it may still complete; never charge twice.",
            False, True, MethodState.ACTIVE, RunCounter.REVIEW,
            "Check the gateway status; finalize with a manual payment if it settled.",
        ),
        StatusPolicy(
            _S.INDETERMINATE, "The gateway did not answer; the money may have moved.",
            "Lock the invoice from further runs; allow autovoid or a manual payment.",
            False, True, MethodState.ACTIVE, RunCounter.INDETERMINATE,
            "Check the gateway status: refund and unlock if unsettled, manual payment if settled.",
        ),
        StatusPolicy(
            _S.SYSTEM_FAIL, "Settle ended the call before an answer (credentials, access).",
            "Lock the invoice; allow autovoid or a manual payment.",
            False, True, MethodState.ACTIVE, RunCounter.FAILURE,
            "A supervisor checks the gateway's settings (Gateways, Test connection); then a clerk"
            " checks the gateway status and attempts refund and unlock.",
        ),
    ]
}  # fmt: skip


# A System Fail whose request Settle knows never reached the gateway (connection refused, a
# missing credential): nothing can have moved, so nothing needs asking or undoing there.
NOT_SENT_GUIDANCE = (
    "The request never reached the gateway, so no money moved: a clerk may unlock the invoice"
    " without asking the gateway. If the gateway is misconfigured or down, a supervisor fixes"
    " it first (Gateways, Test connection), or the next run fails the same way."
)


def policy_for(status: GatewayStatus, *, strict: bool = False) -> StatusPolicy:
    """The status's policy; in strict mode (Salesforce Billing's way) every failure locks."""
    if status is GatewayStatus.PENDING:
        raise ValueError("a Pending transaction has no action yet")
    policy = POLICY[status]
    if strict and status is not GatewayStatus.SUCCESS and not policy.locks_invoice:
        return replace(
            policy,
            locks_invoice=True,
            action=policy.action + " Strict mode: also lock the invoice (Action Required).",
        )
    return policy
