"""What every provider emulation of the sandbox shares: outcomes by test token, faults, the ledger."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from werkzeug.wrappers import Request, Response

from portal.sandbox.ledger import Ledger
from portal.sandbox.webhooks import WebhookSender


@dataclass(frozen=True)
class Outcome:
    """What a charge with a test token does, in words every provider emulation translates."""

    kind: str  # approve, decline, do_not_honor, cvc, address, closed, review, timeout,
    # misconfigured, refuse, unknown
    moved: bool  # the charge is held at the gateway (money moved or may move)
    fault: str | None = None  # hang, drop or garbage: how the answer fails to arrive
    # How the sandbox's own ledger disagrees with its answer, for reconciliation: "lost" (answers,
    # then forgets the charge), "twin" (also holds a second charge Settle never sent), "short"
    # (holds one currency unit less than charged).
    twist: str | None = None


# Payment-method tokens that choose an outcome, like the providers' test cards (README table).
TEST_TOKENS: dict[str, Outcome] = {
    "tok_approve": Outcome("approve", True),
    "tok_decline": Outcome("decline", False),
    "tok_do_not_honor": Outcome("do_not_honor", False),
    "tok_cvc": Outcome("cvc", False),
    "tok_address": Outcome("address", False),
    "tok_closed": Outcome("closed", False),
    "tok_review": Outcome("review", True),
    "tok_timeout": Outcome("timeout", True),
    "tok_misconfigured": Outcome("misconfigured", False),
    "tok_refuse": Outcome("refuse", False),
    "tok_unknown": Outcome("unknown", False),
    "tok_hang": Outcome("approve", True, "hang"),
    "tok_drop": Outcome("approve", True, "drop"),
    "tok_garbage": Outcome("approve", True, "garbage"),
    # Answers a decline, but the gateway holds the money: "Settle says Decline, it was captured".
    "tok_decline_captured": Outcome("decline", True),
    "tok_lost": Outcome("approve", True, twist="lost"),
    "tok_twin": Outcome("approve", True, twist="twin"),
    "tok_short": Outcome("approve", True, twist="short"),
}
# Tokens whose twist only Settle's own sandbox API keeps; the provider emulations answer them by
# their kind (approve or decline) alone.
RECONCILIATION_TOKENS = frozenset(
    t for t, o in TEST_TOKENS.items() if o.twist or (o.kind == "decline" and o.moved)
)
OUTCOME_KINDS = sorted({o.kind for o in TEST_TOKENS.values()})


def outcome_for(token: str | None) -> Outcome:
    """The outcome a token asks for; any other token is approved."""
    return TEST_TOKENS.get(token or "", TEST_TOKENS["tok_approve"])


class Drop(Exception):
    """Close the connection without answering (the request was read)."""


class Faults:
    """The server-wide fault settings, and the event that ends every hang when the server stops."""

    def __init__(self, hang_seconds: float = 30.0, latency: float = 0.0,
                 rate_limit: int | None = None, retry_after: int = 1):  # fmt: skip
        self.hang_seconds = hang_seconds
        # Every answer waits this long first: a gateway's ordinary latency, for benchmarks.
        self.latency = latency
        # Requests a second every emulation answers, as a provider's rate limit does; past it,
        # HTTP 429 with Retry-After, and nothing done (None: no limit).
        self.rate_limit, self.retry_after = rate_limit, retry_after
        self.refused = 0  # requests answered 429
        self._recent: deque[float] = deque()
        self._counting = threading.Lock()
        self.stopping = threading.Event()

    def limit_rate(self, per_second: int | None) -> None:
        """A new rate limit, counted afresh (tests)."""
        with self._counting:
            self.rate_limit, self.refused = per_second, 0
            self._recent.clear()

    def over_rate_limit(self) -> bool:
        """Whether this request is one too many within the last second (counted when it is not)."""
        if not self.rate_limit:
            return False
        now = time.monotonic()
        with self._counting:
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit:
                self.refused += 1
                return True
            self._recent.append(now)
            return False


GARBAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


class Emulator:
    """One provider's emulation: a WSGI app mounted at /<provider> on the sandbox server.

    A subclass answers in its provider's wire format from `handle`, checks the provider's
    authentication, chooses outcomes with `outcome_for`, keeps charges in the shared ledger under
    its own `provider` name, and ends with `deliver` so that hang, drop and garbage work alike.
    """

    provider: ClassVar[str]
    # Credentials this emulation accepts: test values only, never real ones.
    credentials: ClassVar[dict[str, str]]

    def __init__(self, ledger: Ledger, faults: Faults, webhooks: WebhookSender | None = None):
        self.ledger = ledger
        self.faults = faults
        # Where an emulation of a provider that sends webhooks sends its events.
        self.webhooks = webhooks or WebhookSender()

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def deliver(self, response: Response, fault: str | None) -> Response:
        """The answer as the fault lets it arrive: late (hang), never (drop) or unreadable (garbage)."""
        if self.faults.latency:
            self.faults.stopping.wait(self.faults.latency)
        if fault == "hang":
            self.faults.stopping.wait(self.faults.hang_seconds)
        elif fault == "drop":
            raise Drop
        elif fault == "garbage":
            return Response(GARBAGE, status=200, mimetype="text/html")
        return response

    def too_many_requests(self) -> Response:
        """HTTP 429: the request was not handled; call again after Retry-After seconds."""
        return Response(
            json.dumps({"error": {"type": "rate_limit_error", "code": "rate_limit",
                                  "message": "Too many requests"}}),
            status=429, mimetype="application/json",
            headers={"Retry-After": str(self.faults.retry_after)},
        )  # fmt: skip

    def __call__(self, environ, start_response):
        if self.faults.over_rate_limit():
            return self.too_many_requests()(environ, start_response)
        try:
            response = self.handle(Request(environ))
        except Drop:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            # werkzeug treats a ConnectionError as a client that went away, and stays quiet.
            raise ConnectionAbortedError("the sandbox dropped the connection on purpose") from None
        return response(environ, start_response)
