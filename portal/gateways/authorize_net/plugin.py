"""The Authorize.Net plugin: its JSON API (one endpoint, the request named by the body's root key)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from portal import clock
from portal.gateways.authorize_net import listing
from portal.gateways.authorize_net.refunds import REFUND_STATUSES, RefundSearch, refunded, trans_id
from portal.gateways.base import (
    CallNotMade,
    Finding,
    Gateway,
    GatewayRequest,
    GatewayResult,
    Holdings,
    HttpCall,
    Settlement,
)
from portal.money import Money, MoneyError
from portal.statuses import GatewayStatus

ENDPOINT = "/xml/v1/request.api"
BOM = "\ufeff"
# AnetApiSchema.xsd: refId and order.invoiceNumber are strings of at most 20 characters.
MAX_REF = 20
# A charge's own reference in invoiceNumber: the first 20 hex characters of its key.
_OWN_REFERENCE = re.compile(r"[0-9a-f]{20}")
# How far back a charge without a transId is searched for in the settled batches (the batch list
# takes at most 31 days a request).
SETTLED_SEARCH = timedelta(days=30)
# order.description: at most 255 characters.
MAX_DESCRIPTION = 255
# getUnsettledTransactionListRequest pages hold at most 1000 transactions.
PAGE_SIZE = 1000

# What each transactionStatus (the schema's transactionStatusEnum) means for the money. A status
# missing here (settlementError) cannot be told apart safely, so such a lookup is Indeterminate.
STATES: dict[str, Settlement] = {
    "authorizedPendingCapture": Settlement.UNSETTLED,
    "capturedPendingSettlement": Settlement.UNSETTLED,
    "pendingSettlement": Settlement.UNSETTLED,
    "pendingFinalSettlement": Settlement.UNSETTLED,
    "updatingSettlement": Settlement.UNSETTLED,
    "authorizedPendingRelease": Settlement.UNSETTLED,
    "approvedReview": Settlement.UNSETTLED,
    # Held for review: it may still be captured, so it counts as held until someone decides.
    "underReview": Settlement.UNSETTLED,
    "FDSPendingReview": Settlement.UNSETTLED,
    "FDSAuthorizedPendingReview": Settlement.UNSETTLED,
    # A failed void leaves the charge standing.
    "couldNotVoid": Settlement.UNSETTLED,
    "settledSuccessfully": Settlement.SETTLED,
    "chargebackReversal": Settlement.SETTLED,
    "voided": Settlement.VOIDED,
    "declined": Settlement.DECLINED,
    "expired": Settlement.DECLINED,
    "failedReview": Settlement.DECLINED,
    "generalError": Settlement.DECLINED,
    "communicationError": Settlement.DECLINED,
    "refundSettledSuccessfully": Settlement.REFUNDED,
    "refundPendingSettlement": Settlement.REFUNDED,
    "returnedItem": Settlement.REFUNDED,
    "chargeback": Settlement.REFUNDED,
}

# Keys whose values are credentials, payment-profile ids (the stored token), card data or the
# answer's signatures (transHash, transHashSha2); merchantAuthentication.name is handled apart.
_SECRET_KEYS = (
    "transactionKey|password|sessionToken|partnerLoginId|partnerTransactionKey|hashValue|"
    "customerProfileId|paymentProfileId|customerPaymentProfileId|cardNumber|expirationDate|"
    "cardCode|track1|track2|dataValue|dataKey|accountNumber|routingNumber|transHash|transHashSha2"
)
_VALUE = r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?'
_SECRET = re.compile(rf'("(?:{_SECRET_KEYS})"\s*:\s*)(?:{_VALUE})')
_AUTH_BLOCK = re.compile(r'"merchantAuthentication"\s*:\s*\{[^{}]*\}')
_STRING_VALUE = re.compile(r'(:\s*)"(?:[^"\\]|\\.)*"')


class AuthorizeNetGateway(RefundSearch, Gateway):
    """Authorize.Net's JSON API (developer.authorize.net/api/reference), POST {base}/xml/v1/request.api.

    The stored payment-method token is "customerProfileId/paymentProfileId": a customer profile
    and one of its payment profiles (Customer Information Manager). Charges are
    authCaptureTransaction with that profile; refunds name the same profile and the charge's
    transId, as Authorize.Net asks for refunds of profile transactions (instead of the card's
    last four digits, which Settle does not keep); voids name the transId only.

    Settle's idempotency key goes into refId, shortened to its first 20 hex characters (80 bits:
    refId holds 20); Authorize.Net only echoes refId. Its duplicate check (duplicateWindow, from
    codes.yaml) matches the request's content, so a re-sent charge inside the window is refused
    with reason 11. order.invoiceNumber, the one merchant field the transaction lists show, holds
    20 characters, too few for an invoice number to tell two charges (or two invoices whose
    numbers share their first 20 characters) apart: it carries the charge's own reference instead,
    the first 20 characters of its key (order_reference, kept on the charge), and
    order.description carries the invoice number and the full key for people reading the
    Merchant Interface.

    Lookups ask getTransactionDetails by transId when the charge's reference is known; a settled
    charge's details say nothing of its refunds (each a transaction of its own naming the charge
    in refTransId), so the batches since are searched for them (_with_its_refunds). Without it
    (a charge that timed out) they list the newest unsettled transactions and keep the charge's
    own, by its reference in invoiceNumber (a charge recorded before references were sent: by its
    invoice number); that list request carries it in refId, so that the pure interpret() matches
    the echo. A charge that has already settled is found only by its transId. An Authorize.Net
    account settles in one currency and its reports name none: amounts are in `account_currency`.
    """

    name = "authorize_net"
    # The unsettled list, kept to the invoice: a settled charge is found only by its transId.
    invoice_listing = "unsettled charge"
    # A refund is a transaction of its own, listed in the batch it settles in.
    listing_tells_later_refunds = False
    display_name = "Authorize.Net"
    not_reconcilable = None  # the settled batches and the open batch list a period (listing.py)
    required_credentials = ("api_login_id", "transaction_key")
    live_hosts = ("api.authorize.net", "api2.authorize.net")
    test_hosts = ("apitest.authorize.net",)
    account_currency = "USD"

    @classmethod
    def order_reference(cls, idempotency_key: str) -> str | None:
        return idempotency_key[:MAX_REF]

    # Requests ---------------------------------------------------------------------------------

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        if operation == "charge":
            root, body = "createTransactionRequest", self._charge(request)
        elif operation == "refund":
            root, body = "createTransactionRequest", self._refund(request)
        elif operation == "void":
            root, body = "createTransactionRequest", self._void(request)
        elif operation == "lookup":
            root, body = self._lookup_request(request)
        elif operation == "refund_of":
            if not trans_id(request.reference):
                raise CallNotMade("a transaction's details need its transId")
            root, body = "getTransactionDetailsRequest", {"transId": request.reference}
        elif operation == "list":
            root, body = (
                listing.transactions_request(request.cursor)
                if request.cursor
                else listing.batches_request(*request.period)
            )
        else:
            raise CallNotMade(f"unknown operation {operation!r}")
        auth = {
            "name": self.config.credentials["api_login_id"],
            "transactionKey": self.config.credentials["transaction_key"],
        }
        # The JSON is a translation of the XML schema: element order matters, and a dict keeps it.
        payload = {root: {"merchantAuthentication": auth, **body}}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        url = self.config.base_url.rstrip("/") + ENDPOINT
        return HttpCall("POST", url, headers, json.dumps(payload))

    def _charge(self, request: GatewayRequest) -> dict:
        amount = self._positive(request.amount, "charge")
        return {
            "refId": request.idempotency_key[:MAX_REF],
            "transactionRequest": {
                "transactionType": "authCaptureTransaction",
                "amount": amount.plain(),
                "currencyCode": amount.currency,
                "profile": self._profile(request.token),
                "order": {
                    "invoiceNumber": _order_field(request),
                    "description": f"Invoice {request.order_id} (Settle {request.idempotency_key})"[
                        :MAX_DESCRIPTION
                    ],
                },
                "transactionSettings": self._settings(),
            },
        }

    def _refund(self, request: GatewayRequest) -> dict:
        amount = self._positive(request.amount, "refund")
        return {
            "refId": request.idempotency_key[:MAX_REF],
            "transactionRequest": {
                "transactionType": "refundTransaction",
                "amount": amount.plain(),
                "profile": self._profile(request.token),
                "refTransId": self._reference(request, "refund"),
                "order": {"invoiceNumber": _order_field(request)},
                "transactionSettings": self._settings(),
            },
        }

    def _void(self, request: GatewayRequest) -> dict:
        return {
            "refId": request.idempotency_key[:MAX_REF],
            "transactionRequest": {
                "transactionType": "voidTransaction",
                "refTransId": self._reference(request, "void"),
            },
        }

    def _lookup_request(self, request: GatewayRequest) -> tuple[str, dict]:
        if trans_id(request.reference):
            return "getTransactionDetailsRequest", {"transId": request.reference}
        if not request.order_id:
            raise CallNotMade("a lookup without the charge's transId needs the invoice number")
        # No lookup by refId exists: list the newest unsettled transactions and match the
        # invoice. refId carries the invoice so that interpret() reads it back from the echo.
        return "getUnsettledTransactionListRequest", {
            "refId": _order_field(request),
            "sorting": {"orderBy": "submitTimeUTC", "orderDescending": True},
            "paging": {"limit": str(PAGE_SIZE), "offset": "1"},
        }

    def _settings(self) -> dict:
        window = self.mapping.retry.duplicate_window_seconds
        return {"setting": [{"settingName": "duplicateWindow", "settingValue": str(window)}]}

    @staticmethod
    def _positive(amount: Money | None, operation: str) -> Money:
        if amount is None or not amount.is_positive():
            raise CallNotMade(f"a {operation} needs a positive amount")
        return amount

    @staticmethod
    def _profile(token: str | None) -> dict:
        customer, _, payment = (token or "").partition("/")
        if not customer or not payment or "/" in payment:
            raise CallNotMade(
                "the payment method's token must be customerProfileId/paymentProfileId"
            )
        return {"customerProfileId": customer, "paymentProfile": {"paymentProfileId": payment}}

    @staticmethod
    def _reference(request: GatewayRequest, operation: str) -> str:
        if not trans_id(request.reference):
            raise CallNotMade(f"a {operation} needs the transId of the charge")
        return request.reference

    # Answers ----------------------------------------------------------------------------------

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        data = _parse(body)
        if data is None:
            return self.unreadable(f"HTTP {http_status} with a body that is not an API answer")
        messages = data.get("messages")
        if not isinstance(messages, dict) or "resultCode" not in messages:
            return self.unreadable(f"HTTP {http_status} with an answer without messages")
        ok = messages["resultCode"] == "Ok"
        top = _first(messages.get("message"), "message")
        if operation == "lookup":
            return self._lookup(data, ok, top)
        if operation == "refund_of":
            return self._refund_of(data, ok, top)
        if operation == "list":
            return self._list(data, top)
        answer = data.get("transactionResponse", {})
        if not isinstance(answer, dict):
            return self.unreadable("the transactionResponse is not an object")
        error = _first(answer.get("errors"), "error")
        if error is not None:
            code, text = error.get("errorCode"), error.get("errorText")
        else:
            message = _first(answer.get("messages"), "message") or {}
            code, text = message.get("code"), message.get("description")
        if code is not None and str(code) != "":
            return self.mapped(str(code), text, reference=trans_id(answer.get("transId")))
        # Authentication and schema errors come without a transactionResponse; an Ok without a
        # reason code is no completed transaction (Authorize.Net's own sample code says so).
        if not ok and top is not None and top.get("code"):
            return self.mapped(str(top["code"]), top.get("text"))
        return self.unreadable("a transaction answer without a reason code")

    def lookup(self, request: GatewayRequest) -> GatewayResult:
        """A charge by its transId; without one (it timed out), the newest unsettled charges by
        its reference, and where none is its own, the settled batches since it was sent: a
        charge that settled before anyone asked holds the customer's money as much as one that
        has not, and "not found" would let the next run charge again."""
        result = self._call("lookup", request)
        if trans_id(request.reference):
            return self._with_its_refunds(result)
        searched = request.original_key is not None
        if not searched or result.status is not GatewayStatus.SUCCESS or result.findings:
            return result
        sent = request.original_at
        if sent is None or clock.now() - sent > SETTLED_SEARCH:
            return self.decided_by_settle(
                GatewayStatus.INDETERMINATE,
                f"{result.message}; it was sent more than {SETTLED_SEARCH.days} days ago, so Settle"
                " cannot search the settled batches for it: look it up in the Merchant Interface",
                raw=result.raw,
            )
        held = self.holdings(sent - timedelta(hours=1), clock.now() + timedelta(hours=1))
        if held.problem:
            return self.decided_by_settle(
                GatewayStatus.INDETERMINATE,
                f"{result.message}; the settled batches could not be searched ({held.problem})",
                raw=result.raw,
            )
        own = tuple(f for f in held.findings if f.order_id == _order_field(request))
        if not own:
            return replace(
                result, message=f"{result.message}; none among the settled batches either"
            )
        return replace(
            result,
            message=f"{len(own)} settled transaction(s) with this charge's reference",
            reference=own[0].reference,
            findings=own,
        )

    def holdings(self, since: datetime, until: datetime) -> Holdings:
        """The settled batches of the period (and a little after), each batch's transactions, and
        the open batch: every transaction the account holds that may have been made then. A
        refund among them is told as what its charge has given back (Finding.refunded), not as a
        transaction of its own; a charge whose refunds the listing does not show (none made, or
        made after the batches it reads) says nothing of refunds."""
        found, problem = self._listing(since, until)
        if problem:
            return Holdings(tuple(found), problem)
        given, refunds, problem = self._refunds(found)
        return Holdings(
            tuple(refunded(f, given.get(f.reference)) for f in found if f.reference not in refunds),
            problem,
        )

    def _listing(
        self, since: datetime, until: datetime, *, open_batch: bool = True
    ) -> tuple[list[Finding], str | None]:
        """The transactions of the batches settled from `since` to a little after `until` (at
        most 31 days of them), and of the open batch; why the listing stopped short, or None."""
        # The batch list's answer carries no findings: its cursor is the batches' ids.
        asked = self._call("list", GatewayRequest("list", "", "", period=(since, until)))
        if asked.status is not GatewayStatus.SUCCESS:
            return [], f"The gateway's listing failed: {asked.message}"
        found: list[Finding] = []
        pages = [f"b:{b}:1" for b in (asked.cursor or "").split(",") if b]
        for start in pages + (["u:1"] if open_batch else []):
            problem = self.read_listing((since, until), start, found)
            if problem:
                return found, problem
        return found, None

    def _list(self, data: dict, top: dict | None) -> GatewayResult:
        if top is None or not top.get("code"):
            return self.unreadable("a list answer without a message code")
        code, ref = str(top["code"]), str(data.get("refId") or "")
        if data.get("messages", {}).get("resultCode") != "Ok":
            return self.mapped(code, top.get("text"))
        if ref == "batches":
            ids = [str(b["batchId"]) for b in _items(data.get("batchList"), "batch")
                   if b.get("batchId")]  # fmt: skip
            return self.mapped(code, f"{len(ids)} settled batch(es)", cursor=",".join(ids) or None)
        if not re.fullmatch(r"(b:\d+|u):\d+", ref):
            return self.unreadable("a transaction list that does not echo its page (refId)")
        listed = _items(data.get("transactions"), "transaction")
        try:
            findings = tuple(self._finding(t, order=True) for t in listed)
            total = int(data.get("totalNumInResultSet", len(listed)))
        except (KeyError, TypeError, ValueError, MoneyError) as exc:
            return self.unreadable(f"a listed transaction cannot be read: {exc}")
        return self.mapped(code, f"{len(findings)} transaction(s)", findings=findings,
                           cursor=listing.next_page(ref, len(listed), total))  # fmt: skip

    def _lookup(self, data: dict, ok: bool, top: dict | None) -> GatewayResult:
        if top is None or not top.get("code"):
            return self.unreadable("a lookup answer without a message code")
        code = str(top["code"])
        if not ok:
            return self.mapped(code, top.get("text"))
        if "transaction" in data:
            try:
                finding = self._finding(data["transaction"], with_code=True)
            except (KeyError, TypeError, ValueError, MoneyError) as exc:
                return self.unreadable(f"the transaction cannot be read: {exc}")
            return self.mapped(
                code,
                f"Transaction {finding.reference}: {data['transaction']['transactionStatus']}",
                reference=finding.reference,
                findings=(finding,),
            )
        return self._listed(data, code)

    def _listed(self, data: dict, code: str) -> GatewayResult:
        if data.get("refId") is None:
            return self.unreadable("a transaction list that does not echo the invoice (refId)")
        invoice = str(data["refId"])
        # What the search was by, as a clerk reads it: a charge's own reference, or a number.
        what = f"this charge's reference {invoice}" if _OWN_REFERENCE.fullmatch(invoice) else (
            f"invoice {invoice}"
        )  # fmt: skip
        listed = _items(data.get("transactions"), "transaction")
        try:
            findings = sorted(
                (
                    self._finding(t)
                    for t in listed
                    if str(t.get("invoiceNumber", t.get("invoice", ""))) == invoice
                    # A refund waiting to settle carries its charge's invoiceNumber: no charge.
                    and t.get("transactionStatus") not in REFUND_STATUSES
                ),
                key=lambda f: f.at or datetime.min,
                reverse=True,
            )
            total = int(data.get("totalNumInResultSet", len(listed)))
        except (KeyError, TypeError, ValueError, MoneyError) as exc:
            return self.unreadable(f"a listed transaction cannot be read: {exc}")
        if not findings and total > len(listed):
            return self.decided_by_settle(
                GatewayStatus.INDETERMINATE,
                f"{what[0].upper()}{what[1:]} is not among the newest {len(listed)} of {total} unsettled "
                "transactions; the gateway cannot tell from one page",
            )
        message = (
            f"{len(findings)} unsettled transaction(s) for {what}"
            if findings
            else f"No unsettled transaction for {what} (a settled one is found by its transId)"
        )
        return self.mapped(
            code,
            message,
            reference=findings[0].reference if findings else None,
            findings=tuple(findings),
        )

    def _finding(self, transaction: Any, with_code: bool = False, order: bool = False) -> Finding:
        state = STATES[str(transaction["transactionStatus"])]
        amount = transaction.get("settleAmount")
        if state not in (Settlement.SETTLED, Settlement.REFUNDED) and "authAmount" in transaction:
            amount = transaction["authAmount"]
        reason = transaction.get("responseReasonCode") if with_code else None
        # A summary carries invoiceNumber, a transaction's details order.invoiceNumber.
        details = transaction.get("order") if isinstance(transaction.get("order"), dict) else {}
        invoice = transaction.get("invoiceNumber", details.get("invoiceNumber"))
        return Finding(
            state=state,
            amount=Money.parse(str(amount), self.account_currency),
            reference=str(transaction["transId"]),
            at=_utc(transaction.get("submitTimeUTC")),
            code=None if reason is None else str(reason),
            order_id=str(invoice or "") or None if order or with_code else None,
        )

    # Stored bodies ----------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        text = _AUTH_BLOCK.sub(lambda m: _STRING_VALUE.sub(r'\1"[FILTERED]"', m.group(0)), text)
        text = _SECRET.sub(r'\1"[FILTERED]"', text)
        return text


def _order_field(request: GatewayRequest) -> str:
    """What order.invoiceNumber (and a list's refId) carries: the charge's own reference, or for a
    charge recorded before references were sent, or a lookup of the whole invoice, its number."""
    return request.order_reference or request.order_id[:MAX_REF]


def _parse(body: str | bytes) -> dict | None:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        # Authorize.Net starts every answer with a UTF-8 byte-order mark.
        data = json.loads(body.removeprefix(BOM).strip(), parse_float=Decimal)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    # The API reference shows answers wrapped in their XML root, with "-xmlns" attributes.
    names = [k for k in data if not k.startswith(("-", "@"))]
    if "messages" not in data and len(names) == 1 and names[0].endswith("Response"):
        inner = data[names[0]]
        return inner if isinstance(inner, dict) else None
    return data


def _items(value: Any, inner: str) -> list[dict]:
    """A JSON list, a single object, or the XML translation's {inner: [...]}, as a list."""
    if isinstance(value, dict) and inner in value:
        value = value[inner]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _first(value: Any, inner: str) -> dict | None:
    items = _items(value, inner)
    return items[0] if items else None


def _utc(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


PLUGIN = AuthorizeNetGateway
