"""The Stripe plugin: PaymentIntents over Stripe's v1 API (form-encoded, Bearer secret key).

- A charge confirms a saved payment method off-session: POST /v1/payment_intents with
  confirm=true&off_session=true, the amount in the currency's minor units (none for JPY), and
  Settle's key both as the Idempotency-Key header (Stripe answers a repeated key with its first
  answer, a 500 included, for at least 24 hours) and in metadata[settle_key].
- A payment method token is Stripe's PaymentMethod id ("pm_..."); where it is attached to a
  Customer, Settle stores "cus_...|pm_..." and both are sent.
- A void cancels an intent that has not succeeded (POST /v1/payment_intents/{id}/cancel); money a
  succeeded intent took is given back by a refund (POST /v1/refunds).
- A lookup reads the intent by its id (GET /v1/payment_intents/{id}, strongly consistent) when
  Settle knows it, else searches by metadata (GET /v1/payment_intents/search). Stripe's search may
  lag up to an hour behind a write, so "nothing found" within that hour of the charge is no proof
  that it never reached Stripe: the lookup then says it cannot tell, and the janitor asks again.

Sources: stripe/stripe-python (_api_requestor.py, _http_client.py, _payment_intent.py, _refund.py),
docs.stripe.com/api/payment_intents, /api/refunds, /idempotency, /search, /declines/codes; Settle's
reference notes gateways.md section 5.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from portal.gateways.base import (
    CallNotMade,
    Finding,
    Gateway,
    GatewayRequest,
    GatewayResult,
    HttpCall,
    Settlement,
)
from portal.gateways.webhooks import Notice, UnreadableWebhook
from portal.money import Money

# The API version every request asks for (Stripe-Version), so that Stripe answers in the shape
# this plugin reads whatever the account's default version is, or becomes when someone upgrades
# it in the Dashboard. 2022-11-15 replaced an intent's `charges` list with `latest_charge` (read
# below, expanded) and stopped expanding a charge's refunds (so `amount_refunded` is read);
# 2024-06-20 is the last dated version before the named release trains (2024-09-30.acacia) and
# the one the sandbox's Stripe emulation and its recorded events speak. Moving it is a reviewed
# change: read the changelog (docs.stripe.com/changelog) against what interpret() reads.
STRIPE_VERSION = "2024-06-20"
# What an intent's status says Stripe holds; a refunded intent is read from its latest charge.
HELD = {
    "succeeded": Settlement.SETTLED,
    "requires_capture": Settlement.UNSETTLED,
    "processing": Settlement.UNSETTLED,
    "requires_action": Settlement.UNSETTLED,
    "requires_confirmation": Settlement.UNSETTLED,
    "requires_payment_method": Settlement.DECLINED,
    "canceled": Settlement.VOIDED,
}
# Stripe: "data is searchable in less than a minute ... occasionally up to an hour behind".
SEARCH_LAG = timedelta(hours=1)
# Seconds a webhook's signed timestamp may be away from now (a replayed old event is refused).
WEBHOOK_TOLERANCE = 300
# Events after which the intent's outcome no longer changes (docs.stripe.com/payments/paymentintents
# /lifecycle); created, processing and requires_action are on the way there.
FINAL_INTENT_EVENTS = frozenset(
    {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"}
)
FINAL_REFUND_STATES = frozenset({"succeeded", "failed", "canceled"})
# The codes.yaml line that decides a card error none of whose codes the mapping lists.
CARD_ERROR_DEFAULT = "card_error"
# Operations whose own object at Stripe is a payment intent: an error's embedded intent is theirs.
INTENT_OPERATIONS = frozenset({"charge", "void"})
# Refunds that gave, or may still give, money back (a failed or canceled one gave none).
REFUNDS_COUNTED = frozenset({"succeeded", "pending", "requires_action"})
_SECRETS = re.compile(r"(payment_method|customer)=[^&]*")


class StripeGateway(Gateway):
    name = "stripe"
    display_name = "Stripe"
    required_credentials = ("secret_key",)
    live_hosts = ("api.stripe.com",)
    test_hosts = ()
    # The endpoint's signing secret ("whsec_..."), for the webhooks Stripe sends.
    optional_credentials = ("webhook_secret",)
    webhook_credential = "webhook_secret"
    invoice_listing = "payment intent"  # search by metadata['invoice']
    not_reconcilable = None  # GET /v1/payment_intents?created[gte]=&created[lt]= lists a period

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        base = self.config.base_url.rstrip("/")
        headers = {
            "Authorization": f"Bearer {self.config.credentials['secret_key']}",
            "Accept": "application/json",
            "Stripe-Version": STRIPE_VERSION,
        }
        post = {**headers, "Content-Type": "application/x-www-form-urlencoded",
                "Idempotency-Key": request.idempotency_key}  # fmt: skip
        if operation == "charge":
            if request.amount is None or not request.token:
                raise CallNotMade("a charge needs an amount and a payment method")
            customer, _, method = request.token.rpartition("|")
            form = {
                "amount": request.amount.minor,
                "currency": request.amount.currency.lower(),
                "payment_method": method,
                "confirm": "true",
                "off_session": "true",
                "metadata[invoice]": request.order_id,
                "metadata[settle_key]": request.idempotency_key,
            }
            if customer:
                form["customer"] = customer
            return HttpCall("POST", f"{base}/v1/payment_intents", post, urlencode(form))
        if operation in ("void", "refund") and not request.reference:
            raise CallNotMade(f"a {operation} needs Stripe's id of the payment intent")
        if operation == "void":
            path = f"{base}/v1/payment_intents/{quote(request.reference, safe='')}/cancel"
            return HttpCall("POST", path, post, "")
        if operation == "refund":
            form = {
                "payment_intent": request.reference,
                "metadata[settle_key]": request.idempotency_key,
            }
            if request.amount is not None:
                form["amount"] = request.amount.minor
            return HttpCall("POST", f"{base}/v1/refunds", post, urlencode(form))
        if operation == "lookup":
            expand = "expand[]=latest_charge"
            if request.reference:
                path = f"/v1/payment_intents/{quote(request.reference, safe='')}"
                return HttpCall("GET", f"{base}{path}?{expand}", headers)
            field, value = (
                ("settle_key", request.original_key)
                if request.original_key
                else ("invoice", request.order_id)
            )
            query = urlencode({"query": f"metadata['{field}']:'{_quoted(value)}'", "limit": 100})
            return HttpCall("GET", f"{base}/v1/payment_intents/search?{query}&{expand}", headers)
        if operation == "list":
            since, until = request.period
            query = {
                "created[gte]": int(since.replace(tzinfo=UTC).timestamp()),
                "created[lt]": int(until.replace(tzinfo=UTC).timestamp()),
                "limit": 100,
                "expand[]": "data.latest_charge",
            }
            if request.cursor:
                query["starting_after"] = request.cursor
            return HttpCall("GET", f"{base}/v1/payment_intents?{urlencode(query)}", headers)
        raise CallNotMade(f"unknown operation {operation!r}")

    def verify_webhook(self, headers: dict, body: bytes, credentials: dict) -> bool:
        """Stripe-Signature "t=<unix time>,v1=<hex>[,v1=...]": HMAC-SHA256 of "<t>.<body>" with
        the endpoint's secret, and t within 5 minutes (docs.stripe.com/webhooks/signatures;
        stripe-python's WebhookSignature, DEFAULT_TOLERANCE = 300)."""
        secret = credentials.get("webhook_secret") or ""
        header = next((v for k, v in headers.items() if k.lower() == "stripe-signature"), "")
        pairs = [part.split("=", 1) for part in header.split(",") if "=" in part]
        stamps = [v for k, v in pairs if k.strip() == "t"]
        # Only ASCII: compare_digest refuses other text, and int() reads other scripts' digits.
        signatures = [v.strip() for k, v in pairs if k.strip() == "v1" and v.isascii()]
        stamp_ok = len(stamps) == 1 and stamps[0].strip().isascii() and stamps[0].strip().isdigit()
        if not secret or not stamp_ok or not signatures:
            return False
        stamp = stamps[0].strip()
        if abs(time.time() - int(stamp)) > WEBHOOK_TOLERANCE:
            return False
        signed = stamp.encode() + b"." + body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(expected, s) for s in signatures)

    def read_webhook(self, body: bytes) -> list[Notice]:
        """One Event object per delivery (docs.stripe.com/api/events/object): its data.object is
        the payment intent or refund as it stands after the event."""
        try:
            event = json.loads(body)
            kind, thing = event["type"], event["data"]["object"]
            event_id, created = str(event["id"]), int(event["created"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UnreadableWebhook(f"not a Stripe event ({type(exc).__name__}: {exc})") from None
        if event.get("object") != "event" or not isinstance(thing, dict):
            raise UnreadableWebhook("not a Stripe event object")
        at = datetime.fromtimestamp(created, UTC).replace(tzinfo=None)
        told = {"event_id": event_id, "event_type": str(kind), "occurred_at": at}
        metadata = thing.get("metadata") if isinstance(thing.get("metadata"), dict) else {}
        try:
            amount = Money.from_minor(int(thing["amount"]), str(thing["currency"]).upper())
        except (KeyError, TypeError, ValueError):
            amount = None
        about = {"reference": thing.get("id"), "key": metadata.get("settle_key"),
                 "order_id": metadata.get("invoice"), "amount": amount}  # fmt: skip
        if kind.startswith("payment_intent.") and thing.get("object") == "payment_intent":
            status = str(thing.get("status"))
            error = thing.get("last_payment_error")
            if kind == "payment_intent.payment_failed" and isinstance(error, dict):
                result = self._error(402, error, "charge")
            elif kind == "payment_intent.canceled":
                result = self.mapped("void.canceled", None)
            else:
                result = self.mapped(f"charge.{status}", None)
            operation = "void" if kind == "payment_intent.canceled" else "charge"
            final = kind in FINAL_INTENT_EVENTS
        elif kind.startswith("refund.") and thing.get("object") == "refund":
            status = str(thing.get("status"))
            result, operation = self.mapped(f"refund.{status}", None), "refund"
            final = status in FINAL_REFUND_STATES
        else:
            return [Notice(**told, operation=None, final=False, result=None, **about)]
        result = replace(result, reference=thing.get("id"), event=event_id)
        return [Notice(**told, operation=operation, final=final, result=result, **about)]

    def lookup(self, request: GatewayRequest) -> GatewayResult:
        result = super().lookup(request)
        searched = not request.reference and request.original_key
        if searched and not result.findings and result.code == "lookup.found":
            why = "Stripe's search found nothing, but it may lag up to an hour behind"
            return self.too_soon_to_tell(request, SEARCH_LAG, result, why)
        return result

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        data = self.json_object(http_status, body)
        if isinstance(data, GatewayResult):
            return data
        if isinstance(data.get("error"), dict):
            return self._error(http_status, data["error"], operation)
        if http_status >= 300:
            return self.mapped(f"http_{http_status}", None)
        kind = data.get("object")
        if operation in ("lookup", "list"):
            return self._lookup(data)
        if kind == "payment_intent" and operation in ("charge", "void"):
            return self.mapped(f"{operation}.{data.get('status')}", None, reference=data.get("id"))
        if kind == "refund" and operation == "refund":
            refund = self.mapped(f"refund.{data.get('status')}", None, reference=data.get("id"))
            return replace(refund, awaiting_confirmation=data.get("status") == "pending")
        return self.unreadable(f"a {operation} answered with a {kind or 'nameless'} object")

    def _error(self, http_status: int, error: dict, operation: str) -> GatewayResult:
        """Stripe's error envelope. Its own error decides: the first of its decline_code, its
        code, and its type with the HTTP status that the mapping lists (a card error with none
        of them listed is read by the mapping's card_error line). A code read past is still
        reported, unmapped, so that a supervisor adds it: the result carries the most telling
        code Stripe gave, the status of the line that decided it.

        The payment intent an error carries is the result's reference only where it is this
        request's own: the intent a charge created, or the intent a void cancels. A refund's
        error carries the charge being refunded (a succeeded intent), which is not the refund."""
        told = [str(c) for c in (error.get("decline_code"), error.get("code")) if c]
        kind = f"{error.get('type') or 'error'}_{http_status}"
        candidates = [*told, kind]
        if error.get("type") == "card_error":
            candidates.append(CARD_ERROR_DEFAULT)
        code = told[0] if told else kind
        known = next((c for c in candidates if c in self.mapping.codes), None)
        intent = error.get("payment_intent")
        own = isinstance(intent, dict) and operation in INTENT_OPERATIONS
        reference = intent.get("id") if own else None
        if known is None or known == code:
            return self.mapped(code, error.get("message"), reference=reference)
        entry = self.mapping.codes[known]
        return GatewayResult(
            status=entry.status,
            code=code,
            message=error.get("message") or entry.description,
            reference=reference,
            unmapped=True,
            rule=f"{self.mapping.rule_for(entry)} ({known}): {code} unmapped",
            guidance=f"{entry.guidance} ({code} is not in codes.yaml yet: add it after"
            " checking Stripe's docs.)",
        )

    def _lookup(self, data: dict) -> GatewayResult:
        listed = data.get("object") in ("search_result", "list")
        intents = data.get("data") if listed else [data]
        has_more = bool(data.get("has_more"))
        return self.found(
            "lookup.found", intents, self._finding, "payment intent", has_more=has_more
        )

    @staticmethod
    def _finding(intent: dict) -> Finding:
        if intent.get("object") != "payment_intent":
            raise ValueError(f"not a payment intent: {intent.get('object')!r}")
        status = str(intent["status"])
        state = HELD.get(status, Settlement.UNSETTLED)
        currency = str(intent["currency"]).upper()
        amount = Money.from_minor(int(intent["amount"]), currency)
        charge = (
            intent.get("latest_charge") if isinstance(intent.get("latest_charge"), dict) else {}
        )
        refunded = _refunded(charge, amount)
        if state is Settlement.SETTLED and (
            charge.get("refunded") or (refunded is not None and refunded >= amount)
        ):
            state = Settlement.REFUNDED
        metadata = intent.get("metadata") or {}
        return Finding(
            state=state,
            amount=amount,
            reference=intent["id"],
            at=datetime.fromtimestamp(int(intent["created"]), UTC).replace(tzinfo=None),
            code=f"charge.{status}",
            key=metadata.get("settle_key"),
            order_id=metadata.get("invoice"),
            refunded=refunded,
        )

    def scrub(self, text: str) -> str:
        """Stored bodies keep no payment method or customer id; answers carry neither in full
        (client_secret is never asked for)."""
        if text.lstrip().startswith("{"):
            return re.sub(r'("(?:payment_method|customer|client_secret)"\s*:\s*")[^"]*(")',
                          r"\1[FILTERED]\2", text)  # fmt: skip
        return _SECRETS.sub(r"\1=[FILTERED]", text)


def _refunded(charge: dict, amount: Money) -> Money | None:
    """What a charge has given back, in the intent's currency: its amount_refunded (minor units;
    Stripe keeps it on every charge), else the sum of its refunds list where that was expanded,
    else, for a charge that says it is refunded and nothing more, all of it. None where the
    answer tells nothing of refunds (latest_charge not expanded)."""
    if charge.get("amount_refunded") is not None:
        return Money.from_minor(int(charge["amount_refunded"]), amount.currency)
    refunds = charge.get("refunds")
    if isinstance(refunds, dict) and isinstance(refunds.get("data"), list):
        minor = sum(int(r["amount"]) for r in refunds["data"] if r.get("status") in REFUNDS_COUNTED)
        return Money.from_minor(minor, amount.currency)
    if charge.get("refunded"):
        return amount
    return None


def _quoted(value: str) -> str:
    """A value inside a search query's single quotes (Stripe escapes a quote with a backslash)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


PLUGIN = StripeGateway
