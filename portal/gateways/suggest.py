"""A suggested codes.yaml entry for a code no mapping knows: the status guessed from the
provider's own words and the HTTP status, always marked as a guess for a person to check."""

from __future__ import annotations

import json
import re

from portal.statuses import POLICY, GatewayStatus

S = GatewayStatus
# The first family whose words appear in the provider's message decides (the order matters:
# "invalid card number" is a dead card before it is a validation error). Section 0 of the
# reference notes gives the families.
WORDS: tuple[tuple[GatewayStatus, tuple[str, ...]], ...] = (
    (
        S.REQUIRES_REVIEW,
        (
            "review",
            "referral",
            "refer to",
            "call ",
            "call_",
            "authenticat",
            "3d secure",
            "3ds",
            "pending",
            "partial",
        ),
    ),
    (
        S.PERMANENT_FAIL,
        (
            "stolen",
            "lost",
            "pick up",
            "pickup",
            "closed",
            "fraud",
            "invalid card",
            "invalid number",
            "incorrect number",
            "no such account",
            "revoked",
            "restricted",
            "not supported",
            "do not try again",
        ),
    ),
    (S.VALIDATION_ERROR, ("cvv", "cvc", "cvv2", "avs", "address", "zip", "postal", "expir")),
    (
        S.DECLINE,
        (
            "insufficient",
            "declin",
            "do not honor",
            "do_not_honor",
            "limit",
            "try again",
            "unavailable",
            "issuer",
        ),
    ),
    (
        S.INDETERMINATE,
        ("timeout", "timed out", "unknown state", "duplicate", "server error", "internal error"),
    ),
    (
        S.SYSTEM_FAIL,
        (
            "api key",
            "credential",
            "permission",
            "merchant",
            "configur",
            "authenticate the",
            "unauthori",
            "forbidden",
            "invalid request",
            "missing",
        ),
    ),
)


def guess_status(message: str | None, http_status: int | None) -> GatewayStatus | None:
    """The provider's words first; then the HTTP status (5xx: the money may have moved; other
    4xx: refused before acting). None: nothing to go by."""
    words = (message or "").lower()
    for status, clues in WORDS:
        if any(clue in words for clue in clues):
            return status
    if http_status is not None and http_status >= 500:
        return S.INDETERMINATE
    if http_status is not None and 400 <= http_status < 500 and http_status != 402:
        return S.SYSTEM_FAIL
    return None


def suggested_entry(code: str, message: str | None, http_status: int | None,
                    default: GatewayStatus) -> tuple[GatewayStatus, str]:  # fmt: skip
    """The guessed status, and the lines to paste under `codes:` in the provider's codes.yaml."""
    status = guess_status(message, http_status) or default
    why = f"HTTP {http_status}, " if http_status else ""
    description = re.sub(r"\s+", " ", message or "").strip() or "(the provider gave no words)"
    lines = [
        f"  {json.dumps(code)}:",
        f"    # GUESSED by Settle from the provider's words ({why}{json.dumps(description)});",
        "    # check the provider's documentation and cite it here before you keep this entry.",
        f"    description: {json.dumps(description)}",
        f"    status: {status.value}",
        f"    guidance: {json.dumps(POLICY[status].guidance)}",
    ]
    return status, "\n".join(lines)
