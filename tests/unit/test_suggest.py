"""A suggested codes.yaml entry for an unmapped code: a guess from the provider's words, marked."""

import pytest
import yaml

from portal.gateways.suggest import guess_status, suggested_entry
from portal.statuses import POLICY
from portal.statuses import GatewayStatus as S


@pytest.mark.parametrize(
    ("words", "http", "guess"),
    [
        ("Insufficient funds in account", 200, S.DECLINE),
        ("CVV2 mismatch", 200, S.VALIDATION_ERROR),
        ("Card reported stolen", 402, S.PERMANENT_FAIL),
        ("Invalid card number", 200, S.PERMANENT_FAIL),
        ("Transaction held for review", 200, S.REQUIRES_REVIEW),
        ("Merchant account not configured for this currency", 400, S.SYSTEM_FAIL),
        ("Something odd", 503, S.INDETERMINATE),
        ("Something odd", 404, S.SYSTEM_FAIL),
        ("Something odd", 200, None),
        (None, None, None),
    ],
)
def test_the_status_is_guessed_from_the_providers_words_then_the_http_status(words, http, guess):
    assert guess_status(words, http) is guess


def test_the_suggested_entry_is_valid_yaml_marked_as_a_guess_and_falls_back_to_the_default():
    status, text = suggested_entry('X"1', "Ode to\n joy", None, S.SYSTEM_FAIL)
    assert status is S.SYSTEM_FAIL and "GUESSED" in text
    entry = yaml.safe_load("codes:\n" + text)["codes"]['X"1']
    # The guidance is the policy table's for the guessed status: one place for each rule.
    assert entry == {"description": "Ode to joy", "status": "System Fail",
                     "guidance": POLICY[S.SYSTEM_FAIL].guidance}  # fmt: skip
