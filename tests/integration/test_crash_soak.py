"""The crash soak in small (issue 14): 20 SIGKILLs of a running payment run at random moments,
a recovery after each, then no double charge, no lost transaction and no ledger mismatch
against the sandbox's own ledger. `benchmarks/crash_soak.py --kills 200` is the long version."""

import os

import pytest

from benchmarks.crash_soak import soak

pytestmark = pytest.mark.integration


@pytest.mark.skipif(
    bool(os.environ.get("SETTLE_TEST_DATABASE_URL")),
    reason="the soak runs its own embedded Settle (SQLite): once, in the SQLite pass",
)
def test_twenty_kills_leave_no_double_charge_no_lost_transaction_no_mismatch():
    result = soak(kills=20, minutes=8, seed=14)
    assert result.kills == 20, result
    assert result.details == [], result.details
    assert result.clean
    assert result.charges > 40, "the kills must come while the runs charge"
