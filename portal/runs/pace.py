"""A gateway's pace during a run: its rate limit (requests per second) and its "slow down".

Besides its calls in flight, a gateway may allow only so many requests a second (a supervisor
sets it on the gateway), and it may answer HTTP 429, Too Many Requests: it did nothing and asks
to be called again later, often saying when (`Retry-After`). A run then pauses that gateway's
calls and sends the same call again, with the same idempotency key, instead of failing the
invoice. Plain Python, timed by the caller's monotonic clock, so that it is tested without HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

# Without Retry-After, the pause doubles from 1 s with each 429 in a row, up to a minute.
FIRST_PAUSE = 1.0
LONGEST_PAUSE = 60.0
# A call the gateway refused this many times (minutes of pauses) is answered with its 429.
MOST_SLOW_DOWNS = 8


@dataclass
class Pace:
    per_second: float | None = None  # None: no rate limit of its own
    paused_until: float = 0.0
    slow_downs: int = 0  # 429s in a row
    _tokens: float = 0.0
    _filled_at: float | None = None

    def wait(self, now: float) -> float:
        """Seconds until the next request may leave (0: now)."""
        pause = max(0.0, self.paused_until - now)
        if self.per_second is None:
            return pause
        self._fill(now)
        short = 1.0 - self._tokens
        return max(pause, short / self.per_second if short > 1e-9 else 0.0)

    def take(self, now: float) -> None:
        """A request leaves (the caller asked `wait` first)."""
        if self.per_second is not None:
            self._fill(now)
            self._tokens -= 1.0

    def slow_down(self, retry_after: float | None, now: float) -> float:
        """The gateway answered 429: pause all its calls; returns the pause in seconds. The
        answers to calls sent before the pause began do not lengthen it, but for a Retry-After
        that asks for longer."""
        asked = min(LONGEST_PAUSE, retry_after) if retry_after else None
        if now >= self.paused_until:
            self.slow_downs += 1
            backoff = min(LONGEST_PAUSE, FIRST_PAUSE * 2 ** (self.slow_downs - 1))
            self.paused_until = now + (asked or backoff)
        elif asked:
            self.paused_until = max(self.paused_until, now + asked)
        if self.per_second is not None:  # no burst right after the pause: the bucket starts empty
            self._tokens, self._filled_at = min(self._tokens, 0.0), self.paused_until
        return self.paused_until - now

    def went_through(self) -> None:
        self.slow_downs = 0

    def _fill(self, now: float) -> None:
        # No burst: one request every 1/rate seconds, so that no second ever holds more.
        burst = 1.0
        if self._filled_at is None:
            self._tokens, self._filled_at = burst, now
            return
        if now > self._filled_at:
            self._tokens = min(burst, self._tokens + (now - self._filled_at) * self.per_second)
            self._filled_at = now
