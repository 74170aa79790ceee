"""The Payeezy plugin: First Data's Payeezy JSON REST API (purchase, tagged refund and void, reversal).

The stored payment-method token is a Payeezy FDToken with the card facts Payeezy wants beside it,
written "value/type/MMYY/cardholder name" (for example "2537446225198291/Visa/1230/Jane Doe"):
token_data.value, token_data.type (the card brand as Payeezy spells it), token_data.exp_date and
token_data.cardholder_name. Only the value is required; the name comes last and may hold "/".
Settle never sees a card number.

A charge's reference is "transaction_id/transaction_tag" (for example "ET114541/55083431"): a
tagged refund or void needs both, the id in the URL and the tag in the body.

What Settle puts on the wire (Payeezy's REST API as its official SDKs and Active Merchant send it):
- Every request is signed: headers apikey, token (the merchant token), nonce, timestamp (epoch ms)
  and Authorization = base64 of the lower-case hex HMAC-SHA256, keyed with the API secret, of
  apikey + nonce + timestamp + token + body (payeezy_direct_API's node util.js, the Java SDK's
  PayeezyAbstractClient). Payeezy refuses a timestamp more than five minutes off its clock.
- Amounts are minor units in a string ("1230" for 12.30 USD); merchant_ref is the invoice number.
- Payeezy has no idempotency key. The purchase carries reversal_id = Settle's idempotency key, all
  32 hex characters (Payeezy publishes no limit; its own example is 15 characters long). That is
  the one handle on a charge whose answer never came: see lookups.
- Refunds and voids carry no key at all: a repeated void answers 305 "Already Reversed", and a
  refund beyond what is left is refused (64 "Invalid Refund"). Settle never re-sends blindly.

Lookups: Payeezy has no transaction query API (the Payeezy team on developer.payeezy.com: "there
is no such API. The merchant ref field can only be used to search for transactions via the gateway
portal"). What it offers for an unknown outcome is the timeout reversal: a void sent to
/v1/transactions with the purchase's reversal_id instead of its id and tag. A lookup therefore
reverses the charge if it is still unsettled, and reports what that leaves at the gateway: the
charge voided (one Finding, VOIDED), nothing (585, no finding), or a charge that can no longer be
voided because it settled (581, Indeterminate: the clerk searches the Payeezy portal). A lookup is
not free of effects here; it only ever gives money back, never takes it.

How the one mapping key is chosen from Payeezy's several codes is written at the top of codes.yaml.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
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
from portal.money import Money, MoneyError

TRANSACTIONS = "/v1/transactions"

# Fields that never reach storage: the FDToken value, card and bank account data, 3-D Secure
# cryptograms, and the credentials should they ever appear in a body.
SECRET_FIELDS = ("value", "card_number", "cvv", "cardholder_name", "account_number",
                 "routing_number", "cavv", "xid", "apikey", "apisecret", "api_key", "api_secret",
                 "merchant_token")  # fmt: skip
_SECRET = re.compile(
    r'("(?:' + "|".join(SECRET_FIELDS) + r')"\s*:\s*)(?:"(?:[^"\\]|\\.)*"|-?\d[\d.]*)'
)
# "ProcessedBad Request (69) - Invalid Transaction Tag": the ETG code inside a server_error.
_ETG_CODE = re.compile(r"\((\d{2})\)")
_EXPIRY = re.compile(r"(0[1-9]|1[0-2])\d\d")


def signature(
    api_key: str, api_secret: str, nonce: str, timestamp: str, token: str, body: str
) -> str:
    """Payeezy's Authorization header: base64 of the hex digest, not of the raw digest."""
    message = (api_key + nonce + timestamp + token + body).encode("utf-8")
    digest = hmac.new(api_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


class PayeezyGateway(Gateway):
    name = "payeezy"
    display_name = "Payeezy (First Data)"
    not_reconcilable = (
        "Payeezy's API has no transaction listing or search: only its merchant dashboard lists a"
        " period's transactions."
    )
    required_credentials = ("api_key", "api_secret", "merchant_token")
    live_hosts = ("api.payeezy.com",)
    test_hosts = ("api-cert.payeezy.com", "api-cat.payeezy.com")
    lookup_moves_money = True  # a lookup is a timeout reversal: see the module docstring

    # Replaceable in tests, so that a signed request can be checked byte for byte.
    @staticmethod
    def nonce() -> str:
        return str(secrets.randbits(63))

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    # Requests --------------------------------------------------------------------------------

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        base = self.config.base_url.rstrip("/") + TRANSACTIONS
        if operation == "charge":
            return self._signed(base, self._purchase(request))
        if operation in ("refund", "void"):
            transaction_id, tag = self._reference(request, operation)
            body = {"transaction_type": operation, "method": "token", "transaction_tag": tag}
            body.update(self._amount(request, operation))
            body["merchant_ref"] = request.order_id
            return self._signed(f"{base}/{quote(transaction_id, safe='')}", body)
        if operation == "lookup":
            if not request.original_key:
                raise CallNotMade("a lookup needs the charge's idempotency key (its reversal_id)")
            body = {
                "transaction_type": "void",
                "method": "token",
                "reversal_id": request.original_key,
            }
            if request.amount is not None:
                body.update(self._amount(request, operation))
            body["merchant_ref"] = request.order_id
            return self._signed(base, body)
        raise CallNotMade(f"unknown operation {operation!r}")

    def _purchase(self, request: GatewayRequest) -> dict:
        if not request.token:
            raise CallNotMade("a charge needs a payment method token")
        body = {
            "transaction_type": "purchase",
            "method": "token",
            **self._amount(request, "charge"),
            "merchant_ref": request.order_id,
            "reversal_id": request.idempotency_key,
            "token": {"token_type": "FDToken", "token_data": self._token_data(request.token)},
        }
        return body

    @staticmethod
    def _token_data(token: str) -> dict:
        value, card_type, exp_date, name = (token.split("/", 3) + ["", "", ""])[:4]
        if not value:
            raise CallNotMade("the stored token has no FDToken value")
        if exp_date and not _EXPIRY.fullmatch(exp_date):
            raise CallNotMade(f"the stored token's expiry {exp_date!r} is not MMYY")
        data = {"type": card_type, "value": value, "cardholder_name": name, "exp_date": exp_date}
        return {k: v for k, v in data.items() if v}

    @staticmethod
    def _amount(request: GatewayRequest, operation: str) -> dict:
        if request.amount is None:
            raise CallNotMade(f"a {operation} needs an amount")
        return {"amount": str(request.amount.minor), "currency_code": request.amount.currency}

    @staticmethod
    def _reference(request: GatewayRequest, operation: str) -> tuple[str, str]:
        transaction_id, _, tag = (request.reference or "").partition("/")
        if not transaction_id or not tag:
            raise CallNotMade(
                f"a {operation} needs the charge's reference as transaction_id/transaction_tag"
            )
        return transaction_id, tag

    def _signed(self, url: str, body: dict) -> HttpCall:
        # ASCII-only JSON: the bytes signed are exactly the bytes sent.
        payload = json.dumps(body, separators=(",", ":"))
        creds = self.config.credentials
        nonce, timestamp = self.nonce(), str(self.now_ms())
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "apikey": creds["api_key"],
            "token": creds["merchant_token"],
            "nonce": nonce,
            "timestamp": timestamp,
            "Authorization": signature(
                creds["api_key"], creds["api_secret"], nonce, timestamp, creds["merchant_token"],
                payload,
            ),
        }  # fmt: skip
        return HttpCall("POST", url, headers, payload)

    # Answers ---------------------------------------------------------------------------------

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        data = self.json_object(http_status, body.removeprefix("\ufeff"))
        if isinstance(data, GatewayResult):
            return data
        keyed = _key(data, http_status)
        if keyed is None:
            return self.unreadable(f"HTTP {http_status} without a Payeezy response code")
        key, message, from_transaction = keyed
        # why: only a transaction this request made gives the reference. An error envelope, or an
        # answer Payeezy did not process, echoes the request, whose id and tag on a refund or void
        # are the charge's: stored, they would make the failed refund look like the charge.
        reference = _own_reference(data, operation) if from_transaction else None
        if operation != "lookup":
            return self.mapped(key, message, reference=reference)
        if from_transaction:
            key = f"reversal:{key}"
        try:
            findings = _reversed(data, reference, headers)
        except (KeyError, TypeError, ValueError, MoneyError) as exc:
            return self.unreadable(f"the reversal's amount cannot be read: {exc}")
        return self.mapped(key, message, reference=reference, findings=findings)

    def scrub(self, text: str) -> str:
        return _SECRET.sub(r'\1"[FILTERED]"', text)


def _key(data: dict, http_status: int) -> tuple[str, str | None, bool] | None:
    """(mapping key, the provider's message for it, whether it is a transaction's own code)."""
    error = data.get("Error")
    messages = error.get("messages") if isinstance(error, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        first = messages[0]
        code, description = first.get("code"), first.get("description")
        if code:
            etg = _ETG_CODE.search(str(description or "")) if code == "server_error" else None
            return (etg.group(1) if etg else str(code)), description, False
    gateway_code, bank_code = data.get("gateway_resp_code"), data.get("bank_resp_code")
    if gateway_code not in (None, "", "00"):
        return str(gateway_code), data.get("gateway_message"), True
    if bank_code not in (None, ""):
        return str(bank_code), data.get("bank_message"), True
    if gateway_code == "00":
        return "00", data.get("gateway_message"), True
    fault = data.get("fault")
    detail = fault.get("detail") if isinstance(fault, dict) else None
    if isinstance(detail, dict) and detail.get("errorcode"):
        return str(detail["errorcode"]), fault.get("faultstring"), False
    if data.get("code") and "message" in data:
        return f"http_{data['code']}", data.get("message"), False
    if isinstance(data.get("error"), str):
        return f"http_{http_status}", data["error"], False
    return None


def _reference(data: dict) -> str | None:
    transaction_id, tag = data.get("transaction_id"), data.get("transaction_tag")
    return f"{transaction_id}/{tag}" if transaction_id and tag else None


def _own_reference(data: dict, operation: str) -> str | None:
    """The reference of the transaction this answer made, or None where it made none of its own.

    Payeezy answers with the request's fields beside its own ("method", "amount", the card). An
    answer it did not process ("Not Processed") made no transaction, so an id and tag in it are
    the request's. A refund or void that was not approved leaves nothing Settle refers to later,
    and the id in its answer may be the charge's (named in the request's URL), so it gives none.
    """
    status = str(data.get("transaction_status") or "").strip().lower()
    if status == "not processed":
        return None
    if operation in ("refund", "void") and status != "approved":
        return None
    return _reference(data)


def _reversed(data: dict, reference: str | None, headers: dict) -> tuple[Finding, ...]:
    """What an approved reversal leaves at the gateway: the charge, voided. Else nothing found."""
    if data.get("transaction_status") != "approved":
        return ()
    amount = None
    if data.get("amount") not in (None, ""):
        amount = Money.from_minor(int(str(data["amount"])), str(data["currency"]))
    # The finding carries no code: the reversal's own "100" must never read as a paid charge.
    # Nor refunded: Payeezy has no transaction query, and a reversal tells nothing of refunds.
    return (Finding(Settlement.VOIDED, amount, reference, _answered_at(headers)),)


def _answered_at(headers: dict) -> datetime | None:
    """The answer's Date header, as the naive UTC time the rest of Settle keeps."""
    value = next((v for k, v in headers.items() if k.lower() == "date"), None)
    try:
        at = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(UTC).replace(tzinfo=None)


PLUGIN = PayeezyGateway
