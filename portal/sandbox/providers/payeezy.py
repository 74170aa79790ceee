"""The Payeezy emulation: First Data's Payeezy REST API (/v1/transactions), mounted at /payeezy.

It answers as Payeezy does (JSON, application/json;charset=UTF-8; 201 for a processed transaction,
approved or declined; 400 "Not Processed" with an Error envelope for a request it refuses; the API
gateway's 401/403 envelopes for bad credentials), checks the HMAC signature, and keeps charges in
the shared ledger under "payeezy" with Payeezy's ids ("ET" and six digits, and a numeric tag).

What is Payeezy's and what is this emulation's choice (Payeezy documents neither):
- A purchase whose reversal_id already names a charge is refused with ETG 63 "Invalid Duplicate"
  and charges nothing; a purchase without reversal_id is never checked.
- A timeout reversal (void by reversal_id) answers 585 "No Original Authorization Found" when no
  approved charge carries that reversal_id, 305 "Already Reversed" when it was voided, and 581
  "Unable to Void Transaction" once it settled. A tagged void answers the same 305 and 581.
- A refund of a charge that is not settled, or beyond what its refunds left, answers ETG 64
  "Invalid Refund".
- A charge with the "timeout" token answers HTTP 500 internal_server_error (ETG 42 behind it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import date
from decimal import Decimal

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from portal.money import Money, MoneyError
from portal.sandbox.emulator import Emulator, outcome_for

# Outcome kind -> (bank_resp_code, bank_message); "timeout" and "refuse" answer otherwise.
BANK_ANSWERS = {
    "approve": ("100", "Approved"),
    "decline": ("302", "Insufficient Funds"),
    "do_not_honor": ("530", "Do Not Honor"),
    "cvc": ("531", "CVV2/VAK Failure"),
    "address": ("260", "Soft AVS"),
    "closed": ("550", "Closed Account"),
    "review": ("401", "Call"),
    "misconfigured": ("833", "Invalid Merchant"),
    "unknown": ("999", "Sandbox: a bank code no mapping knows"),
}

CLOCK_SKEW_MS = 5 * 60 * 1000  # Payeezy's FAQ: within 5 minutes of its server time


class _Refusal(Exception):
    """A request Payeezy refuses before processing: HTTP 400, "Not Processed"."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code, self.description = code, description


class PayeezyEmulator(Emulator):
    provider = "payeezy"
    credentials = {
        "api_key": "sandbox-payeezy-apikey",
        "api_secret": "sandbox-payeezy-api-secret",
        "merchant_token": "fdoa-sandbox-payeezy-merchant-token",
    }

    urls = Map(
        [
            Rule("/v1/transactions", methods=["POST"], endpoint="primary"),
            Rule("/v1/transactions/<transaction_id>", methods=["POST"], endpoint="secondary"),
        ]
    )

    def __init__(self, ledger, faults, webhooks=None):
        super().__init__(ledger, faults, webhooks)
        # The duplicate check and the state changes must not interleave between two requests.
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        try:
            endpoint, args = self.urls.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return self.reply({"error": exc.name}, exc.code or 404)
        if (refused := self._authenticate(request)) is not None:
            return refused
        try:
            data = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self.not_processed({}, "bad_request", "The request body is not a JSON object")
        try:
            with self._lock:
                response, fault = self._route(endpoint, args, data)
        except _Refusal as exc:
            return self.not_processed(data, exc.code, exc.description)
        # Outside the lock: a hanging answer must not hold up every other request.
        return self.deliver(response, fault)

    def _route(self, endpoint: str, args: dict, data: dict) -> tuple[Response, str | None]:
        if endpoint == "secondary":
            return self.follow_up(data, args["transaction_id"]), None
        if data.get("transaction_type") == "purchase":
            return self.purchase(data)
        if data.get("transaction_type") == "void" and data.get("reversal_id"):
            return self.reversal(data), None
        raise _Refusal("missing_transaction_id", "The transaction id is not provided")

    # Authentication --------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> Response | None:
        creds, headers = self.credentials, request.headers
        if headers.get("apikey") != creds["api_key"]:
            fault = {
                "faultstring": "Invalid ApiKey",
                "detail": {"errorcode": "oauth.v2.InvalidApiKey"},
            }
            return self.reply({"fault": fault}, 401, "application/json")
        if headers.get("token") != creds["merchant_token"]:
            return self.reply({"error": "Access denied"}, 401)
        nonce, timestamp = headers.get("nonce", ""), headers.get("timestamp", "")
        body = request.get_data(as_text=True)
        message = (creds["api_key"] + nonce + timestamp + creds["merchant_token"] + body).encode()
        digest = hmac.new(creds["api_secret"].encode(), message, hashlib.sha256).hexdigest()
        expected = base64.b64encode(digest.encode()).decode()
        fresh = (
            timestamp.isdigit()
            and abs(time.time_ns() // 1_000_000 - int(timestamp)) <= CLOCK_SKEW_MS
        )
        if not fresh or not hmac.compare_digest(headers.get("Authorization", ""), expected):
            return self.reply(
                {"code": "403", "message": "HMAC validation Failure"}, 403, "application/json"
            )
        return None

    # Purchases -------------------------------------------------------------------------------

    def purchase(self, data: dict) -> tuple[Response, str | None]:
        """The answer and the fault it is to be delivered with (hang, drop, garbage)."""
        amount = self._money(data)
        token_data = (data.get("token") or {}).get("token_data") or {}
        value = str(token_data.get("value") or "")
        if data.get("method") != "token" or not value:
            raise _Refusal("invalid_token", "The FDToken value is not provided")
        self._check_expiry(str(token_data.get("exp_date") or ""))
        reversal_id = str(data.get("reversal_id") or "")
        if amount.amount <= 0:
            return self.processed(data, amount, gateway=("26", "Invalid Amount")), None
        if reversal_id and self.ledger.find(self.provider, key=reversal_id):
            return self.processed(data, amount, gateway=("63", "Invalid Duplicate")), None
        outcome = outcome_for(value)
        if outcome.kind == "refuse":
            return self.reply({"error": "Access denied"}, 401), outcome.fault
        transaction_id = self._new_id()
        if outcome.kind == "timeout":
            self._keep(data, reversal_id, transaction_id, amount, "internal_server_error", True)
            body = {
                "correlation_id": _correlation_id(),
                "Error": {"messages": [{"code": "internal_server_error", "description": "Internal Server Error"}]},
                "transaction_status": "Not Processed",
                "transaction_type": "purchase",
            }  # fmt: skip
            return self.reply(body, 500), outcome.fault
        bank = BANK_ANSWERS[outcome.kind]
        self._keep(data, reversal_id, transaction_id, amount, bank[0], outcome.moved)
        approved = outcome.kind == "approve"
        response = self.processed(
            data, amount, bank=bank, transaction_id=transaction_id if approved else None,
            tag=_tag_for(transaction_id), token_value=value,
        )  # fmt: skip
        return response, outcome.fault

    def _keep(self, data, reversal_id, transaction_id, amount: Money, code: str, held: bool):
        self.ledger.add_charge(
            self.provider, reversal_id or transaction_id, str(data.get("merchant_ref") or ""),
            amount.amount, amount.currency, code, held, charge_id=transaction_id,
        )  # fmt: skip

    @staticmethod
    def _check_expiry(exp_date: str) -> None:
        if not exp_date:
            return
        if len(exp_date) != 4 or not exp_date.isdigit() or not 1 <= int(exp_date[:2]) <= 12:
            raise _Refusal("invalid_exp_date", "The expiry date must be MMYY")
        today = date.today()
        if (2000 + int(exp_date[2:]), int(exp_date[:2])) < (today.year, today.month):
            raise _Refusal("card_expired", "The card has expired")

    # Voids, refunds and reversals ------------------------------------------------------------

    def follow_up(self, data: dict, transaction_id: str) -> Response:
        kind = data.get("transaction_type")
        if kind not in ("void", "refund"):
            raise _Refusal("invalid_transaction_type", "The transaction type is not supported")
        if not data.get("transaction_tag"):
            raise _Refusal("missing_transaction_tag", "The transaction tag is not provided")
        amount = self._money(data)
        charge = self.ledger.charge(self.provider, transaction_id)
        if charge is None or str(data["transaction_tag"]) != _tag_for(transaction_id):
            raise _Refusal("server_error", "ProcessedBad Request (69) - Invalid Transaction Tag")
        if kind == "void":
            return self._void(data, charge, amount)
        held = Money.parse(charge["amount"], charge["currency"])
        # A charge may be refunded in parts, each refund a transaction of its own, up to its amount.
        left = Money(held.amount - Decimal(charge["refunded"] or 0), held.currency)
        settled = charge["state"] in ("settled", "refunded")
        if not settled or amount.currency != held.currency or amount > left:
            return self.processed(data, amount, gateway=("64", "Invalid Refund"))
        tag = self._new_tag()
        self.ledger.add_refund(self.provider, charge["id"], amount.amount, refund_id=str(tag))
        return self.processed(
            data, amount, bank=BANK_ANSWERS["approve"], transaction_id=tag, tag=tag
        )

    def reversal(self, data: dict) -> Response:
        charges = [c for c in self.ledger.find(self.provider, key=str(data["reversal_id"]))
                   if c["state"] != "declined"]  # fmt: skip
        if not charges:
            amount = self._money(data) if data.get("amount") else None
            return self.processed(data, amount, bank=("585", "No Original Authorization Found"))
        charge = charges[0]
        return self._void(data, charge, Money.parse(charge["amount"], charge["currency"]))

    def _void(self, data: dict, charge: dict, amount: Money) -> Response:
        if charge["state"] == "voided":
            return self.processed(data, amount, bank=("305", "Already Reversed"))
        if charge["state"] != "unsettled":
            return self.processed(data, amount, bank=("581", "Unable to Void Transaction"))
        self.ledger.void(self.provider, charge["id"])
        held = Money.parse(charge["amount"], charge["currency"])
        return self.processed(
            data, held, bank=BANK_ANSWERS["approve"], transaction_id=self._new_id(),
            tag=self._new_tag(),
        )  # fmt: skip

    # Answers ---------------------------------------------------------------------------------

    @staticmethod
    def reply(body: dict, status: int, content_type: str = "application/json;charset=UTF-8"):
        return Response(json.dumps(body), status=status, content_type=content_type)

    def processed(self, data, amount: Money | None, *, bank=None, gateway=("00", "Transaction Normal"),
                  transaction_id=None, tag=None, token_value=None) -> Response:  # fmt: skip
        """A transaction Payeezy processed (HTTP 201), approved only when the bank says 100."""
        approved = bank is not None and bank[0] == "100" and gateway[0] == "00"
        body: dict = {
            "correlation_id": _correlation_id(),
            "transaction_status": "approved" if approved else "declined",
            "validation_status": "success",
            "transaction_type": data.get("transaction_type"),
        }
        if transaction_id:
            body["transaction_id"] = transaction_id
        body["transaction_tag"] = tag or self._new_tag()
        body["method"] = data.get("method", "token")
        if amount is not None:
            body["amount"], body["currency"] = str(amount.minor), amount.currency
        if token_value:
            body["token"] = {"token_type": "FDToken", "token_data": {"value": token_value}}
        if bank is not None:
            body["bank_resp_code"], body["bank_message"] = bank
        body["gateway_resp_code"], body["gateway_message"] = gateway
        return self.reply(body, 201)

    def not_processed(self, data: dict, code: str, description: str) -> Response:
        body = {
            "correlation_id": _correlation_id(),
            "Error": {"messages": [{"code": code, "description": description}]},
            "transaction_status": "Not Processed",
            "validation_status": "failed",
            "transaction_type": data.get("transaction_type"),
        }
        if data.get("amount") is not None:
            body["amount"], body["currency"] = str(data["amount"]), data.get("currency_code")
        return self.reply(body, 400)

    # Helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _money(data: dict) -> Money:
        try:
            units = str(data["amount"])
            if not units.lstrip("-").isdigit():
                raise ValueError(units)
            return Money.from_minor(int(units), str(data["currency_code"]))
        except KeyError as exc:
            raise _Refusal(f"missing_{exc.args[0]}", f"The {exc.args[0]} is not provided") from None
        except (ValueError, MoneyError):
            raise _Refusal("invalid_amount", "The amount or currency code is invalid") from None

    def _new_id(self) -> str:
        while True:
            candidate = f"ET{secrets.randbelow(900_000) + 100_000}"
            if self.ledger.charge(self.provider, candidate) is None:
                return candidate

    @staticmethod
    def _new_tag() -> str:
        return str(secrets.randbelow(9_000_000_000) + 1_000_000_000)


def _tag_for(transaction_id: str) -> str:
    """A charge's transaction_tag, derived from its id so that the ledger need not keep it."""
    number = int.from_bytes(hashlib.sha256(f"tag:{transaction_id}".encode()).digest()[:5], "big")
    return str(number % 9_000_000_000 + 1_000_000_000)


def _correlation_id() -> str:
    return f"228.{time.time_ns() // 100_000}"


EMULATOR = PayeezyEmulator
