"""Settle's sandbox gateway server: answers like a gateway, chooses outcomes by test token."""

from __future__ import annotations

import json
import logging
import socket
import threading
from decimal import Decimal, InvalidOperation

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from portal.money import MoneyError, parse_amount
from portal.sandbox.ledger import Ledger

# Credentials the sandbox accepts, per plugin. Test values: never real ones.
SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    "sandbox": {"api_key": "sk_test_settle_sandbox"},
}

# Payment-method tokens that choose an outcome, like the providers' test cards. Any other token
# is approved. (code, HTTP status, money moved?, fault) -- see README "Sandbox test values".
TEST_TOKENS: dict[str, tuple[str, int, bool, str | None]] = {
    "tok_approve": ("approved", 200, True, None),
    "tok_decline": ("insufficient_funds", 402, False, None),
    "tok_do_not_honor": ("do_not_honor", 402, False, None),
    "tok_cvc": ("incorrect_cvc", 402, False, None),
    "tok_closed": ("account_closed", 402, False, None),
    "tok_review": ("review_required", 202, True, None),
    "tok_timeout": ("processing_timeout", 504, True, None),
    "tok_misconfigured": ("merchant_misconfigured", 400, False, None),
    "tok_refuse": ("auth_rejected", 401, False, None),
    "tok_unknown": ("zz_unlisted_code", 402, False, None),
    "tok_hang": ("approved", 200, True, "hang"),
    "tok_drop": ("approved", 200, True, "drop"),
    "tok_garbage": ("approved", 200, True, "garbage"),
}

MESSAGES = {
    "approved": "Approved",
    "insufficient_funds": "Your card has insufficient funds.",
    "do_not_honor": "The card was declined.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "account_closed": "The card's account is closed.",
    "review_required": "The issuer is reviewing this charge.",
    "processing_timeout": "Timed out talking to the processor; the charge may have completed.",
    "merchant_misconfigured": "This merchant account cannot accept this charge.",
    "auth_rejected": "Invalid API key provided.",
    "zz_unlisted_code": "A code no mapping knows yet.",
}

log = logging.getLogger(__name__)


class Drop(Exception):
    """Close the connection without answering (the request was read)."""


class SandboxApp:
    provider = "sandbox"

    def __init__(self, ledger: Ledger, hang_seconds: float = 30.0):
        self.ledger = ledger
        self.hang_seconds = hang_seconds
        self.stopping = threading.Event()
        self.urls = Map(
            [
                Rule("/v1/charges", methods=["POST"], endpoint="charge"),
                Rule("/v1/charges", methods=["GET"], endpoint="search"),
                Rule("/v1/charges/<charge_id>/void", methods=["POST"], endpoint="void"),
                Rule("/v1/charges/<charge_id>/refunds", methods=["POST"], endpoint="refund"),
                Rule("/_sandbox/ledger", methods=["GET"], endpoint="ledger"),
                Rule("/_sandbox/settle", methods=["POST"], endpoint="settle"),
                Rule("/_sandbox/reset", methods=["POST"], endpoint="reset"),
            ]
        )

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = self.urls.bind_to_environ(environ).match()
            if not endpoint.startswith(("ledger", "settle", "reset")) and not self._authorized(
                request
            ):
                response = self.error("auth_rejected", 401)
            else:
                response = getattr(self, f"on_{endpoint}")(request, **args)
        except Drop:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            # werkzeug treats a ConnectionError as a client that went away, and stays quiet.
            raise ConnectionAbortedError("sandbox dropped the connection on purpose") from None
        except HTTPException as exc:
            response = self.error("invalid_request", exc.code or 400, exc.description)
        return response(environ, start_response)

    # Helpers ---------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        expected = SANDBOX_CREDENTIALS[self.provider]["api_key"]
        return request.headers.get("Authorization", "") == f"Bearer {expected}"

    @staticmethod
    def reply(body, status: int = 200) -> Response:
        text = body if isinstance(body, str) else json.dumps(body)
        mimetype = "application/json" if not isinstance(body, str) else "text/html"
        return Response(text, status=status, mimetype=mimetype)

    def error(self, code: str, status: int, message: str | None = None) -> Response:
        return self.reply(
            {"error": {"code": code, "message": message or MESSAGES.get(code, code)}}, status
        )

    def _body(self, request: Request) -> dict:
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            raise _Invalid("the body is not JSON") from None
        if not isinstance(data, dict):
            raise _Invalid("the body must be a JSON object")
        return data

    def _amount(self, data: dict) -> tuple[Decimal, str]:
        try:
            currency = str(data["currency"])
            return parse_amount(str(data["amount"]), currency), currency
        except KeyError as exc:
            raise _Invalid(f"missing field {exc.args[0]}") from None
        except (MoneyError, InvalidOperation) as exc:
            raise _Invalid(str(exc)) from None

    def idempotent(self, request: Request, operation: str, handler) -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return self.error("invalid_request", 400, "An Idempotency-Key header is required.")
        if (kept := self.ledger.reply_for(self.provider, key, operation)) is not None:
            status, body = kept
            response = Response(body, status=status, mimetype="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            status, body, fault = handler(key)
        except _Invalid as exc:
            return self.error("invalid_request", 400, str(exc))
        self.ledger.keep_reply(self.provider, key, operation, status, body)
        return self.faulty(fault) or self.reply(body, status)

    def faulty(self, fault: str | None) -> Response | None:
        if fault == "hang":
            self.stopping.wait(self.hang_seconds)
        elif fault == "drop":
            raise Drop
        elif fault == "garbage":
            return self.reply("<html><body>502 Bad Gateway</body></html>", 200)
        return None

    # Endpoints -------------------------------------------------------------------------------

    def on_charge(self, request: Request) -> Response:
        def handle(key):
            data = self._body(request)
            amount, currency = self._amount(data)
            if amount <= 0:
                raise _Invalid("amount must be positive")
            token = str(data.get("source") or "")
            if not token:
                raise _Invalid("missing field source")
            code, status, moved, fault = TEST_TOKENS.get(token, TEST_TOKENS["tok_approve"])
            if code == "auth_rejected":
                return status, {"error": {"code": code, "message": MESSAGES[code]}}, None
            order_id = str(data.get("order_id") or "")
            charge = self.ledger.add_charge(
                self.provider, key, order_id, amount, currency, code, moved
            )
            body = {**charge, "object": "charge", "message": MESSAGES.get(code, code)}
            return status, body, fault

        return self.idempotent(request, "charge", handle)

    def on_search(self, request: Request) -> Response:
        key = request.args.get("idempotency_key")
        order_id = request.args.get("order_id")
        if not key and not order_id:
            return self.error("invalid_request", 400, "Give idempotency_key or order_id.")
        charges = self.ledger.find(self.provider, key=key, order_id=order_id)
        return self.reply({"object": "list", "data": charges})

    def on_void(self, request: Request, charge_id: str) -> Response:
        def handle(key):
            charge = self.ledger.charge(self.provider, charge_id)
            if charge is None:
                return (
                    404,
                    {"error": {"code": "no_such_charge", "message": "No such charge."}},
                    None,
                )
            if charge["state"] != "unsettled":
                message = f"The charge is {charge['state']} and cannot be voided."
                return 409, {"error": {"code": "charge_not_voidable", "message": message}}, None
            charge = self.ledger.void(self.provider, charge_id)
            return 200, {**charge, "object": "void", "code": "voided", "message": "Voided"}, None

        return self.idempotent(request, "void", handle)

    def on_refund(self, request: Request, charge_id: str) -> Response:
        def handle(key):
            data = self._body(request)
            amount, currency = self._amount(data)
            charge = self.ledger.charge(self.provider, charge_id)
            if charge is None:
                return (
                    404,
                    {"error": {"code": "no_such_charge", "message": "No such charge."}},
                    None,
                )
            if charge["state"] != "settled":
                message = f"The charge is {charge['state']} and cannot be refunded."
                return 409, {"error": {"code": "charge_not_refundable", "message": message}}, None
            if currency != charge["currency"] or amount <= 0 or amount > Decimal(charge["amount"]):
                raise _Invalid(
                    "the refund must be positive, in the charge's currency, at most its amount"
                )
            charge = self.ledger.refund(self.provider, charge_id, amount)
            return (
                200,
                {**charge, "object": "refund", "code": "refunded", "message": "Refunded"},
                None,
            )

        return self.idempotent(request, "refund", handle)

    def on_ledger(self, request: Request) -> Response:
        return self.reply({"data": self.ledger.all()})

    def on_settle(self, request: Request) -> Response:
        charge_id = request.args.get("id")
        count = self.ledger.settle(charge_id)
        if charge_id and not count:
            raise NotFound()
        return self.reply({"settled": count})

    def on_reset(self, request: Request) -> Response:
        self.ledger.reset()
        return self.reply({"reset": True})


class _Invalid(Exception):
    pass


class SandboxServer:
    """The sandbox on 127.0.0.1, in a thread of this process (port 0 picks a free port)."""

    def __init__(self, host="127.0.0.1", port=0, *, ledger_path=":memory:", settle_after=120.0,
                 hang_seconds=30.0):  # fmt: skip
        self.ledger = Ledger(ledger_path, settle_after=settle_after)
        self.app = SandboxApp(self.ledger, hang_seconds=hang_seconds)
        self._server = make_server(host, port, self.app, threaded=True)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="settle-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self.app.stopping.set()
        self._server.shutdown()
        self._server.server_close()
