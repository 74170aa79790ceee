"""The money model within CI's budget (tests/integration/money_model.py says what it plays and
checks): one fixed seed that CI replays the same way every time, and a few random examples more.
benchmarks/money_model.py runs it long (--examples N)."""

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import empty_database
from tests.integration.money_model import MoneyModel, without

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SETTLE_MONEY_MODEL_EXAMPLES", "12"))
STEPS = int(os.environ.get("SETTLE_MONEY_MODEL_STEPS", "14"))
# An actor left out here: the sandbox's search lagging. The sandbox is Settle's own provider,
# whose search is exact and immediate by contract (portal/sandbox/), and its plugin trusts an
# empty search as Authorize.Net's unsettled list is trusted; a provider whose search lags
# (Stripe's) has its own guard, tested in tests/integration/test_stripe_sandbox.py. Played with
# the sandbox lagging, Refund & Unlock and autovoid unlock an invoice whose charge the search did
# not show yet. SETTLE_MONEY_MODEL_LEAVE_OUT="" plays every actor.
NOT_THIS_PROVIDERS = "gateway_search_lags"
LEAVE_OUT = os.environ.get("SETTLE_MONEY_MODEL_LEAVE_OUT", NOT_THIS_PROVIDERS).split()


def play(app, sandbox, **chosen):
    MoneyModel.app, MoneyModel.sandbox = app, sandbox
    MoneyModel.empty_database = staticmethod(empty_database)
    run_state_machine_as_test(
        without(*LEAVE_OUT) if LEAVE_OUT else MoneyModel,
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            suppress_health_check=list(HealthCheck), database=None, **chosen,
        ),
    )  # fmt: skip


def test_the_money_model_holds_on_a_fixed_seed(app, sandbox):
    play(app, sandbox, derandomize=True, phases=[Phase.generate, Phase.shrink])


def test_the_money_model_holds_on_random_examples(app, sandbox):
    play(app, sandbox, phases=[Phase.generate, Phase.shrink])
