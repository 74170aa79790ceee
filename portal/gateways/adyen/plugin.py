"""The Adyen plugin: the Checkout API (v71, JSON, X-API-Key).

- A charge is a merchant-initiated payment with a stored card: POST /payments with
  paymentMethod {type: scheme, storedPaymentMethodId}, shopperReference, shopperInteraction
  ContAuth and recurringProcessingModel UnscheduledCardOnFile, the amount in minor units, and
  Settle's key as the merchant reference and the Idempotency-Key header (Adyen returns the first
  answer to a repeated key). A refused payment is HTTP 200 with resultCode Refused (or Error,
  Cancelled) and a refusalReasonCode; an error is a 4xx/5xx with {status, errorCode, message,
  errorType}.
- A payment method token is "shopperReference|storedPaymentMethodId".
- A refusal told only by its refusalReason text (an AUTHORISATION notification's reason, a
  refusal without its code) is read by the refusal line that publishes that text (codes.yaml,
  rule 5); Adyen's risk refusals (FRAUD, FRAUD-CANCELLED) are never retried on the schedule.
- An answer decides only for its own request: an error envelope by its errorCode alone, whatever
  pspReference or resultCode it carries; a payment's answer when its merchantReference is
  Settle's key; a cancel's, refund's or reversal's when it names the payment asked of, Settle's
  key and (a refund) the amount asked. Any other answer is Indeterminate: this request's fate
  is unknown.
- Cancels (void), refunds and reversals (cancel, or refund once captured) are asynchronous:
  POST /payments/{pspReference}/cancels|refunds|reversals answers 201 {status: received}, and the
  outcome arrives by webhook (CANCELLATION, REFUND, CANCEL_OR_REFUND). Until then a refund or void
  is "asked, waiting for Adyen's confirmation" (Requires Review), never done.
- Adyen has no lookup by reference (its docs recommend webhooks "to keep track of missing
  responses"). So, as Payeezy's does, the plugin says so: its "lookup" is a reversal, which moves
  money (it refunds a captured payment), made only by Attempt Refund & Unlock Invoice; its
  confirmation by webhook finishes the Refund & Unlock.
- Webhooks (standard notifications): each notification item carries additionalData.hmacSignature,
  the base64 HMAC-SHA256, keyed with the hex HMAC key, of pspReference, originalReference,
  merchantAccountCode, merchantReference, amount value, amount currency, eventCode and success
  joined by ":" (no escaping); every item of a delivery is verified, and where a webhook username is
  set, the delivery's HTTP Basic credentials too.

Sources: Adyen/adyen-python-api-library@b6f4979 (services/checkout/payments_api.py,
modifications_api.py, client.py IDEMPOTENCY_HEADER_NAME, util.py is_valid_hmac_notification and its
tests), Adyen/adyen-openapi@aa014f0 (CheckoutService-v71.json, Webhooks-v1.json),
docs.adyen.com/development-resources/refusal-reasons, /api-idempotency,
/webhooks/verify-hmac-signatures, /webhooks/best-practices; Settle's reference notes gateways.md
section 7.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import quote

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
from portal.money import Money, MoneyError
from portal.statuses import GatewayStatus

# Required by the v71 schema, never used for a merchant-initiated payment (no shopper to send
# back); ".invalid" is reserved (RFC 2606).
RETURN_URL = "https://settle.invalid/adyen-return"
# resultCodes that carry a refusal reason (docs.adyen.com/development-resources/refusal-reasons).
REFUSED = frozenset({"Refused", "Error", "Cancelled"})
# Notification events about an undo, and which undo: a reversal tells it in modification.action.
UNDO_EVENTS = {"CANCELLATION": "void", "REFUND": "refund", "CANCEL_OR_REFUND": None,
               "REFUND_FAILED": "refund", "REFUNDED_REVERSED": "refund"}  # fmt: skip
_SECRETS = re.compile(
    r'("(?:storedPaymentMethodId|shopperReference|hmacSignature)"\s*:\s*")[^"]*(")'
)


class AdyenGateway(Gateway):
    name = "adyen"
    display_name = "Adyen"
    required_credentials = ("api_key", "merchant_account")
    live_hosts = (".adyenpayments.com",)
    test_hosts = ("checkout-test.adyen.com", "pal-test.adyen.com")
    # The webhook endpoint's HMAC key (hex) and, if set in the Customer Area, its basic auth.
    optional_credentials = ("hmac_key", "webhook_username", "webhook_password")
    webhook_credential = "hmac_key"
    webhook_accepted = "[accepted]"  # what Adyen's webhook test expects as the answer's body
    # No read-only lookup: asking is a reversal, which cancels or refunds the payment.
    lookup_moves_money = True
    lookup_may_refund = True
    # No Finding.refunded: Adyen has no lookup or listing to tell it; each refund has its webhook.
    invoice_listing = None
    not_reconcilable = (
        "Adyen's Checkout API lists no payments (its settlement details report is a file in the"
        " Customer Area): Settle does not read it yet."
    )

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        creds = self.config.credentials
        base = self.config.base_url.rstrip("/")
        headers = {"X-API-Key": creds["api_key"], "Content-Type": "application/json",
                   "Accept": "application/json", "Idempotency-Key": request.idempotency_key}  # fmt: skip
        account = creds["merchant_account"]
        if operation == "charge":
            if request.amount is None or not request.token:
                raise CallNotMade("a payment needs an amount and a stored payment method")
            shopper, _, method = request.token.rpartition("|")
            if not shopper or not method:
                raise CallNotMade(
                    "an Adyen payment method is stored as 'shopperReference|storedPaymentMethodId'"
                )
            body = {
                "merchantAccount": account,
                "reference": request.idempotency_key,
                "amount": {"value": request.amount.minor, "currency": request.amount.currency},
                "paymentMethod": {"type": "scheme", "storedPaymentMethodId": method},
                "shopperReference": shopper,
                "shopperInteraction": "ContAuth",
                "recurringProcessingModel": "UnscheduledCardOnFile",
                "returnUrl": RETURN_URL,
                "metadata": {"invoice": request.order_id[:80]},
            }
            return HttpCall("POST", f"{base}/payments", headers, json.dumps(body))
        if operation not in ("void", "refund", "lookup"):
            raise CallNotMade(f"unknown operation {operation!r}")
        if not request.reference:
            raise CallNotMade(
                "Adyen has no lookup: Settle can only ask it to cancel or refund a payment whose"
                " pspReference it knows; the payment's AUTHORISATION webhook tells it"
            )
        path = {"void": "cancels", "refund": "refunds", "lookup": "reversals"}[operation]
        body = {"merchantAccount": account, "reference": request.idempotency_key}
        if operation == "refund":
            if request.amount is None:
                raise CallNotMade("a refund needs an amount")
            body["amount"] = {"value": request.amount.minor, "currency": request.amount.currency}
        url = f"{base}/payments/{quote(request.reference, safe='')}/{path}"
        return HttpCall("POST", url, headers, json.dumps(body))

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        if http_status >= 500:
            return self.mapped(f"http_{http_status}", None)
        data = self.json_object(http_status, body) if body.strip() else {}
        if isinstance(data, GatewayResult):
            return data if http_status < 300 else self.mapped(f"http_{http_status}", None)
        if http_status >= 300 or _is_error(data):
            return self._error(http_status, data)
        reference = data.get("pspReference")
        if operation == "charge":
            result = str(data.get("resultCode") or "")
            code = str(data.get("refusalReasonCode") or "")
            if result in REFUSED and code:
                return self.mapped(
                    f"refusal.{code}", data.get("refusalReason"), reference=reference
                )
            if result in REFUSED and _text(data.get("refusalReason")):
                return self._refusal_by_text(
                    data["refusalReason"], f"resultCode.{result}", reference=reference
                )
            if not result:
                return self.unreadable("a payment answer without its resultCode")
            return self.mapped(f"resultCode.{result}", None, reference=reference)
        if data.get("status") != "received" or not reference:
            return self.unreadable(f"a {operation} answered without status received")
        received = self.mapped(f"{operation}.received", None, reference=reference)
        return replace(received, awaiting_confirmation=True)

    def _error(self, http_status: int, data: dict) -> GatewayResult:
        """An error answer is decided by its own error alone: the pspReference it carries names
        the failed request, and any resultCode in it is no payment of this request's."""
        if data.get("errorCode"):
            return self.mapped(f"error.{data['errorCode']}", _text(data.get("message")) or None)
        if http_status < 300:  # Adyen's error envelope with a 2xx status contradicts itself
            return self.unreadable(f"HTTP {http_status} with an error envelope and no errorCode")
        return self.mapped(f"http_{http_status}", None)

    def _refusal_by_text(self, text: str, fallback: str, **kwargs) -> GatewayResult:
        """A refusal told by its refusalReason text alone (an AUTHORISATION notification's
        reason, a refused payment without its refusalReasonCode): the refusal.N line whose
        description is that published text, matched without regard to case, spacing or a final
        dot, and, where the whole text matches none, by the part before its first colon (the
        free text Adyen may append). A text none describes keeps `fallback`'s status, marked
        unmapped under "reason." and the text, so a supervisor sees it in the queue."""
        code = self._published_reasons().get(_folded(text))
        if code is None and ":" in text:
            code = self._published_reasons().get(_folded(text.partition(":")[0]))
        if code is not None:
            return self.mapped(code, text, **kwargs)
        result = self.mapped(f"reason.{' '.join(text.split())}"[:40], text, **kwargs)
        if not result.unmapped:  # a supervisor's own line for this text
            return result
        fell_back = self.mapping.lookup(fallback)
        return replace(
            result,
            status=fell_back.status,
            rule=f"unmapped refusal reason: {fallback}, {self.mapping.rule_for(fell_back)}",
            guidance=(
                "Unmapped refusal reason: find its refusalReasonCode in Adyen's refusal reasons"
                " and make this text that refusal line's description in codes.yaml. Meanwhile: "
                + fell_back.guidance
            ),
        )

    def _published_reasons(self) -> dict[str, str]:
        """Adyen's published refusalReason texts, folded, to their mapping keys: the refusal
        lines' own descriptions, so that each reason's rule is written once (refusal.0 is
        Adyen's "(none)", no text)."""
        return {
            _folded(entry.description): key
            for key, entry in self.mapping.codes.items()
            if key.startswith("refusal.") and key != "refusal.0"
        }

    def _call(self, operation: str, request: GatewayRequest) -> GatewayResult:
        return self._for_this_request(operation, request, super()._call(operation, request))

    def _for_this_request(
        self, operation: str, request: GatewayRequest, result: GatewayResult
    ) -> GatewayResult:
        """An answer counts only when it is this request's: a payment's merchantReference is
        Settle's key, a cancel's, refund's or reversal's paymentPspReference is the payment
        asked of, its reference Settle's key and a refund's amount the one asked. An answer
        about another payment says nothing of this one, which may have moved money."""
        response = result.raw.get("response") or {}
        if not 200 <= (response.get("http_status") or 0) < 300:
            return result
        try:
            data = json.loads(response.get("body") or "")
        except ValueError:
            return result
        if not isinstance(data, dict) or _is_error(data):
            return result
        if operation == "charge":
            told = data.get("merchantReference")
            other = None if told in (None, request.idempotency_key) else f"payment {told}"
        else:
            other = _other_modification(data, request, operation)
        if other is None:
            return result
        why = (
            f"Adyen answered about {other}, not this {operation} ({request.idempotency_key}):"
            " whether this one was carried out is unknown"
        )
        return replace(self.unreadable(why), raw=result.raw)

    # Webhooks ---------------------------------------------------------------------------------

    def verify_webhook(self, headers: dict, body: bytes, credentials: dict) -> bool:
        """Every notification item's hmacSignature, and the basic auth where one is set."""
        try:
            key = bytes.fromhex(credentials.get("hmac_key") or "")
        except ValueError:
            return False
        if not key or not self._basic_auth_ok(headers, credentials):
            return False
        try:
            items = _items(body)
        except UnreadableWebhook:
            return False
        for item in items:
            signature = (item.get("additionalData") or {}).get("hmacSignature")
            if not isinstance(signature, str) or not signature.isascii():
                return False
            digest = hmac.new(key, _signed_data(item).encode("utf-8"), hashlib.sha256).digest()
            if not hmac.compare_digest(base64.b64encode(digest).decode(), signature):
                return False
        return True

    @staticmethod
    def _basic_auth_ok(headers: dict, credentials: dict) -> bool:
        user = credentials.get("webhook_username") or ""
        if not user:
            return True  # none set in the Customer Area: the HMAC alone proves the sender
        expected = f"{user}:{credentials.get('webhook_password') or ''}".encode()
        header = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, encoded = header.partition(" ")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return scheme.lower() == "basic" and hmac.compare_digest(given, expected)

    def read_webhook(self, body: bytes) -> list[Notice]:
        """Each notification item is one event. Adyen gives an item no id: its event code, its
        pspReference and its success name it, and a re-delivery has the same three."""
        return [self._notice(item) for item in _items(body)]

    def _notice(self, item: dict) -> Notice:
        code, success = str(item.get("eventCode") or ""), str(item.get("success") or "")
        psp = item.get("pspReference")
        if not code or not psp:
            raise UnreadableWebhook("a notification item without its eventCode and pspReference")
        amount = _money(item.get("amount"))
        about = {"event_id": f"{code}/{psp}/{success}", "event_type": code, "reference": psp,
                 "key": item.get("merchantReference"), "amount": amount,
                 "occurred_at": _time(item.get("eventDate"))}  # fmt: skip
        reason = _text(item.get("reason")) if item.get("reason") != "null" else None
        if code == "AUTHORISATION":
            if success == "false" and reason:
                result = self._refusal_by_text(reason, "AUTHORISATION.false", reference=psp)
            else:
                result = self.mapped(f"AUTHORISATION.{success}", reason, reference=psp)
            operation = "charge"
        elif code in UNDO_EVENTS:
            action = (item.get("additionalData") or {}).get("modification.action")
            operation = UNDO_EVENTS[code] or ("void" if action == "cancel" else "refund")
            key = code if code in ("REFUND_FAILED", "REFUNDED_REVERSED") else f"{code}.{success}"
            result = self.mapped(key, reason, reference=psp)
            if result.status is GatewayStatus.SUCCESS:
                state = Settlement.VOIDED if operation == "void" else Settlement.REFUNDED
                found = Finding(state, amount, item.get("originalReference"), code=key)
                result = replace(result, findings=(found,))
        else:
            return Notice(**about, operation=None, final=False, result=None)
        result = replace(result, event=about["event_id"])
        return Notice(**about, operation=operation, final=True, result=result)

    def scrub(self, text: str) -> str:
        """No stored payment method id, shopper reference, card data or signature is stored:
        of additionalData only what Settle reads is kept, and an authorisation's reason (auth
        code, last four digits, expiry) is not."""
        try:
            data = json.loads(text)
        except ValueError:
            return _SECRETS.sub(r"\1[FILTERED]\2", text)
        return json.dumps(_scrubbed(data))


# What of a payment's or a notification's additionalData is kept when it is stored.
KEPT_ADDITIONAL = frozenset({"modification.action", "refusalReasonRaw", "paymentMethodVariant"})
SECRET_FIELDS = frozenset({"storedPaymentMethodId", "shopperReference", "shopperEmail",
                           "holderName", "cardHolderName", "hmacSignature"})  # fmt: skip


def _scrubbed(value):
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    if not isinstance(value, dict):
        return value
    kept = {}
    for key, item in value.items():
        if key == "additionalData" and isinstance(item, dict):
            kept[key] = {k: v for k, v in item.items() if k in KEPT_ADDITIONAL}
        elif (
            key in SECRET_FIELDS
            or key == "reason"
            and value.get("eventCode") == "AUTHORISATION"
            and value.get("success") == "true"
        ):
            kept[key] = "[FILTERED]"
        else:
            kept[key] = _scrubbed(item)
    return kept


def _items(body: bytes) -> list[dict]:
    try:
        data = json.loads(body)
        items = [w["NotificationRequestItem"] for w in data["notificationItems"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise UnreadableWebhook(f"not an Adyen notification ({type(exc).__name__})") from None
    if not items or not all(isinstance(i, dict) for i in items):
        raise UnreadableWebhook("an Adyen notification without its items")
    return items


def _signed_data(item: dict) -> str:
    """What Adyen signs of an item: eight values joined by ':', a missing one empty, the amount's
    value as sent (util.py generate_notification_sig)."""
    amount = item.get("amount") if isinstance(item.get("amount"), dict) else {}
    values = [item.get("pspReference"), item.get("originalReference"),
              item.get("merchantAccountCode"), item.get("merchantReference"), amount.get("value"),
              amount.get("currency"), item.get("eventCode"), item.get("success")]  # fmt: skip
    return ":".join("" if v is None else str(v) for v in values)


def _is_error(data: dict) -> bool:
    """Adyen's error envelope {status, errorCode, message, errorType}: no payment answer has
    errorCode or errorType."""
    return bool(data.get("errorCode") or data.get("errorType"))


def _text(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _folded(text: str) -> str:
    return " ".join(text.split()).rstrip(".").strip().casefold()


def _other_modification(data: dict, request: GatewayRequest, operation: str) -> str | None:
    """What a cancel, refund or reversal answer is about where that is not this request."""
    payment = data.get("paymentPspReference")
    if payment != request.reference:
        return f"payment {payment}" if payment else "no payment it names"
    if data.get("reference") not in (None, request.idempotency_key):
        return f"the request {data['reference']}"
    if operation == "refund" and "amount" in data and _money(data["amount"]) != request.amount:
        return f"a refund of {_money(data['amount']) or 'an amount Settle cannot read'}"
    return None


def _money(amount) -> Money | None:
    try:
        return Money.from_minor(int(amount["value"]), str(amount["currency"]))
    except (KeyError, TypeError, ValueError, MoneyError):
        return None


def _time(text) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)).astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        return None


PLUGIN = AdyenGateway
