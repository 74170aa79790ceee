"""The money model within CI's budget (tests/integration/money_model.py says what it plays and
checks): one fixed seed that CI replays the same way every time, and a few random examples more.
benchmarks/money_model.py runs it long (--examples N)."""

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import empty_database
from tests.integration.money_model import MoneyModel

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SETTLE_MONEY_MODEL_EXAMPLES", "12"))
STEPS = int(os.environ.get("SETTLE_MONEY_MODEL_STEPS", "14"))


def play(app, sandbox, **chosen):
    MoneyModel.app, MoneyModel.sandbox = app, sandbox
    MoneyModel.empty_database = staticmethod(empty_database)
    run_state_machine_as_test(
        MoneyModel,
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            suppress_health_check=list(HealthCheck), database=None, **chosen,
        ),
    )  # fmt: skip


def test_the_money_model_holds_on_a_fixed_seed(app, sandbox):
    play(app, sandbox, derandomize=True, phases=[Phase.generate, Phase.shrink])


def test_the_money_model_holds_on_random_examples(app, sandbox):
    play(app, sandbox, phases=[Phase.generate, Phase.shrink])
