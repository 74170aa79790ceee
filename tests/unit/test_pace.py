"""A gateway's pace: its rate limit and its 429 pauses, on a clock the test moves."""

import pytest

from portal.runs.pace import FIRST_PAUSE, LONGEST_PAUSE, Pace


def sent_within(pace: Pace, seconds: float) -> int:
    """Requests sent as soon as the pace lets each go, within `seconds`."""
    sent, now = 0, 0.0
    while now < seconds:
        wait = pace.wait(now)
        if wait == 0:
            pace.take(now)
            sent += 1
        else:
            now += wait
    return sent


def test_no_limit_never_waits():
    pace = Pace()
    for _ in range(1000):
        assert pace.wait(0.0) == 0
        pace.take(0.0)


@pytest.mark.parametrize("rate", [0.5, 1, 5, 40])
def test_a_rate_limit_lets_that_many_through_a_second(rate):
    # Evenly spaced, no burst: within 10 s, 10 s of requests (and the one at the start).
    assert rate * 10 <= sent_within(Pace(per_second=rate), 10.0) <= rate * 10 + 1


def test_the_wait_says_when_the_next_may_leave():
    pace = Pace(per_second=2)
    assert pace.wait(0.0) == 0
    pace.take(0.0)
    assert pace.wait(0.0) == pytest.approx(0.5)
    assert pace.wait(0.5) == 0


def test_a_429_pauses_for_its_retry_after():
    pace = Pace()
    assert pace.slow_down(3.0, now=10.0) == 3.0
    assert pace.wait(11.0) == pytest.approx(2.0)
    assert pace.wait(13.0) == 0


def test_without_retry_after_the_pause_doubles_up_to_a_minute():
    pace, now, pauses = Pace(), 0.0, []
    for _ in range(9):
        pauses.append(pace.slow_down(None, now=now))
        now += pauses[-1]
    assert pauses[:3] == [FIRST_PAUSE, 2 * FIRST_PAUSE, 4 * FIRST_PAUSE]
    assert max(pauses) == LONGEST_PAUSE
    pace.went_through()
    assert pace.slow_down(None, now=1000.0) == FIRST_PAUSE


def test_the_calls_in_flight_when_it_paused_do_not_double_the_pause():
    pace = Pace()
    pauses = [pace.slow_down(None, now=0.1 * n) for n in range(8)]
    assert pauses == pytest.approx([FIRST_PAUSE - 0.1 * n for n in range(8)])
    assert pace.slow_down(None, now=FIRST_PAUSE + 0.1) == 2 * FIRST_PAUSE


def test_a_retry_after_past_a_minute_is_held_to_a_minute():
    assert Pace().slow_down(3600, now=0.0) == LONGEST_PAUSE


def test_no_burst_right_after_a_pause():
    pace = Pace(per_second=10)
    pace.wait(0.0)
    pace.slow_down(1.0, now=0.0)
    assert pace.wait(1.0) > 0  # the bucket was emptied by the pause
