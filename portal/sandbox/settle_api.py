"""The Settle Sandbox gateway's own JSON API (the embedded default's gateway), mounted at /."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from portal.money import MoneyError, parse_amount
from portal.sandbox.emulator import Emulator, outcome_for

# Outcome kind -> (code, HTTP status), like Stripe-style JSON gateways answer.
CODES = {
    "approve": ("approved", 200),
    "decline": ("insufficient_funds", 402),
    "do_not_honor": ("do_not_honor", 402),
    "cvc": ("incorrect_cvc", 402),
    "address": ("incorrect_address", 402),
    "closed": ("account_closed", 402),
    "review": ("review_required", 202),
    "timeout": ("processing_timeout", 504),
    "misconfigured": ("merchant_misconfigured", 400),
    "refuse": ("auth_rejected", 401),
    "unknown": ("zz_unlisted_code", 402),
}

MESSAGES = {
    "approved": "Approved",
    "insufficient_funds": "Your card has insufficient funds.",
    "do_not_honor": "The card was declined.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "incorrect_address": "The billing address does not match the card.",
    "account_closed": "The card's account is closed.",
    "review_required": "The issuer is reviewing this charge.",
    "processing_timeout": "Timed out talking to the processor; the charge may have completed.",
    "merchant_misconfigured": "This merchant account cannot accept this charge.",
    "auth_rejected": "Invalid API key provided.",
    "zz_unlisted_code": "A code no mapping knows yet.",
}


# Charges per page of a period listing, as Stripe's list endpoints cap `limit`.
PAGE_LIMIT = 100


class _Invalid(Exception):
    pass


class SettleSandbox(Emulator):
    provider = "sandbox"
    credentials = {"api_key": "sk_test_settle_sandbox"}

    urls = Map(
        [
            Rule("/v1/charges", methods=["POST"], endpoint="charge"),
            Rule("/v1/charges", methods=["GET"], endpoint="search"),
            Rule("/v1/charges/<charge_id>/void", methods=["POST"], endpoint="void"),
            Rule("/v1/charges/<charge_id>/refunds", methods=["POST"], endpoint="refund"),
            Rule("/_sandbox/ledger", methods=["GET"], endpoint="ledger"),
            Rule("/_sandbox/settle", methods=["POST"], endpoint="settle"),
            Rule("/_sandbox/reset", methods=["POST"], endpoint="reset"),
            Rule("/_sandbox/forget", methods=["POST"], endpoint="forget"),
            Rule("/_sandbox/phantom", methods=["POST"], endpoint="phantom"),
        ]
    )

    def handle(self, request: Request) -> Response:
        try:
            endpoint, args = self.urls.bind_to_environ(request.environ).match()
            if endpoint in ("ledger", "settle", "reset", "forget", "phantom"):
                return getattr(self, f"on_{endpoint}")(request, **args)
            if request.headers.get("Authorization", "") != f"Bearer {self.credentials['api_key']}":
                return self.error("auth_rejected", 401)
            return getattr(self, f"on_{endpoint}")(request, **args)
        except HTTPException as exc:
            return self.error("invalid_request", exc.code or 400, exc.description)

    # Helpers ---------------------------------------------------------------------------------

    @staticmethod
    def reply(body, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def error(self, code: str, status: int, message: str | None = None) -> Response:
        return self.reply(
            {"error": {"code": code, "message": message or MESSAGES.get(code, code)}}, status
        )

    @staticmethod
    def _body(request: Request) -> dict:
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            raise _Invalid("the body is not JSON") from None
        if not isinstance(data, dict):
            raise _Invalid("the body must be a JSON object")
        return data

    @staticmethod
    def _amount(data: dict) -> tuple[Decimal, str]:
        try:
            currency = str(data["currency"])
            return parse_amount(str(data["amount"]), currency), currency
        except KeyError as exc:
            raise _Invalid(f"missing field {exc.args[0]}") from None
        except (MoneyError, InvalidOperation) as exc:
            raise _Invalid(str(exc)) from None

    def idempotent(self, request: Request, operation: str, handler) -> Response:
        """The first answer to an Idempotency-Key is the answer to every repeat of it."""
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
        return self.deliver(self.reply(body, status), fault)

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
            outcome = outcome_for(token)
            code, status = CODES[outcome.kind]
            if outcome.kind == "refuse":
                return status, {"error": {"code": code, "message": MESSAGES[code]}}, None
            order_id = str(data.get("order_id") or "")
            held = amount - 1 if outcome.twist == "short" and amount > 1 else amount
            charge = self.ledger.add_charge(
                self.provider, key, order_id, held, currency, code, outcome.moved
            )
            answer = {
                **charge,
                "amount": str(amount),
                "object": "charge",
                "message": MESSAGES[code],
            }
            if outcome.twist == "lost":
                self.ledger.forget(charge["id"])
            elif outcome.twist == "twin":
                self.ledger.add_charge(
                    self.provider, f"twin-{key}", order_id, amount, currency, code, True
                )
            return status, answer, outcome.fault

        return self.idempotent(request, "charge", handle)

    def on_search(self, request: Request) -> Response:
        key = request.args.get("idempotency_key")
        order_id = request.args.get("order_id")
        if "created_gte" in request.args:
            return self._period(request)
        if not key and not order_id:
            return self.error("invalid_request", 400, "Give idempotency_key or order_id.")
        charges = self.ledger.find(self.provider, key=key, order_id=order_id)
        return self.reply({"object": "list", "data": charges})

    def _period(self, request: Request) -> Response:
        """Every charge created in [created_gte, created_lt), a page at a time, as Stripe lists."""
        try:
            since = datetime.fromisoformat(request.args["created_gte"]).replace(tzinfo=UTC)
            until = datetime.fromisoformat(request.args["created_lt"]).replace(tzinfo=UTC)
            limit = int(request.args.get("limit", PAGE_LIMIT))
        except (KeyError, ValueError):
            return self.error(
                "invalid_request", 400, "Give created_gte and created_lt as ISO 8601 UTC times."
            )
        if not 1 <= limit <= PAGE_LIMIT:
            return self.error("invalid_request", 400, f"limit must be 1 to {PAGE_LIMIT}.")
        charges = self.ledger.listed(
            self.provider, since.timestamp(), until.timestamp(),
            request.args.get("starting_after"), limit + 1,
        )  # fmt: skip
        return self.reply(
            {"object": "list", "data": charges[:limit], "has_more": len(charges) > limit}
        )

    def on_forget(self, request: Request) -> Response:
        if not self.ledger.forget(request.args.get("id", "")):
            raise NotFound()
        return self.reply({"forgotten": 1})

    def on_phantom(self, request: Request) -> Response:
        """Hold a charge Settle never sent (a charge made elsewhere, at the gateway's own terminal)."""
        try:
            amount = parse_amount(request.args["amount"], request.args["currency"])
            order_id = request.args["order_id"]
        except (KeyError, MoneyError, InvalidOperation):
            return self.error("invalid_request", 400, "Give order_id, amount and currency.")
        charge = self.ledger.add_charge(
            self.provider, "phantom-" + uuid.uuid4().hex, order_id, amount,
            request.args["currency"], "approved", True,
        )  # fmt: skip
        return self.reply(charge)

    def _follow_up(self, charge_id: str, wanted_state: str, verb: str):
        charge = self.ledger.charge(self.provider, charge_id)
        if charge is None:
            return None, (
                404,
                {"error": {"code": "no_such_charge", "message": "No such charge."}},
                None,
            )
        if charge["state"] != wanted_state:
            code = f"charge_not_{verb}able"
            message = f"The charge is {charge['state']} and cannot be {verb}ed."
            return None, (409, {"error": {"code": code, "message": message}}, None)
        return charge, None

    def on_void(self, request: Request, charge_id: str) -> Response:
        def handle(key):
            charge, refusal = self._follow_up(charge_id, "unsettled", "void")
            if refusal:
                return refusal
            charge = self.ledger.void(self.provider, charge_id)
            return 200, {**charge, "object": "void", "code": "voided", "message": "Voided"}, None

        return self.idempotent(request, "void", handle)

    def on_refund(self, request: Request, charge_id: str) -> Response:
        def handle(key):
            data = self._body(request)
            amount, currency = self._amount(data)
            charge, refusal = self._follow_up(charge_id, "settled", "refund")
            if refusal:
                return refusal
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

    # Control endpoints, for tests and curious users ------------------------------------------

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
