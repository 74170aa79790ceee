"""The Stripe emulation: PaymentIntents and Refunds of Stripe's v1 API, mounted at /stripe.

It answers as Stripe does: form-encoded POST bodies, a Bearer secret key (401 with Stripe's
invalid_request_error envelope otherwise), an Idempotency-Key on every POST whose first answer,
a 500 included, is the answer to every repeat (Idempotent-Replayed: true), card errors as HTTP 402
with the payment intent inside the error, intents with Stripe's statuses, and ids "pi_..." and
"re_...". A refund may be for part of the charge (an amount below what is left), and the intent's
latest charge then tells amount_refunded, as Stripe's does. The search is exact and immediate here
(Stripe's may lag up to an hour).

This emulation's choices (Stripe documents no test token for them): "tok_review" answers an intent
that requires_action (3D Secure); "tok_timeout" answers 500 api_error after taking the money;
"tok_misconfigured" answers 403 (a restricted key without the permission); "tok_unknown" answers a
decline code no mapping knows. A payment method "cus_...|tok_..." is read by its token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from datetime import datetime

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from portal.money import Money, MoneyError
from portal.sandbox.emulator import Emulator, outcome_for

# Outcome kind -> the decline (error code, decline code) Stripe answers with HTTP 402.
DECLINES = {
    "decline": ("card_declined", "insufficient_funds"),
    "do_not_honor": ("card_declined", "do_not_honor"),
    "cvc": ("incorrect_cvc", None),
    "address": ("incorrect_zip", None),
    "closed": ("card_declined", "do_not_try_again"),
    "unknown": ("card_declined", "sandbox_unlisted_decline"),
}
MESSAGES = {
    "insufficient_funds": "Your card has insufficient funds.",
    "do_not_honor": "Your card was declined.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "incorrect_zip": "Your card's zip code failed validation.",
    "do_not_try_again": "Your card was declined.",
    "sandbox_unlisted_decline": "Sandbox: a decline code no mapping knows.",
}
_QUERY = re.compile(r"^metadata\['(settle_key|invoice)'\]:'((?:[^'\\]|\\.)*)'$")


class StripeEmulator(Emulator):
    provider = "stripe"
    credentials = {
        "secret_key": "sk_test_settle_sandbox_stripe",
        "webhook_secret": "whsec_settle_sandbox_stripe",
    }

    urls = Map(
        [
            Rule("/v1/payment_intents", methods=["POST"], endpoint="create"),
            Rule("/v1/payment_intents", methods=["GET"], endpoint="list"),
            Rule("/v1/payment_intents/search", methods=["GET"], endpoint="search"),
            Rule("/v1/payment_intents/<intent_id>", methods=["GET"], endpoint="retrieve"),
            Rule("/v1/payment_intents/<intent_id>/cancel", methods=["POST"], endpoint="cancel"),
            Rule("/v1/refunds", methods=["POST"], endpoint="refund"),
        ]
    )

    def __init__(self, ledger, faults, webhooks=None):
        super().__init__(ledger, faults, webhooks)
        self._lock = threading.Lock()
        # What each intent's charge has given back, in minor units: a refund may be partial, and
        # the ledger only says that some refund was made.
        self._refunded: dict[str, int] = {}

    def handle(self, request: Request) -> Response:
        try:
            endpoint, args = self.urls.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return self.error(
                exc.code or 404,
                "invalid_request_error",
                f"Unrecognized request URL ({request.method}: {request.path}).",
            )
        if request.headers.get("Authorization") != f"Bearer {self.credentials['secret_key']}":
            return self.error(
                401, "invalid_request_error", "Invalid API Key provided: sk_test_****"
            )
        if endpoint == "list":
            return self.listed(request)
        if endpoint == "search":
            return self.search(request)
        if endpoint == "retrieve":
            return self.retrieve(args["intent_id"])
        key = request.headers.get("Idempotency-Key")
        form = request.form.to_dict()
        if key and (kept := self.ledger.reply_for(self.provider, key, endpoint)) is not None:
            status, body = kept
            response = Response(body, status=status, content_type="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        with self._lock:
            status, body, fault = getattr(self, f"on_{endpoint}")(form, key or "", **args)
            if key:
                self.ledger.keep_reply(self.provider, key, endpoint, status, body)
        self.announce(endpoint, status, body, key or "")
        return self.deliver(self.reply(body, status), fault)

    # Webhooks --------------------------------------------------------------------------------

    def announce(self, endpoint: str, status: int, body: dict, key: str) -> None:
        """The events Stripe sends for what was just done (docs.stripe.com/api/events/types): an
        intent's creation, then its outcome; a cancel; a refund. Sent however the answer itself
        fares (a hang, a drop, a 500 after the money moved)."""
        if not self.webhooks.has_endpoints(self.provider):
            return
        held = self.ledger.find(self.provider, key=key) if endpoint == "create" and key else []
        if held:  # the intent as it stands, whatever the answer said (a 500 after the money moved)
            intent = self._intent(held[-1])
            created = {**intent, "status": "requires_confirmation"}
            self.notify("payment_intent.created", created, followed=True)
            if status == 402:
                error = {k: v for k, v in body["error"].items() if k != "payment_intent"}
                failed = {**intent, "last_payment_error": error}
                self.notify("payment_intent.payment_failed", failed, after=0.1)
            else:
                self.notify(f"payment_intent.{intent['status']}", intent, after=0.1)
        elif endpoint == "cancel" and status == 200:
            self.notify("payment_intent.canceled", body)
        elif endpoint == "refund" and status == 200:
            self.notify("refund.created", body)

    def notify(self, kind: str, thing: dict, *, after: float = 0.0, followed=False) -> None:
        event_id = "evt_" + secrets.token_hex(12)
        event = {"id": event_id, "object": "event", "api_version": "2024-06-20",
                 "created": int(time.time()), "type": kind, "livemode": False,
                 "data": {"object": thing}, "pending_webhooks": 1}  # fmt: skip
        body = json.dumps(event).encode()
        secret = self.credentials["webhook_secret"].encode()

        def build() -> tuple[dict[str, str], bytes]:
            stamp = str(int(time.time()))
            signature = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json; charset=utf-8",
                       "Stripe-Signature": f"t={stamp},v1={signature}"}  # fmt: skip
            return headers, body

        self.webhooks.send(self.provider, event_id, build, after=after, followed=followed)

    # Endpoints -------------------------------------------------------------------------------

    def on_create(self, form: dict, key: str):
        try:
            currency = form["currency"].upper()
            amount = Money.from_minor(int(form["amount"]), currency)
        except KeyError as exc:
            return (
                *self._invalid(f"Missing required param: {exc.args[0]}.", "parameter_missing"),
                None,
            )
        except (ValueError, MoneyError):
            return (
                *self._invalid("Invalid integer or currency.", "parameter_invalid_integer"),
                None,
            )
        token = form.get("payment_method", "")
        if not token:
            return (
                *self._invalid("Missing required param: payment_method.", "parameter_missing"),
                None,
            )
        outcome = outcome_for(token)
        order_id = form.get("metadata[invoice]", "")
        if outcome.kind == "refuse":
            return (
                401,
                _envelope("invalid_request_error", "Invalid API Key provided: sk_test_****"),
                None,
            )
        if outcome.kind == "misconfigured":
            message = "The provided key does not have the required permissions for this endpoint."
            return 403, _envelope("invalid_request_error", message), None
        intent_id = "pi_" + secrets.token_hex(12)
        if outcome.kind in DECLINES:
            code, decline = DECLINES[outcome.kind]
            self.ledger.add_charge(self.provider, key, order_id, amount.amount, currency,
                                   "requires_payment_method", outcome.moved, charge_id=intent_id)  # fmt: skip
            error = _envelope("card_error", MESSAGES[decline or code], code=code)
            if decline:
                error["error"]["decline_code"] = decline
            error["error"]["payment_intent"] = self._intent(
                self.ledger.charge(self.provider, intent_id)
            )
            return 402, error, outcome.fault
        status = "requires_action" if outcome.kind == "review" else "succeeded"
        charge = self.ledger.add_charge(self.provider, key, order_id, amount.amount, currency,
                                        status, outcome.moved, charge_id=intent_id)  # fmt: skip
        if outcome.kind == "timeout":
            return 500, _envelope("api_error", "An unknown error occurred"), outcome.fault
        return 200, self._intent(charge), outcome.fault

    def on_cancel(self, form: dict, key: str, intent_id: str):
        charge = self.ledger.charge(self.provider, intent_id)
        if charge is None:
            return (*self._missing(intent_id), None)
        if self._status(charge) in ("succeeded", "canceled"):
            message = (f"You cannot cancel this PaymentIntent because it has a status of "
                       f"{self._status(charge)}.")  # fmt: skip
            return (*self._invalid(message, "payment_intent_unexpected_state"), None)
        return 200, self._intent(self.ledger.void(self.provider, intent_id)), None

    def on_refund(self, form: dict, key: str):
        intent_id = form.get("payment_intent", "")
        charge = self.ledger.charge(self.provider, intent_id)
        if charge is None:
            return (*self._missing(intent_id), None)
        charged = Money.parse(charge["amount"], charge["currency"])
        refunded = Money.from_minor(self._refunded_minor(charge), charged.currency)
        if refunded == charged:
            message = f"Charge for {intent_id} has already been refunded."
            return (*self._invalid(message, "charge_already_refunded"), None)
        if self._status(charge) != "succeeded":
            message = (
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund."
            )
            return (*self._invalid(message, "charge_not_refundable"), None)
        left = charged - refunded
        try:
            amount = Money.from_minor(int(form.get("amount", left.minor)), charged.currency)
        except ValueError:
            return (*self._invalid("Invalid integer.", "parameter_invalid_integer"), None)
        if amount > left or not amount.is_positive():
            message = (f"Refund amount ({amount}) is greater than unrefunded amount on charge"
                       f" ({left}).")  # fmt: skip
            return (*self._invalid(message, "amount_too_large"), None)
        self._refunded[intent_id] = (refunded + amount).minor
        self.ledger.refund(self.provider, intent_id, (refunded + amount).amount)
        refund = {"id": "re_" + secrets.token_hex(12), "object": "refund", "amount": amount.minor,
                  "currency": charged.currency.lower(), "payment_intent": intent_id,
                  "status": "succeeded", "metadata": {"settle_key": form.get("metadata[settle_key]", "")}}  # fmt: skip
        return 200, refund, None

    def retrieve(self, intent_id: str) -> Response:
        charge = self.ledger.charge(self.provider, intent_id)
        if charge is None:
            return self.reply(*reversed(self._missing(intent_id)))
        return self.reply(self._intent(charge), 200)

    def search(self, request: Request) -> Response:
        match = _QUERY.match(request.args.get("query", ""))
        if not match:
            return self.error(
                400,
                "invalid_request_error",
                "Sandbox: only metadata['settle_key'] or metadata['invoice'] searches.",
            )
        field, value = match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))
        found = (
            self.ledger.find(self.provider, key=value)
            if field == "settle_key"
            else self.ledger.find(self.provider, order_id=value)
        )
        body = {"object": "search_result", "url": "/v1/payment_intents/search", "has_more": False,
                "data": [self._intent(c) for c in found]}  # fmt: skip
        return self.reply(body, 200)

    def listed(self, request: Request) -> Response:
        """Intents created in [created[gte], created[lt]), oldest first here, a page at a time."""
        try:
            since = float(request.args["created[gte]"])
            until = float(request.args["created[lt]"])
            limit = min(100, int(request.args.get("limit", 10)))
        except (KeyError, ValueError):
            return self.error(
                400, "invalid_request_error", "Sandbox: give created[gte] and created[lt]."
            )
        after = request.args.get("starting_after")
        page = self.ledger.listed(self.provider, since, until, after, limit + 1)
        body = {"object": "list", "url": "/v1/payment_intents", "has_more": len(page) > limit,
                "data": [self._intent(c) for c in page[:limit]]}  # fmt: skip
        return self.reply(body, 200)

    # Answers ---------------------------------------------------------------------------------

    @staticmethod
    def _status(charge: dict) -> str:
        if charge["state"] == "voided":
            return "canceled"
        return charge["code"]

    def _refunded_minor(self, charge: dict) -> int:
        """What the charge has given back; one the ledger holds as refunded that this process
        has no record of (the sandbox restarted) was refunded whole, as before partial refunds."""
        if charge["id"] in self._refunded:
            return self._refunded[charge["id"]]
        if charge["state"] == "refunded":
            return Money.parse(charge["amount"], charge["currency"]).minor
        return 0

    def _intent(self, charge: dict) -> dict:
        held = Money.parse(charge["amount"], charge["currency"])
        status = self._status(charge)
        refunded = self._refunded_minor(charge)
        return {
            "id": charge["id"],
            "object": "payment_intent",
            "amount": held.minor,
            "amount_received": held.minor if status == "succeeded" else 0,
            "currency": held.currency.lower(),
            "status": status,
            "created": int(datetime.fromisoformat(charge["created"]).timestamp()),
            "metadata": {"invoice": charge["order_id"], "settle_key": charge["idempotency_key"]},
            # As with expand[]=latest_charge (the API version 2022-11-15 on: no refunds list).
            "latest_charge": {
                "id": "ch_" + charge["id"][3:],
                "object": "charge",
                "amount": held.minor,
                "amount_captured": held.minor if status == "succeeded" else 0,
                "amount_refunded": refunded,
                "currency": held.currency.lower(),
                "refunded": refunded > 0 and refunded == held.minor,
            },  # fmt: skip
            "livemode": False,
        }

    def _invalid(self, message: str, code: str) -> tuple[int, dict]:
        return 400, _envelope("invalid_request_error", message, code=code)

    def _missing(self, intent_id: str) -> tuple[int, dict]:
        return 404, _envelope(
            "invalid_request_error",
            f"No such payment_intent: '{intent_id}'",
            code="resource_missing",
        )

    @staticmethod
    def reply(body: dict, status: int) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    def error(self, status: int, kind: str, message: str) -> Response:
        return self.reply(_envelope(kind, message), status)


def _envelope(kind: str, message: str, code: str | None = None) -> dict:
    error = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return {"error": error}


EMULATOR = StripeEmulator
