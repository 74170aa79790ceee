"""A hard deadline on every call and a cap on an answer's size (issue 14, hole 7), over real
sockets: a gateway that drips its answer (headers or body) a byte at a time is cut off at the
deadline though no single read ever times out; an over-long answer is not read to its end."""

import socket
import threading
import time
import uuid

import pytest

from portal.gateways import transport
from portal.gateways.base import GatewayConfig, GatewayRequest
from portal.gateways.registry import plugin
from portal.money import Money
from portal.sandbox.server import sandbox_credentials
from portal.statuses import GatewayStatus

pytestmark = pytest.mark.integration

BODY = b'{"id": "ch_1", "status": "succeeded", "amount": 1000}'


class Dripper:
    """A gateway on loopback that answers `answer` a few bytes at a time, `every` seconds apart,
    after reading the request: each read gets a byte well within the read time-out."""

    def __init__(self, answer: bytes, every: float, size: int = 1, at_once: int = 0):
        self.answer, self.every, self.size, self.at_once = answer, every, size, at_once
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sent_all = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(self.answer[: self.at_once])
                for i in range(self.at_once, len(self.answer), self.size):
                    conn.sendall(self.answer[i : i + self.size])
                    time.sleep(self.every)
                self.sent_all.set()
                time.sleep(1.0)  # closing at once could reset the socket before the client reads
            except OSError:
                pass

    def close(self):
        self.listener.close()


def call(url, timeout=2.0, deadline=1.0):
    gateway = plugin(
        "sandbox",
        GatewayConfig(url, sandbox_credentials("sandbox"), timeout=timeout, deadline=deadline),
    )
    started = time.monotonic()
    result = gateway.charge(
        GatewayRequest("charge", uuid.uuid4().hex, "INV-1", Money.parse("10.00", "USD"), "tok")
    )
    return result, time.monotonic() - started


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_dripping_answer_is_cut_off_at_the_deadline_and_is_indeterminate(where):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    answer = head + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY
    # Drip the headers byte by byte, or send them at once and drip the body.
    at_once = 0 if where == "headers" else len(answer) - len(BODY)
    dripper = Dripper(answer, every=0.05, at_once=at_once)
    try:
        result, took = call(dripper.url, timeout=2.0, deadline=1.0)
    finally:
        dripper.close()
    assert result.status is GatewayStatus.INDETERMINATE
    assert "no complete answer within the call's deadline of 1 s" in result.reason
    assert result.timed_out and result.sent
    assert took < 1.8, f"the call took {took:.2f} s past its 1 s deadline"
    assert not dripper.sent_all.is_set()


def test_a_prompt_answer_is_not_touched_by_the_deadline(sandbox):
    result, took = call(sandbox.url, timeout=2.0, deadline=1.0)
    assert result.status is GatewayStatus.DECLINE or result.status is GatewayStatus.SUCCESS
    time.sleep(1.2)  # the watchdog's moment passes: the finished call is left alone
    again, _ = call(sandbox.url, timeout=2.0, deadline=1.0)
    assert again.status is result.status


@pytest.mark.parametrize("announced", [True, False])
def test_an_answer_longer_than_settle_reads_is_indeterminate_with_the_reason(
    monkeypatch, announced
):
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 10_000)
    monkeypatch.setattr(transport.read_capped, "__defaults__", (10_000,))
    huge = b"{" + b" " * 50_000 + b"}"
    length = f"Content-Length: {len(huge)}\r\n" if announced else "Transfer-Encoding: identity\r\n"
    answer = f"HTTP/1.1 200 OK\r\nConnection: close\r\n{length}\r\n".encode() + huge
    dripper = Dripper(answer, every=0, size=65536)
    try:
        result, _ = call(dripper.url, timeout=5.0, deadline=5.0)
    finally:
        dripper.close()
    assert result.status is GatewayStatus.INDETERMINATE
    assert "longer than Settle reads" in result.reason
    assert result.raw["response"] == {"http_status": 200, "body": None}
