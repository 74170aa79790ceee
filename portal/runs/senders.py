"""The threads that make a run's calls. Each gateway has a line of claimed calls (recorded and
committed as Pending) and C threads that take them in order, at the gateway's pace, and hand
back each answer. They touch no database: while the run's own thread writes a batch of answers
or claims the next window, the gateway's calls keep going.

A call the gateway refused with 429 (Too Many Requests) did nothing there: it goes back to the
front of its line, with the same idempotency key, after the pause the gateway asked for; only a
call refused MOST_SLOW_DOWNS times is handed back with its 429 answer. Once the run is stopped
(cancelled, or its chunk taken over), a call not sent yet is handed back unsent.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

from portal.gateways.base import GatewayResult
from portal.runs.pace import MOST_SLOW_DOWNS, Pace
from portal.transactions.calls import Call


@dataclass(frozen=True)
class Sent:
    invoice_id: int
    call: Call
    result: GatewayResult | None
    error: Exception | None = None  # make() itself failed (a bug): the call stays Pending
    unsent: bool = False  # stopped before its turn: never sent, so nothing moved


@dataclass(frozen=True)
class Paused:
    """A gateway asked to slow down: its calls wait this many seconds."""

    gateway_id: int
    seconds: float


class _Line:
    """A gateway's claimed calls, oldest first; a refused one goes back to the front."""

    def __init__(self):
        self._items: deque = deque()
        self._ready = threading.Condition()
        self._closed = False

    def put(self, item, *, front: bool = False) -> None:
        with self._ready:
            (self._items.appendleft if front else self._items.append)(item)
            self._ready.notify()

    def get(self):
        """The next item; None once closed and empty."""
        with self._ready:
            while not self._items and not self._closed:
                self._ready.wait()
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


class Senders:
    def __init__(self, per_gateway: int, paces: dict[int, Pace], name: str):
        self.per_gateway, self.paces, self.name = per_gateway, paces, name
        self.results: queue.SimpleQueue[Sent | Paused] = queue.SimpleQueue()
        self._lines: dict[int, _Line] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # the paces and the refusal counts
        self._refusals: dict[int, int] = {}
        self._last_refusal: dict[int, GatewayResult] = {}
        self._stopped = threading.Event()
        self._own = threading.local()  # each thread's copy of each plugin

    def send(self, gateway_id: int, invoice_id: int, call: Call) -> None:
        line = self._lines.get(gateway_id)
        if line is None:
            line = self._lines[gateway_id] = _Line()
            self.paces.setdefault(gateway_id, Pace())
            for n in range(self.per_gateway):
                thread = threading.Thread(
                    target=self._work, args=(gateway_id, line), daemon=True,
                    name=f"{self.name}-gateway-{gateway_id}-{n + 1}",
                )  # fmt: skip
                thread.start()
                self._threads.append(thread)
        line.put((invoice_id, call))

    def stop(self) -> None:
        """The run was cancelled or its chunk taken over: a call not sent yet is handed back
        unsent (the run closes it), one at the gateway finishes."""
        self._stopped.set()

    def close(self) -> None:
        """The threads end once their lines are empty (every call handed back)."""
        for line in self._lines.values():
            line.close()
        for thread in self._threads:
            thread.join()

    def _work(self, gateway_id: int, line: _Line) -> None:
        pace = self.paces[gateway_id]
        while (item := line.get()) is not None:
            invoice_id, call = item
            try:
                if not self._wait_for_turn(pace):
                    # Stopped first. A call the gateway refused (429) is handed back with that
                    # answer: it was sent, even though the gateway did nothing.
                    refused = self._last_refusal.get(call.txn_id)
                    self.results.put(Sent(invoice_id, call, refused, unsent=refused is None))
                    continue
                result = self._mine(call).make()
                if result.slow_down:
                    if self._refused(pace, call, result):
                        line.put(item, front=True)
                        continue
                else:
                    with self._lock:
                        pace.went_through()
                self.results.put(Sent(invoice_id, call, result))
            except Exception as exc:  # handed back: the run lists it, recovery asks the gateway
                self.results.put(Sent(invoice_id, call, None, exc))

    def _mine(self, call: Call) -> Call:
        """The call with this thread's own copy of its plugin: one HTTP session per thread and
        gateway configuration, as everywhere else (gateways/service.py), so that a call's
        deadline only ever cuts its own connection."""
        copies = self._own.__dict__.setdefault("plugins", {})
        shared = call.plugin
        kept = copies.get(id(shared))
        if kept is None or kept[0] is not shared:
            kept = copies[id(shared)] = (shared, type(shared)(shared.config, shared.mapping))
        return replace(call, plugin=kept[1])

    def _wait_for_turn(self, pace: Pace) -> bool:
        """Until the gateway's pace lets a request leave: True; False when stopped first."""
        while not self._stopped.is_set():
            with self._lock:
                now = time.monotonic()
                wait = pace.wait(now)
                if wait <= 0:
                    pace.take(now)
                    return True
            self._stopped.wait(min(wait, 1.0))
        return False

    def _refused(self, pace: Pace, call: Call, result: GatewayResult) -> bool:
        """A 429: pause the gateway and send the call again; False once it was refused too often
        (its 429 answer is then written like any other)."""
        with self._lock:
            refusals = self._refusals.get(call.txn_id, 0) + 1
            seconds = pace.slow_down(result.retry_after, time.monotonic())
            if refusals > MOST_SLOW_DOWNS:
                return False
            self._refusals[call.txn_id] = refusals
            self._last_refusal[call.txn_id] = result
        self.results.put(Paused(call.gateway_id, seconds))
        return True
