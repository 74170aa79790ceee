"""The sandbox's webhooks: each provider emulation's events sent to the endpoints registered with
it, as the providers send theirs: after a delay, signed when they leave, retried with back-off
while the endpoint does not answer 2xx, and (by the server's settings) sometimes twice and
sometimes out of order, so that Settle is tested against what real deliveries do."""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

log = logging.getLogger(__name__)

# (headers, body) of one delivery, built when it leaves (a signature carries the time it is sent);
# None when the event no longer happens (a sale voided before it would have settled).
Build = Callable[[], tuple[dict[str, str], bytes] | None]
RETRIES = 6  # then the event is given up, as a provider eventually does


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    url: str = field(compare=False)
    event_id: str = field(compare=False)
    build: Build = field(compare=False)
    attempt: int = field(default=0, compare=False)


class WebhookSender:
    def __init__(self, delay: float = 1.0, twice: float = 0.0, disorder: float = 0.0, seed=None):
        self.delay = delay
        self.twice = twice  # the chance that an event is delivered a second time
        self.disorder = disorder  # the chance that an event is held back past the next one
        self._random = random.Random(seed)
        self._endpoints: dict[str, list[str]] = {}
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        # What was delivered: (event id, url, HTTP status or the error), for tests and the log.
        self.delivered: list[tuple[str, str, int | str]] = []

    def register(self, provider: str, url: str) -> None:
        with self._cond:
            urls = self._endpoints.setdefault(provider, [])
            if url not in urls:
                urls.append(url)

    def forget(self) -> None:
        """No endpoints and nothing queued (between tests)."""
        with self._cond:
            self._endpoints.clear()
            self._queue.clear()
            self.delivered.clear()

    def has_endpoints(self, provider: str) -> bool:
        return bool(self._endpoints.get(provider))

    def send(
        self, provider: str, event_id: str, build: Build, *, after: float = 0.0,
        followed: bool = False,
    ) -> None:  # fmt: skip
        """Queue an event for every endpoint registered for the provider. `after` holds it back
        further (an event that follows another); an event `followed` by another may, by the
        disorder setting, arrive after it."""
        now = time.monotonic()
        with self._cond:
            for url in self._endpoints.get(provider, ()):
                due = now + self.delay + after
                if followed and self._random.random() < self.disorder:
                    due += self.delay + 0.5  # overtaken by the event sent after it
                self._push(_Delivery(due, next(self._seq), url, event_id, build))
                if self._random.random() < self.twice:
                    self._push(_Delivery(due + 0.2, next(self._seq), url, event_id, build))
            self._cond.notify()
        self._start()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _push(self, delivery: _Delivery) -> None:
        heapq.heappush(self._queue, delivery)

    def _start(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-webhooks", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._queue or self._queue[0].due > time.monotonic()
                ):
                    wait = self._queue[0].due - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                delivery = heapq.heappop(self._queue)
            self._deliver(delivery)

    def _deliver(self, delivery: _Delivery) -> None:
        try:
            built = delivery.build()
            if built is None:
                return
            headers, body = built
            answer = requests.post(delivery.url, data=body, headers=headers, timeout=10)
            outcome: int | str = answer.status_code
            retry = answer.status_code >= 500 or answer.status_code in (404, 408, 429)
        except Exception as exc:  # no one delivery may end the sender thread
            outcome, retry = type(exc).__name__, True
        self.delivered.append((delivery.event_id, delivery.url, outcome))
        if retry and delivery.attempt < RETRIES:
            delivery.attempt += 1
            delivery.due = time.monotonic() + min(60.0, 0.5 * 2**delivery.attempt)
            with self._cond:
                self._push(delivery)
        elif retry:
            log.warning(
                "sandbox webhook %s to %s given up: %s", delivery.event_id, delivery.url, outcome
            )
