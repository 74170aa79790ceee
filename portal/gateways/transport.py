"""The HTTP session every plugin sends through: a hard deadline on each call, and a cap on the
size of an answer.

requests' time-outs are per socket read: a gateway that drips a byte every few seconds holds a
call for ever without one of them firing. Here each call has a deadline; when it passes, a
watchdog thread shuts the call's socket down, so whatever read is waiting returns at once, and
the base class records the call as Indeterminate (it was sent; the money may have moved) with the
reason. The socket is found through the connection class of the session's pools: each request
names its connection to the call's deadline as it starts, on a new and a kept-alive connection
alike.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import itertools
import socket
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The longest answer Settle reads (a listing page of 50 transactions is well under 1 MB).
MAX_ANSWER_BYTES = 4 * 1024 * 1024

_current = threading.local()


class AnswerTooLong(Exception):
    pass


class DeadlinePassed(Exception):
    """The watchdog cut the call off: whatever was read of the answer is only a fragment."""


class Deadline:
    """One call's deadline; `fired` once the watchdog cut the call off."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.fired = False
        self.closed = False
        self._connection = None
        self._lock = threading.Lock()

    def watch(self, connection) -> None:
        with self._lock:
            self._connection = connection
            fired = self.fired
        if fired:
            self._cut(connection)

    def fire(self) -> None:
        # Under the lock, and never once the call is over: the connection may already carry
        # this thread's next call (kept alive), which is not this deadline's to cut.
        with self._lock:
            if self.closed:
                return
            self.fired = True
            if self._connection is not None:
                self._cut(self._connection)

    @staticmethod
    def _cut(connection) -> None:
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def __enter__(self) -> Deadline:
        _current.deadline = self
        _watchdog.add(self)
        return self

    def __exit__(self, *exc) -> None:
        _current.deadline = None
        with self._lock:
            self.closed, self._connection = True, None
        _watchdog.remove(self)


class _Watchdog:
    """One daemon thread for every call in the process: it fires each deadline that passes."""

    def __init__(self):
        self._heap: list[tuple[float, int, Deadline]] = []
        self._live: set[int] = set()
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._wake:
            number = next(self._order)
            deadline._number = number
            self._live.add(number)
            heapq.heappush(self._heap, (deadline.at, number, deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="call-deadlines", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def remove(self, deadline: Deadline) -> None:
        with self._wake:
            self._live.discard(getattr(deadline, "_number", None))

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._wake.wait(timeout=wait)
                    continue
                _, number, deadline = heapq.heappop(self._heap)
                self._live.discard(number)
            deadline.fire()


_watchdog = _Watchdog()


def _named(cls):
    class Watched(cls):
        def request(self, *args, **kwargs):
            deadline = getattr(_current, "deadline", None)
            if deadline is not None:
                deadline.watch(self)
            sent = super().request(*args, **kwargs)
            if deadline is not None and deadline.fired:
                # It fired while connecting (no socket to cut yet): cut it now, before the wait.
                deadline._cut(self)
            return sent

    Watched.__name__ = f"Watched{cls.__name__}"
    return Watched


class _Pool(HTTPConnectionPool):
    ConnectionCls = _named(HTTPConnection)


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _named(HTTPSConnection)


class _Adapter(HTTPAdapter):
    """Every pool the session opens uses the watched connections: direct, and through an HTTP(S)
    proxy (HTTPS_PROXY) alike."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}
        return manager


class _Session(requests.Session):
    """Reads the environment's settings for an address (HTTPS_PROXY, NO_PROXY, the CA bundle) once
    per session, not again on every call: the process's environment does not change under it,
    and reading it was a sixth of a call's own work in a fast run."""

    def __init__(self):
        super().__init__()
        self._environment: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies:  # a caller's own proxies: as requests merges them
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}


def new_session() -> requests.Session:
    session = _Session()
    adapter = _Adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def read_capped(response, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The streamed answer's body, or AnswerTooLong once it passes `limit` bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise AnswerTooLong(f"the gateway announced {int(declared):,} bytes")
    parts, size = [], 0
    # A read waits until its chunk is full: never ask for more than the cap allows.
    for chunk in response.iter_content(chunk_size=min(65536, limit + 1)):
        size += len(chunk)
        if size > limit:
            raise AnswerTooLong(f"more than {limit:,} bytes")
        parts.append(chunk)
    return b"".join(parts)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """The seconds a Retry-After header asks to wait: a number of seconds or an HTTP date;
    None when there is none or it cannot be read."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
