"""The Adyen emulation: the Checkout API's payments and modifications, mounted at /adyen.

It answers as Adyen does: an X-API-Key (401 with Adyen's error envelope otherwise), the merchant
account checked (403, 901), JSON bodies, a refused payment as HTTP 200 with resultCode Refused and
a refusalReasonCode, an Idempotency-Key whose first answer (a 500 included) answers every repeat,
pspReferences of 16 characters. Cancels, refunds and reversals answer 201 {status: received} and
happen later: when the sandbox sends their notification (CANCELLATION, REFUND, CANCEL_OR_REFUND),
after the webhook delay, or at once where no webhook endpoint is registered. Every payment is told
by an AUTHORISATION notification, signed with the HMAC key as Adyen signs each item, and sent with
the webhook's basic auth.

This emulation's choices (Adyen's test cards choose outcomes by holder name and card): "tok_review"
answers resultCode Pending and stays pending (no AUTHORISATION is sent for it: a clerk finishes
it, by a Refund & Unlock whose reversal Adyen confirms); "tok_timeout"
answers 500 after authorising; "tok_misconfigured" answers 403 (010 Not allowed); "tok_unknown"
answers a refusalReasonCode no mapping knows. A payment method "shopper|tok_..." is read by its
token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import threading
from datetime import UTC, datetime

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from portal.money import Money, MoneyError
from portal.sandbox.emulator import Emulator, outcome_for

# Outcome kind -> (refusalReasonCode, refusalReason) of a refused payment.
REFUSALS = {
    "decline": ("12", "Not enough balance"),
    "do_not_honor": ("2", "Refused"),
    "cvc": ("24", "CVC Declined"),
    "address": ("32", "AVS Declined"),
    "closed": ("5", "Blocked Card"),
    "unknown": ("99", "Sandbox: a refusal reason no mapping knows"),
}
_ALPHABET = string.ascii_uppercase + string.digits
# The signed fields of a notification item, in Adyen's order.
SIGNED = ("pspReference", "originalReference", "merchantAccountCode", "merchantReference")


class AdyenEmulator(Emulator):
    provider = "adyen"
    credentials = {
        "api_key": "AQE_settle_sandbox_adyen",
        "merchant_account": "SettleSandboxECOM",
        "hmac_key": "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
        "webhook_username": "settle_sandbox_adyen",
        "webhook_password": "adyen-sandbox-webhook",
    }

    urls = Map(
        [
            Rule("/payments", methods=["POST"], endpoint="payment"),
            Rule("/payments/<psp>/<kind>", methods=["POST"], endpoint="modification"),
        ]
    )

    def __init__(self, ledger, faults, webhooks=None):
        super().__init__(ledger, faults, webhooks)
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        try:
            endpoint, args = self.urls.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return _reply(_error(exc.code or 404, "000", "HTTP Status Response - Not Found",
                                 "validation"), exc.code or 404)  # fmt: skip
        if request.headers.get("X-API-Key") != self.credentials["api_key"]:
            return _reply(
                _error(401, "000", "HTTP Status Response - Unauthorized", "security"), 401
            )
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return _reply(_error(422, "14_018", "Invalid payload provided", "validation"), 422)
        if body.get("merchantAccount") != self.credentials["merchant_account"]:
            return _reply(_error(403, "901", "Invalid Merchant Account", "security"), 403)
        key = request.headers.get("Idempotency-Key", "")
        operation = endpoint if endpoint == "payment" else args.get("kind", "")
        if key and (kept := self.ledger.reply_for(self.provider, key, operation)) is not None:
            return _reply(json.loads(kept[1]), kept[0], key)
        with self._lock:
            if endpoint == "payment":
                status, answer, fault, then = self.on_payment(body, key)
            else:
                status, answer, fault, then = self.on_modification(body, **args)
            if key:
                self.ledger.keep_reply(self.provider, key, operation, status, answer)
        if then is not None:
            then()
        return self.deliver(_reply(answer, status, key), fault)

    # Endpoints -------------------------------------------------------------------------------

    def on_payment(self, body: dict, key: str):
        try:
            amount = Money.from_minor(int(body["amount"]["value"]), str(body["amount"]["currency"]))
        except (KeyError, TypeError, ValueError, MoneyError):
            return 422, _error(422, "100", "No amount specified", "validation"), None, None
        reference = str(body.get("reference") or "")
        if not reference:
            return 422, _error(422, "130", "Reference Missing", "validation"), None, None
        method = body.get("paymentMethod") or {}
        token = str(method.get("storedPaymentMethodId") or "")
        if not token or not body.get("shopperReference"):
            message = "Required field 'shopperReference' or storedPaymentMethodId is not provided."
            return 422, _error(422, "0", message, "validation"), None, None
        outcome = outcome_for(token)
        if outcome.kind == "refuse":
            return (401, _error(401, "000", "HTTP Status Response - Unauthorized", "security"),
                    None, None)  # fmt: skip
        if outcome.kind == "misconfigured":
            return 403, _error(403, "010", "Not allowed", "security"), None, None
        psp = _psp()
        refused = outcome.kind in REFUSALS
        code = "Refused" if refused else ("Pending" if outcome.kind == "review" else "Authorised")
        self.ledger.add_charge(self.provider, key, reference, amount.amount, amount.currency,
                               code, outcome.moved or not refused, charge_id=psp)  # fmt: skip
        answer = {"pspReference": psp, "resultCode": code, "merchantReference": reference}
        if refused:
            answer["refusalReasonCode"], answer["refusalReason"] = REFUSALS[outcome.kind]
        else:
            answer["amount"] = {"value": amount.minor, "currency": amount.currency}

        def tell() -> None:
            if code == "Pending":
                return  # still pending: nothing to tell yet
            reason = answer.get("refusalReason") if refused else "sandbox:0000:12/2030"
            self.notify("AUTHORISATION", psp, None, reference, amount, not refused, reason)

        if outcome.kind == "timeout":
            return 500, _error(500, "905", "Internal error", "internal"), outcome.fault, tell
        return 200, answer, outcome.fault, tell

    def on_modification(self, body: dict, psp: str, kind: str):
        charge = self.ledger.charge(self.provider, psp)
        if kind not in ("cancels", "refunds", "reversals"):
            return (
                404,
                _error(404, "000", "HTTP Status Response - Not Found", "validation"),
                None,
                None,
            )
        if charge is None:
            message = "Original pspReference required for this operation"
            return 422, _error(422, "167", message, "validation"), None, None
        held = Money.parse(charge["amount"], charge["currency"])
        amount = held
        if kind == "refunds":
            try:
                amount = Money.from_minor(
                    int(body["amount"]["value"]), str(body["amount"]["currency"])
                )
            except (KeyError, TypeError, ValueError, MoneyError):
                return 422, _error(422, "100", "No amount specified", "validation"), None, None
        modification = _psp()
        answer = {"merchantAccount": body["merchantAccount"], "paymentPspReference": psp,
                  "pspReference": modification, "reference": body.get("reference"),
                  "status": "received"}  # fmt: skip
        if kind == "refunds":
            answer["amount"] = {"value": amount.minor, "currency": amount.currency}
        event = {"cancels": "CANCELLATION", "refunds": "REFUND", "reversals": "CANCEL_OR_REFUND"}[
            kind
        ]

        def happen() -> tuple[bool, str | None, str | None]:
            """The modification as Adyen carries it out: (success, reason, what was done). A
            payment may be refunded in parts, each refund a modification of its own, up to what
            was captured; a cancel or a reversal finds a payment refunded in part done with."""
            now = self.ledger.charge(self.provider, psp)
            partly = kind == "refunds" and now["state"] == "refunded"
            if now["state"] == "voided" or (now["state"] == "refunded" and not partly):
                return False, "Transaction has already been cancelled or refunded", None
            if now["state"] == "declined":
                return False, "Transaction was not authorised", None
            settled = now["state"] in ("settled", "refunded")
            if kind == "cancels" and settled:
                return False, "Transaction is already captured, cancel not possible", None
            if kind == "refunds" and not settled:
                return False, "Transaction hasn't been captured, refund not possible", None
            left = held - Money.parse(now["refunded"] or "0", held.currency)
            if amount > left:
                return False, "Refund amount exceeds the captured amount", None
            if settled:
                self.ledger.add_refund(self.provider, psp, amount.amount, refund_id=modification)
                return True, None, "refund"
            self.ledger.void(self.provider, psp)
            return True, None, "cancel"

        def tell() -> None:
            if not self.webhooks.has_endpoints(self.provider):
                with self._lock:
                    happen()  # no one to tell: it happens at once
                return

            told: list = []  # carried out once; a second delivery repeats the same event

            def done():
                if not told:
                    with self._lock:
                        success, reason, action = happen()
                    told.append(
                        (success, reason, {"modification.action": action} if action else {})
                    )
                return told[0]

            self.notify(event, modification, psp, charge["order_id"], amount, done, None)

        return 201, answer, None, tell

    # Webhooks --------------------------------------------------------------------------------

    def notify(self, code, psp, original, reference, amount, success, reason) -> None:
        """One notification item, signed when it leaves; `success` may be a function that
        carries the modification out at that moment and says how it went."""
        if not self.webhooks.has_endpoints(self.provider):
            return
        event_id = f"{code}/{psp}"

        def build() -> tuple[dict[str, str], bytes]:
            extra: dict[str, str] = {}
            ok, why = success, reason
            if callable(success):
                ok, why, extra = success()
            item = {"pspReference": psp, "originalReference": original,
                    "merchantAccountCode": self.credentials["merchant_account"],
                    "merchantReference": reference,
                    "amount": {"value": amount.minor, "currency": amount.currency},
                    "eventCode": code, "success": "true" if ok else "false",
                    "eventDate": datetime.now(UTC).isoformat(timespec="seconds"),
                    "reason": why or "", "paymentMethod": "visa"}  # fmt: skip
            item = {k: v for k, v in item.items() if v is not None}
            item["additionalData"] = {**extra, "hmacSignature": self._sign(item)}
            body = json.dumps({"live": "false",
                               "notificationItems": [{"NotificationRequestItem": item}]})  # fmt: skip
            user = f"{self.credentials['webhook_username']}:{self.credentials['webhook_password']}"
            headers = {"Content-Type": "application/json",
                       "Authorization": "Basic " + base64.b64encode(user.encode()).decode()}  # fmt: skip
            return headers, body.encode()

        self.webhooks.send(self.provider, event_id, build)

    def _sign(self, item: dict) -> str:
        amount = item.get("amount") or {}
        values = [*(item.get(k) for k in SIGNED), amount.get("value"), amount.get("currency"),
                  item.get("eventCode"), item.get("success")]  # fmt: skip
        data = ":".join("" if v is None else str(v) for v in values)
        key = bytes.fromhex(self.credentials["hmac_key"])
        return base64.b64encode(hmac.new(key, data.encode(), hashlib.sha256).digest()).decode()


def _psp() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def _error(status: int, code: str, message: str, kind: str) -> dict:
    return {"status": status, "errorCode": code, "message": message, "errorType": kind,
            "pspReference": _psp()}  # fmt: skip


def _reply(body: dict, status: int, key: str = "") -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json")
    if key:
        response.headers["Idempotency-Key"] = key
    return response


EMULATOR = AdyenEmulator
