"""The Braintree emulation: the XML gateway API's transactions, mounted at /braintree.

It answers as Braintree does: paths under /merchants/{merchant_id}, HTTP Basic with the public and
private key (401 with no body otherwise), XML bodies, a sale as HTTP 201 with its <transaction>, a
decline or a gateway rejection as HTTP 422 with an <api-error-response> holding the transaction,
a validation error as HTTP 422 with numeric <errors>, ids of eight lowercase letters and digits.
An api-request-key repeated with the same request answers the transaction it created (one whose
first request failed: 915234), with another request 915232. A void is allowed while the sale is
authorized or submitted for settlement, a refund once it settled (in parts, up to the sale).
A card sale settles when the sandbox ledger settles it. A bank-account sale (a token "bank_...",
as "bank_tok_hang", read by the token after the prefix) answers settlement_pending and settles, as
an ACH sale does days later, when the sandbox sends its transaction_settled notification (signed
as Braintree signs: bt_signature and bt_payload), after the webhook delay; Braintree sends these
notifications for bank-account transactions only, and so does the sandbox.

This emulation's choices (Braintree's sandbox chooses outcomes by amount, not by token):
"tok_review" leaves the sale authorized (not submitted for settlement); "tok_timeout" answers 500
after taking the money; "tok_misconfigured" answers 403; "tok_unknown" answers a gateway rejection
reason no mapping knows. The merchant account's currency is USD, or the one a merchant account id
"settle_sandbox_<currency>" names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from portal.gateways.xmlread import child_text, parse_xml
from portal.money import Money, MoneyError
from portal.sandbox.emulator import Emulator, outcome_for

# Outcome kind -> (status, processor code, processor text or gateway rejection reason).
DECLINES = {
    "decline": ("processor_declined", "2001", "Insufficient Funds"),
    "do_not_honor": ("processor_declined", "2000", "Do Not Honor"),
    "closed": ("processor_declined", "2108", "Closed Card"),
    "cvc": ("gateway_rejected", "", "cvv"),
    "address": ("gateway_rejected", "", "avs"),
    "unknown": ("gateway_rejected", "", "sandbox_unlisted"),
}
APPROVED = ("1000", "Approved")
VOIDABLE = ("authorized", "submitted_for_settlement")
_ALPHABET = string.ascii_lowercase + string.digits


class BraintreeEmulator(Emulator):
    provider = "braintree"
    credentials = {
        "merchant_id": "settle_sandbox_merchant",
        "public_key": "settle_sandbox_public",
        "private_key": "settle_sandbox_private",
    }

    urls = Map(
        [
            Rule("/merchants/<mid>/transactions", methods=["POST"], endpoint="sale"),
            Rule("/merchants/<mid>/transactions/advanced_search_ids", methods=["POST"],
                 endpoint="search_ids"),
            Rule("/merchants/<mid>/transactions/advanced_search", methods=["POST"],
                 endpoint="search"),
            Rule("/merchants/<mid>/transactions/<txn_id>", methods=["GET"], endpoint="find"),
            Rule("/merchants/<mid>/transactions/<txn_id>/void", methods=["PUT"], endpoint="void"),
            Rule("/merchants/<mid>/transactions/<txn_id>/refund", methods=["POST"],
                 endpoint="refund"),
        ]
    )  # fmt: skip

    def __init__(self, ledger, faults, webhooks=None):
        super().__init__(ledger, faults, webhooks)
        self._lock = threading.Lock()
        self._refunds: dict[str, dict] = {}  # a refund is a credit transaction of its own

    def handle(self, request: Request) -> Response:
        try:
            endpoint, args = self.urls.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return Response(status=exc.code or 404)
        expected = f"{self.credentials['public_key']}:{self.credentials['private_key']}"
        basic = "Basic " + base64.b64encode(expected.encode()).decode()
        if request.headers.get("Authorization") != basic:
            return Response(status=401)
        if args.pop("mid") != self.credentials["merchant_id"]:
            return Response(status=404)
        root = parse_xml(request.get_data(as_text=True)) if request.data else None
        if endpoint == "find":
            return self.find(args["txn_id"])
        if endpoint in ("search_ids", "search"):
            return self.search(endpoint, root)
        fields = _fields(root)
        key = fields.get("api-request-key", "")
        fingerprint = hashlib.sha256(request.get_data() + request.path.encode()).hexdigest()
        with self._lock:
            if key and (kept := self.ledger.reply_for(self.provider, key, endpoint)) is not None:
                return self.replayed(json.loads(kept[1]), fingerprint)
            status, body, fault, made = getattr(self, f"on_{endpoint}")(fields, **args)
            if key and status not in (401, 403):  # refused before the key is looked at
                kept = {"request": fingerprint, "status": status, "made": made}
                self.ledger.keep_reply(self.provider, key, endpoint, status, kept)
        self.announce(endpoint, made)
        return self.deliver(_reply(body, status), fault)

    def replayed(self, kept: dict, fingerprint: str) -> Response:
        if kept["request"] != fingerprint:
            return _reply(_errors("915232", "API request key can be reused only with the same"
                                  " request."), 422)  # fmt: skip
        if kept["made"] is None or kept["status"] == 422:
            return _reply(_errors("915234", "API request key was used with a failed request."), 422)
        made = self._view(kept["made"])
        status = kept["status"] if kept["status"] in (200, 201) else 201  # a 500 after the sale
        return _reply(made, status) if made is not None else Response(status=404)

    # Endpoints -------------------------------------------------------------------------------

    def on_sale(self, fields: dict):
        currency = self._currency(fields.get("merchant-account-id"))
        try:
            amount = Money.parse(fields["amount"], currency)
        except KeyError:
            return 422, _errors("81502", "Amount is required."), None, None
        except (MoneyError, ValueError):
            return 422, _errors("81503", "Amount is an invalid format."), None, None
        if not amount.is_positive():
            return 422, _errors("81531", "Amount must be greater than zero."), None, None
        token = fields.get("payment-method-token", "")
        if not token:
            return 422, _errors("91508", "Cannot determine payment method."), None, None
        order_id = fields.get("order-id", "")
        if len(order_id) > 255:
            return 422, _errors("91501", "Order ID is too long."), None, None
        bank = token.startswith("bank_")
        outcome = outcome_for(token.removeprefix("bank_"))
        if outcome.kind == "refuse":
            return 401, None, None, None
        if outcome.kind == "misconfigured":
            return 403, None, None, None
        txn_id = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        key = fields.get("api-request-key", "")
        if outcome.kind in DECLINES:
            status, code, text = DECLINES[outcome.kind]
            self.ledger.add_charge(self.provider, key, order_id, amount.amount, currency,
                                   f"{status}:{code}:{text}", outcome.moved, charge_id=txn_id)  # fmt: skip
            message = text if code else f"Gateway Rejected: {text}"
            return 422, _error_response(message, self._view(txn_id)), outcome.fault, txn_id
        status = "authorized" if outcome.kind == "review" else "submitted_for_settlement"
        if bank and outcome.kind != "review":
            status = "settlement_pending"
        self.ledger.add_charge(self.provider, key, order_id, amount.amount, currency,
                               f"{status}:{':'.join(APPROVED)}", True, charge_id=txn_id)  # fmt: skip
        if outcome.kind == "timeout":
            return 500, None, outcome.fault, txn_id
        return 201, self._view(txn_id), outcome.fault, txn_id

    def on_void(self, fields: dict, txn_id: str):
        charge = self.ledger.charge(self.provider, txn_id)
        if charge is None or txn_id in self._refunds:
            return 404, None, None, None
        if _status(charge) not in VOIDABLE:
            message = ("Transaction can only be voided if status is authorized,"
                       " submitted_for_settlement, or - for PayPal - settlement_pending.")  # fmt: skip
            return 422, _errors("91504", message), None, None
        self.ledger.void(self.provider, txn_id)
        return 200, self._view(txn_id), None, txn_id

    def on_refund(self, fields: dict, txn_id: str):
        charge = self.ledger.charge(self.provider, txn_id)
        if charge is None or txn_id in self._refunds:
            return 404, None, None, None
        held = Money.parse(charge["amount"], charge["currency"])
        refunded = sum((Money.parse(r["amount"], held.currency) for r in self._refunds.values()
                        if r["sale"] == txn_id), Money.zero(held.currency))  # fmt: skip
        if refunded == held:
            message = "Transaction has already been completely refunded."
            return 422, _errors("91512", message), None, None
        if _status(charge) != "settled":
            message = "Cannot refund a transaction unless it is settled."
            return 422, _errors("91506", message), None, None
        try:
            left = Money(held.amount - refunded.amount, held.currency)
            amount = Money.parse(fields.get("amount") or str(left.amount), held.currency)
        except (MoneyError, ValueError):
            return 422, _errors("81503", "Amount is an invalid format."), None, None
        if amount > left or not amount.is_positive():
            return 422, _errors("91521", "Refund amount is too large."), None, None
        self.ledger.refund(self.provider, txn_id, refunded.amount + amount.amount)
        refund_id = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        self._refunds[refund_id] = {"sale": txn_id, "amount": str(amount.amount),
                                    "currency": held.currency, "order_id": fields.get("order-id", ""),
                                    "status": "submitted_for_settlement",
                                    "created": datetime.now(UTC).replace(tzinfo=None).isoformat()}  # fmt: skip
        return 201, self._view(refund_id), None, refund_id

    def find(self, txn_id: str) -> Response:
        found = self._view(txn_id)
        return _reply(found, 200) if found is not None else Response(status=404)

    def search(self, endpoint: str, root: ET.Element | None) -> Response:
        order = root.find("order-id/is") if root is not None else None
        created = root.find("created-at") if root is not None else None
        ids = root.find("ids") if root is not None else None
        if order is not None:
            found = [c["id"] for c in self.ledger.find(self.provider, order_id=order.text or "")]
            found += [r for r, v in self._refunds.items() if v["order_id"] == (order.text or "")]
        elif created is not None:
            try:
                since, until = (_stamp(created.find(bound).text) for bound in ("min", "max"))
            except (AttributeError, TypeError, ValueError):
                return _reply(_errors("91500", "Sandbox: created-at needs min and max."), 422)
            # Both ends included, as Braintree's range search: the ledger's end is exclusive.
            listed = self.ledger.listed(self.provider, since, until + 1, None, 100_000)
            found = [c["id"] for c in listed]
            # Refunds are transactions too (type credit): the search finds them beside the sales.
            found += [r for r, v in self._refunds.items()
                      if since <= _naive_stamp(v["created"]) <= until + 1]  # fmt: skip
        elif ids is not None and endpoint == "search":
            # A search by ids alone (the ids of a sale's refunds, say): those that exist.
            found = [i.text or "" for i in ids.iter("item") if self._view(i.text or "") is not None]
        else:
            return _reply(_errors("91500", "Sandbox: an order-id, created-at or ids search."), 422)
        if endpoint == "search_ids":
            results = ET.Element("search-results")
            ET.SubElement(results, "page-size", type="integer").text = "50"
            ids = ET.SubElement(results, "ids", type="array")
            for txn_id in found:
                ET.SubElement(ids, "item").text = txn_id
            return _reply(results, 200)
        asked = {i.text for i in root.iter("item")} if root.find("ids") is not None else set()
        collection = ET.Element("credit-card-transactions", type="collection")
        chosen = [t for t in found if t in asked]
        ET.SubElement(collection, "current-page-number", type="integer").text = "1"
        ET.SubElement(collection, "page-size", type="integer").text = "50"
        ET.SubElement(collection, "total-items", type="integer").text = str(len(chosen))
        for txn_id in chosen:
            collection.append(self._view(txn_id))
        return _reply(collection, 200)

    # Webhooks --------------------------------------------------------------------------------

    def announce(self, endpoint: str, made: str | None) -> None:
        """transaction_settled for a sale submitted for settlement and for a refund, sent when
        the sandbox settles it (after the webhook delay), whatever the answer itself did."""
        if made is None or endpoint not in ("sale", "refund"):
            return
        if not self.webhooks.has_endpoints(self.provider):
            return
        view = self._view(made)
        if view is None or child_text(view, "status") != "settlement_pending":
            return
        event_id = f"transaction_settled/{made}"
        self.webhooks.send(self.provider, event_id, lambda: self._settled(made))

    def _settled(self, txn_id: str) -> tuple[dict[str, str], bytes] | None:
        """Settle the transaction now and tell it; None (nothing sent) if it was voided."""
        with self._lock:
            if txn_id in self._refunds:
                self._refunds[txn_id]["status"] = "settled"
            else:
                charge = self.ledger.charge(self.provider, txn_id)
                if charge is None or charge["state"] in ("voided", "declined"):
                    return None
                self.ledger.settle(txn_id)
                processor = charge["code"].split(":", 1)[1]
                self.ledger.recode(self.provider, txn_id, f"submitted_for_settlement:{processor}")
            subject = self._view(txn_id)
        return self.notification("transaction_settled", subject)

    def notification(self, kind: str, subject: ET.Element) -> tuple[dict[str, str], bytes]:
        """A signed notification as Braintree posts it (webhook_testing_gateway.py)."""
        root = ET.Element("notification")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ET.SubElement(root, "timestamp", type="datetime").text = stamp
        ET.SubElement(root, "kind").text = kind
        ET.SubElement(root, "subject").append(subject)
        payload = base64.encodebytes(ET.tostring(root))
        key = hashlib.sha1(self.credentials["private_key"].encode()).digest()
        signature = hmac.new(key, payload, hashlib.sha1).hexdigest()
        form = {"bt_signature": f"{self.credentials['public_key']}|{signature}",
                "bt_payload": payload.decode()}  # fmt: skip
        return {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(form).encode()

    # Answers ---------------------------------------------------------------------------------

    @staticmethod
    def _currency(merchant_account: str | None) -> str:
        prefix = "settle_sandbox_"
        if merchant_account and merchant_account.startswith(prefix):
            return merchant_account[len(prefix) :].upper()
        return "USD"

    def _view(self, txn_id: str) -> ET.Element | None:
        """A transaction as Braintree shows it: a sale from the ledger, or a refund."""
        if txn_id in self._refunds:
            refund = self._refunds[txn_id]
            return _transaction(txn_id, "credit", refund["status"], refund["amount"],
                                refund["currency"], refund["order_id"], refund["created"],
                                APPROVED, refunded=refund["sale"])  # fmt: skip
        charge = self.ledger.charge(self.provider, txn_id)
        if charge is None:
            return None
        _, code, text = charge["code"].split(":", 2)
        refunds = [r for r, v in self._refunds.items() if v["sale"] == txn_id]
        return _transaction(txn_id, "sale", _status(charge), charge["amount"],
                            charge["currency"], charge["order_id"], charge["created"],
                            (code, text), refund_ids=refunds)  # fmt: skip


def _status(charge: dict) -> str:
    """A sale's status from the ledger: voided, settled (refunded too), or as it was answered.
    An authorization never submitted for settlement and a bank sale's pending settlement do not
    settle with the ledger's clock: only a submitted card sale does."""
    answered = charge["code"].split(":", 1)[0]
    if charge["state"] == "voided":
        return "voided"
    if charge["state"] in ("settled", "refunded") and answered == "submitted_for_settlement":
        return "settled"
    return answered


def _transaction(txn_id, kind, status, amount, currency, order_id, created, processor, *,
                 refunded=None, refund_ids=()) -> ET.Element:  # fmt: skip
    txn = ET.Element("transaction")
    code, text = processor
    rejected = status == "gateway_rejected"
    values = {"id": txn_id, "status": status, "type": kind, "currency-iso-code": currency,
              "amount": amount, "order-id": order_id, "merchant-account-id": "settle_sandbox",
              "created-at": created[:19] + "Z", "processor-response-code": None if rejected else code,
              "processor-response-text": None if rejected else text,
              "gateway-rejection-reason": text if rejected else None,
              "refunded-transaction-id": refunded}  # fmt: skip
    for name, value in values.items():
        element = ET.SubElement(txn, name)
        if value is None:
            element.set("nil", "true")
        else:
            element.text = value
    ids = ET.SubElement(txn, "refund-ids", type="array")
    for refund in refund_ids:
        ET.SubElement(ids, "item").text = refund
    return txn


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()


def _naive_stamp(text: str) -> float:
    """A naive UTC time as the ledger keeps it, as a timestamp."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _fields(root: ET.Element | None) -> dict[str, str]:
    if root is None:
        return {}
    return {child.tag: (child.text or "").strip() for child in root if len(child) == 0}


def _errors(code: str, message: str) -> ET.Element:
    """A validation error response: the code under errors/transaction/errors."""
    root = ET.Element("api-error-response")
    errors = ET.SubElement(ET.SubElement(ET.SubElement(root, "errors"), "transaction"), "errors",
                           type="array")  # fmt: skip
    error = ET.SubElement(errors, "error")
    ET.SubElement(error, "code").text = code
    ET.SubElement(error, "message").text = message
    ET.SubElement(root, "message").text = message
    return root


def _error_response(message: str, txn: ET.Element) -> ET.Element:
    root = ET.Element("api-error-response")
    ET.SubElement(ET.SubElement(root, "errors"), "errors", type="array")
    ET.SubElement(root, "message").text = message
    root.append(txn)
    return root


def _reply(body: ET.Element | None, status: int) -> Response:
    if body is None:
        return Response(status=status)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(body, encoding="unicode")
    return Response(text, status=status, content_type="application/xml; charset=utf-8")


EMULATOR = BraintreeEmulator
