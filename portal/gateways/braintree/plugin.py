"""The Braintree plugin: the XML gateway API the official client libraries speak.

- Every call goes to /merchants/{merchant_id}/... with HTTP Basic (public key : private key),
  XML bodies and X-ApiVersion 6 (braintree_python util/http.py, configuration.py).
- A charge is a sale of a vaulted payment method, submitted for settlement at once:
  POST .../transactions <transaction><type>sale</type><amount/><payment-method-token/>
  <order-id/><api-request-key/><options><submit-for-settlement/></options></transaction>.
  Settle's key is the order id (what the Control Panel searches by) and the api_request_key
  (Braintree's idempotency key: a repeat with the same request returns the first transaction).
- A void (PUT .../transactions/{id}/void) is allowed while the sale is authorized or
  submitted_for_settlement; once it settles, a refund (POST .../transactions/{id}/refund) gives the
  money back; a refund is a transaction of its own (type credit) whose order id is its Settle key.
- A lookup reads the transaction by id (GET .../transactions/{id}) when Settle knows it, else
  searches by order id: POST .../transactions/advanced_search_ids, then .../advanced_search with
  the ids found, as the client libraries do.
- A sale names its refunds (refund-ids) but not their amounts: a lookup and a listing read the
  refunds themselves (advanced_search by their ids) and tell what the sale has given back.
- Answers: HTTP 201/200 with a <transaction>, or HTTP 422 with an <api-error-response> that holds
  either validation <errors> with numeric codes or, for a decline or a gateway rejection, the
  <transaction> with its status (processor_declined, gateway_rejected). Other HTTP statuses are
  the ones the client raises on (401, 403, 404, 408, 426, 429, 500, 503, 504); their body is
  never read, so a 5xx is never decided by the error it carries.
- An answer decides only for the request it answers. An error answer is decided by its own
  errors; a transaction it carries counts only when it is this request's own, refused (a
  sale for a charge or a void, a refund's credit of the charge), never an earlier one or the
  sale a refund was asked of. A transaction answer counts only as this request's own: the sale
  whose order id is the charge's key, the voided sale asked for, the credit of the sale asked
  to refund; a lookup by id only as the sale asked for.
- Webhooks are form posts of bt_signature ("public_key|hex HMAC-SHA1 with SHA1(private key) as
  key", pairs joined by "&") and bt_payload (base64 of a <notification>)
  (webhook_notification_gateway.py, util/crypto.py).

Sources: braintree/braintree_python@80b03f4 (transaction_gateway.py, transaction.py,
error_codes.py, util/http.py, util/crypto.py, webhook_notification_gateway.py,
webhook_testing_gateway.py, tests/integration/test_transaction_idempotency.py); Braintree's
processor response pages (developer.paypal.com/braintree/docs/reference/general/
processor-responses/); Settle's reference notes gateways.md section 6.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import quote

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
from portal.gateways.braintree import wire
from portal.gateways.webhooks import Notice, UnreadableWebhook
from portal.gateways.xmlread import child_text, parse_xml
from portal.money import Money
from portal.statuses import GatewayStatus

# What a transaction's status says Braintree holds (braintree_python transaction.py Status).
HELD = {
    "authorizing": Settlement.UNSETTLED,
    "authorized": Settlement.UNSETTLED,
    "submitted_for_settlement": Settlement.UNSETTLED,
    "settlement_pending": Settlement.SETTLED,
    "settling": Settlement.SETTLED,
    "settled": Settlement.SETTLED,
    "settlement_confirmed": Settlement.SETTLED,
    "voided": Settlement.VOIDED,
    "processor_declined": Settlement.DECLINED,
    "gateway_rejected": Settlement.DECLINED,
    "failed": Settlement.DECLINED,
    "settlement_declined": Settlement.DECLINED,
    "settlement_failed": Settlement.DECLINED,
    "authorization_expired": Settlement.DECLINED,
}
# Webhook kinds that tell a transaction's final outcome (webhook_notification.py Kind), and the
# mapping key of each for a sale and for a refund. Braintree sends them for bank-account (ACH,
# SEPA) transactions, whose settlement takes days; a card sale's answer is already its outcome.
FINAL_KINDS = {
    "transaction_settled": ("charge.settled", "refund.settled"),
    "transaction_settlement_declined": ("charge.settlement_declined", "refund.settlement_declined"),
    "refund_failed": ("refund.failed", "refund.failed"),
}
# Braintree does not say how soon a new transaction can be found by search: "no such order id"
# this soon after the charge is not taken as proof that it never reached Braintree (Settle's
# caution, as for Stripe's search).
SEARCH_LAG = timedelta(minutes=10)
# The transaction each operation makes or acts on: a charge makes a sale, a void answers the
# sale it voided, a refund makes a credit of its own that names the sale it refunds.
OWN_TYPE = {"charge": "sale", "void": "sale", "refund": "credit"}
_PAYLOAD = re.compile(rb"^[A-Za-z0-9+=/\n]+$")  # what the client library accepts as bt_payload
_SECRETS = re.compile(r"(<payment-method-token>)[^<]*(</payment-method-token>)")
_CARD = re.compile(r"(<(?:number|cvv|bin|last-4|token)>)[^<]*(</)")


class BraintreeGateway(Gateway):
    name = "braintree"
    display_name = "Braintree"
    required_credentials = ("merchant_id", "public_key", "private_key")
    live_hosts = ("api.braintreegateway.com",)
    test_hosts = ("api.sandbox.braintreegateway.com",)
    # "USD:acct_usd, EUR:acct_eur": the merchant account to charge each currency in (Braintree
    # charges in the merchant account's currency; a currency without one is refused, unsent).
    # Unset: the default merchant account, and a sale in another currency is held for review.
    optional_credentials = ("merchant_accounts",)
    # The private key signs Braintree's webhooks (no separate secret).
    webhook_credential = "private_key"
    # The order id is Settle's key of the charge, so Braintree cannot list an invoice's charges.
    invoice_listing = None
    not_reconcilable = None  # a search by created_at lists a period
    # Braintree's advanced_search returns the transactions of at most 50 ids at a time.
    page_size = 50

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        creds = self.config.credentials
        base = (
            f"{self.config.base_url.rstrip('/')}/merchants/{quote(creds['merchant_id'], safe='')}"
        )
        basic = base64.b64encode(f"{creds['public_key']}:{creds['private_key']}".encode()).decode()
        headers = {
            "Authorization": f"Basic {basic}",
            "Accept": "application/xml",
            "Content-Type": "application/xml",
            "X-ApiVersion": "6",
        }
        if operation == "charge":
            if request.amount is None or not request.token:
                raise CallNotMade("a charge needs an amount and a payment method token")
            fields = {
                "type": "sale",
                "amount": str(request.amount.amount),
                "payment-method-token": request.token,
                "order-id": request.idempotency_key,
                "api-request-key": request.idempotency_key,
            }
            account = wire.merchant_account(creds.get("merchant_accounts"), request.amount.currency)
            if account:
                fields["merchant-account-id"] = account
            body = wire.xml("transaction", fields, {"submit-for-settlement": True})
            return HttpCall("POST", f"{base}/transactions", headers, body)
        if operation in ("void", "refund") and not request.reference:
            raise CallNotMade(f"a {operation} needs Braintree's id of the sale")
        if operation == "void":
            path = f"{base}/transactions/{quote(request.reference, safe='')}/void"
            body = wire.xml("transaction", {"api-request-key": request.idempotency_key})
            return HttpCall("PUT", path, headers, body)
        if operation == "refund":
            fields = {"order-id": request.idempotency_key,
                      "api-request-key": request.idempotency_key}  # fmt: skip
            if request.amount is not None:
                fields["amount"] = str(request.amount.amount)
            path = f"{base}/transactions/{quote(request.reference, safe='')}/refund"
            return HttpCall("POST", path, headers, wire.xml("transaction", fields))
        if operation == "lookup" and request.reference:
            path = f"{base}/transactions/{quote(request.reference, safe='')}"
            return HttpCall("GET", path, headers)
        if operation == "refunds":  # the transactions of these ids (a sale's refund-ids)
            search = ET.Element("search")
            ids = ET.SubElement(search, "ids", type="array")
            for found in (request.cursor or "").split(","):
                ET.SubElement(ids, "item").text = found
            return HttpCall("POST", f"{base}/transactions/advanced_search", headers,
                            ET.tostring(search, encoding="unicode"))  # fmt: skip
        if operation in ("search_ids", "lookup", "list_ids", "list"):
            search = ET.Element("search")
            if operation in ("list_ids", "list"):
                created = ET.SubElement(search, "created-at")
                for bound, at in zip(("min", "max"), request.period, strict=True):
                    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
                    ET.SubElement(created, bound, type="datetime").text = stamp
            elif request.original_key:
                order = ET.SubElement(ET.SubElement(search, "order-id"), "is")
                order.text = request.original_key
            else:
                raise CallNotMade("a lookup needs Braintree's id or the charge's key (order id)")
            if operation in ("search_ids", "list_ids"):
                return HttpCall("POST", f"{base}/transactions/advanced_search_ids", headers,
                                ET.tostring(search, encoding="unicode"))  # fmt: skip
            ids = ET.SubElement(search, "ids", type="array")
            for found in (request.cursor or "").split(","):
                ET.SubElement(ids, "item").text = found
            return HttpCall("POST", f"{base}/transactions/advanced_search", headers,
                            ET.tostring(search, encoding="unicode"))  # fmt: skip
        raise CallNotMade(f"unknown operation {operation!r}")

    def charge(self, request: GatewayRequest) -> GatewayResult:
        """A sale succeeds only for the amount and currency asked: Braintree charges in the
        merchant account's currency, and a partial approval charges less."""
        result = self._its_own(self._call("charge", request), "order-id", request.idempotency_key)
        if result.status is not GatewayStatus.SUCCESS:
            return result
        body = (result.raw.get("response") or {}).get("body") or ""
        root = parse_xml(body)
        charged = wire.money(root) if root is not None and root.tag == "transaction" else None
        if charged == request.amount:
            return result
        reason = (
            f"Braintree charged {charged or 'an amount Settle cannot read'} where Settle asked for"
            f" {request.amount}: check the merchant account's currency and the sale in the"
            " Braintree Control Panel"
        )
        guidance = (
            "Void or refund the sale in the Braintree Control Panel (or attempt a refund and"
            " unlock); set merchant_accounts so that each currency is charged in its own account."
        )
        return replace(result, status=GatewayStatus.REQUIRES_REVIEW, message=reason, reason=reason,
                       guidance=guidance, rule="Settle: the sale's amount differs from the one asked")  # fmt: skip

    def refund(self, request: GatewayRequest) -> GatewayResult:
        """A refund's answer counts only as the credit of the sale Settle asked to refund."""
        result = self._call("refund", request)
        return self._its_own(result, "refunded-transaction-id", request.reference)

    def void(self, request: GatewayRequest) -> GatewayResult:
        """A void's answer counts only as the sale Settle asked to void."""
        return self._its_own(self._call("void", request), "id", request.reference)

    def _its_own(self, result: GatewayResult, field: str, expected: str | None) -> GatewayResult:
        """A result read from a transaction stands only when that transaction is this request's
        own, which interpret() cannot know: its `field` must be what the request sent. Else an
        error answer is decided by its own errors, and a transaction answer tells nothing of
        this request (the money may have moved): Indeterminate."""
        if result.reference is None:  # decided by errors, a code or Settle: no transaction read
            return result
        root = parse_xml((result.raw.get("response") or {}).get("body") or "")
        if root is not None and root.tag == "api-error-response":
            txn = root.find("transaction")
        else:
            txn = root if root is not None and root.tag == "transaction" else None
        told = child_text(txn, field) if txn is not None else None
        if told and told == expected:
            return result
        if txn is not None and root.tag == "api-error-response":
            return self._refusal(root).with_raw(result.raw)
        reason = (
            f"Braintree answered with transaction {result.reference}, whose {field} is"
            f" {told or 'missing'} where this request's is {expected}: not its own, so it says"
            " nothing of what this request did; look it up in the Braintree Control Panel"
        )
        return self.unreadable(reason).with_raw(result.raw)

    def holdings(self, since: datetime, until: datetime) -> Holdings:
        """The sales created in [since, until): their ids by a created_at search (Braintree's
        range includes both ends), then the transactions, 50 ids a page."""
        period = (since, until)
        ids = self._call("list_ids", GatewayRequest("list", "", "", period=period))
        if ids.status is not GatewayStatus.SUCCESS:
            return Holdings((), f"The gateway's listing failed: {ids.message}")
        every = ids.cursor.split(",") if ids.cursor else []
        pages = [every[i : i + self.page_size] for i in range(0, len(every), self.page_size)]
        if len(pages) > self.max_listing_pages:
            return Holdings((), f"More than {self.max_listing_pages} pages: not read")
        found: list[Finding] = []
        for page in pages:
            request = GatewayRequest("list", "", "", period=period, cursor=",".join(page))
            result = self._call("list", request)
            if result.status is not GatewayStatus.SUCCESS:
                return Holdings(tuple(found), f"The gateway's listing failed: {result.message}")
            result, problem = self._with_refunds(result)
            found.extend(f for f in result.findings if f.at is None or since <= f.at < until)
            if problem:
                return Holdings(tuple(found), f"The gateway's listing failed: {problem}")
        return Holdings(tuple(found))

    def lookup(self, request: GatewayRequest) -> GatewayResult:
        """By id in one call; by order id in two, as the client libraries search: the ids that
        match, then those transactions (no ids: nothing holds that order id)."""
        if request.reference:
            found = self._call("lookup", request)
            named = [f.reference for f in found.findings]
            if found.status is GatewayStatus.SUCCESS and named != [request.reference]:
                # Another transaction (or a refund's credit) is not the sale asked for: it tells
                # neither what that sale holds nor that nothing is held.
                why = f"asked for sale {request.reference}, Braintree answered {named or 'none'}"
                return self.unreadable(why).with_raw(found.raw)
            return self._told_with_refunds(found)
        ids = self._call("search_ids", request)
        if ids.status is not GatewayStatus.SUCCESS:
            return ids
        if not ids.cursor:
            why = "Braintree's search found no sale with this order id minutes after the charge"
            return self.too_soon_to_tell(request, SEARCH_LAG, ids, why)
        found = self._call("lookup", replace(request, cursor=ids.cursor))
        asked = len(ids.cursor.split(","))
        if found.status is GatewayStatus.SUCCESS and len(found.findings) < asked:
            return self.unreadable(f"the search named {asked} transaction(s) and returned fewer")
        return self._told_with_refunds(found)

    def _told_with_refunds(self, result: GatewayResult) -> GatewayResult:
        """A lookup's sales with what their refunds gave back; where the refunds cannot be read,
        the sales as found, and the message says so (a sale with refunds is then reviewed)."""
        result, problem = self._with_refunds(result)
        if problem:
            return replace(
                result, message=f"{result.message}; its refunds are not known ({problem})"
            )
        partly = "".join(
            f"; {f.reference} partly refunded, {f.refunded} of {f.amount}"
            for f in result.findings
            if f.partly_refunded
        )
        return replace(result, message=result.message + partly)

    def _with_refunds(self, result: GatewayResult) -> tuple[GatewayResult, str | None]:
        """The sales of a lookup's or a listing's answer, each with what its refunds gave back
        (Finding.refunded): a sale names its refunds (refund-ids) but not their amounts, so the
        refunds are read by their ids, 50 a search. A refund counts while it holds money for the
        customer (submitted for settlement, settling, settled); a voided or declined one gave
        nothing back. A sale refunded in full is REFUNDED. Also why the refunds could not be
        read, or None; a sale whose refunds were not read is left as it was found."""
        if result.status is not GatewayStatus.SUCCESS or not result.findings:
            return result, None
        root = parse_xml((result.raw.get("response") or {}).get("body") or "")
        if root is None:
            return result, None
        sales = [root] if root.tag == "transaction" else root.findall("transaction")
        named: dict[str, list[str]] = {}
        for sale in sales:
            refunds = sale.find("refund-ids")
            if child_text(sale, "type") != "credit" and refunds is not None:
                ids = [(i.text or "").strip() for i in refunds.findall("item")]
                named[child_text(sale, "id") or ""] = [i for i in ids if i]
        wanted = sorted({i for ids in named.values() for i in ids})
        credits: dict[str, Finding] = {}
        for start in range(0, len(wanted), self.page_size):
            page = ",".join(wanted[start : start + self.page_size])
            asked = self._call("refunds", GatewayRequest("refunds", "", "", cursor=page))
            if asked.status is not GatewayStatus.SUCCESS:
                return result, f"the sales' refunds could not be read: {asked.message}"
            credits.update((f.reference or "", f) for f in asked.findings)
        findings = tuple(
            _refunded(f, named.get(f.reference or ""), credits) for f in result.findings
        )
        # Where several sales carry the key, one that holds money comes first (recovery reads it).
        held = tuple(sorted(findings, key=lambda f: not f.state.holds_money))
        return replace(result, findings=held, reference=held[0].reference), None

    # Webhooks ---------------------------------------------------------------------------------

    def verify_webhook(self, headers: dict, body: bytes, credentials: dict) -> bool:
        """bt_signature holds "public_key|signature" pairs joined by "&"; the pair of this
        gateway's public key must be the HMAC-SHA1 of bt_payload (or of bt_payload plus a
        newline) keyed with SHA1 of the private key, as the client library checks it."""
        public, private = credentials.get("public_key") or "", credentials.get("private_key") or ""
        try:
            signature, payload = wire.form(body)
        except UnreadableWebhook:
            return False
        if not public or not private or not _PAYLOAD.match(payload) or not signature.isascii():
            return False
        pairs = [pair.split("|", 1) for pair in signature.split("&") if "|" in pair]
        mine = [s for key, s in pairs if hmac.compare_digest(key.encode(), public.encode())]
        if not mine:
            return False
        key = hashlib.sha1(private.encode()).digest()
        expected = [hmac.new(key, p, hashlib.sha1).hexdigest() for p in (payload, payload + b"\n")]
        return any(hmac.compare_digest(e, mine[0]) for e in expected)

    def read_webhook(self, body: bytes) -> list[Notice]:
        """One <notification> per delivery: its kind, timestamp and subject. Braintree gives a
        notification no id of its own; a transaction settles (or fails to) once, so the kind and
        the transaction's id name the event, and a re-delivery has the same name."""
        _, payload = wire.form(body)
        try:
            root = parse_xml(base64.b64decode(payload).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError):
            root = None
        if root is None or root.tag != "notification":
            raise UnreadableWebhook("bt_payload is not a Braintree notification")
        kind = child_text(root, "kind") or ""
        occurred = wire.time(child_text(root, "timestamp"))
        txn = root.find("subject/transaction")
        if not kind or txn is None or not child_text(txn, "id"):
            digest = hashlib.sha256(payload).hexdigest()[:24]  # no subject id: the payload's own
            return [Notice(f"{kind or 'notification'}/{digest}", kind or "notification", None,
                           False, None, occurred_at=occurred)]  # fmt: skip
        txn_id = child_text(txn, "id")
        about = {"event_id": f"{kind}/{txn_id}", "event_type": kind, "occurred_at": occurred,
                 "reference": txn_id, "key": child_text(txn, "order-id"),
                 "amount": wire.money(txn)}  # fmt: skip
        if kind not in FINAL_KINDS:
            return [Notice(**about, operation=None, final=False, result=None)]
        refund = child_text(txn, "type") == "credit" or kind == "refund_failed"
        operation = "refund" if refund else "charge"
        code = FINAL_KINDS[kind][refund]
        result = replace(self.mapped(code, None), reference=txn_id, event=about["event_id"])
        return [Notice(**about, operation=operation, final=True, result=result)]

    # Answers ----------------------------------------------------------------------------------

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        if http_status not in (200, 201, 422):
            code = f"http_{http_status}"
            if http_status >= 500 and self.mapping.lookup(code).unmapped:
                code = "http_5xx"  # any other server error after the request was sent
            return self.mapped(code, None)
        root = parse_xml(body)
        if root is None:
            return self.unreadable(f"HTTP {http_status} with a body that is not XML")
        if operation in ("search_ids", "list_ids"):
            return self._ids(root)
        if operation in ("lookup", "list"):
            return self._lookup(root)
        if operation == "refunds":
            if root.tag != "credit-card-transactions":
                return self.unreadable(f"a search for refunds answered with <{root.tag}>")
            credits = [t for t in root.findall("transaction") if child_text(t, "type") == "credit"]
            return self.found("lookup.found", credits, self._finding, "refund")
        if root.tag == "api-error-response":
            return self._error(root, operation)
        if root.tag != "transaction":
            return self.unreadable(f"a {operation} answered with <{root.tag}>")
        if not _own(root, operation):
            kind = child_text(root, "type") or "untyped"
            return self.unreadable(f"a {operation} answered with a {kind} transaction, not its own")
        return self._transaction(root, operation)

    def _transaction(self, txn: ET.Element, operation: str) -> GatewayResult:
        code = wire.code(txn, operation)
        message = child_text(txn, "processor-response-text") if code[0].isdigit() else None
        return self.mapped(code, message, reference=child_text(txn, "id"))

    def _error(self, root: ET.Element, operation: str) -> GatewayResult:
        """A 422 is decided by its own errors. Where it has no validation error, a decline or a
        rejection carries the transaction this request made, refused, and its code decides. Any
        other transaction it carries (the sale a refund was asked of, an earlier sale) tells
        nothing of this request: never its status, never its reference."""
        if _codes(root):
            return self._refusal(root)
        txn = root.find("transaction")
        if txn is None or not _own(txn, operation):
            return self._refusal(root)
        status = child_text(txn, "status") or ""
        if HELD.get(status) is not Settlement.DECLINED:
            # An error answer whose own transaction holds money contradicts itself: it may have.
            return self.unreadable(
                f"an error answer to a {operation} whose transaction is {status}"
            )
        return self._transaction(txn, operation)

    def _refusal(self, root: ET.Element) -> GatewayResult:
        """An error answer by its errors alone: the first validation error's numeric code
        (error_codes.py) with Braintree's message, else "validation_error" with its message."""
        codes = _codes(root)
        if not codes:
            return self.mapped("validation_error", child_text(root, "message"))
        return self.mapped(child_text(codes[0], "code"), child_text(codes[0], "message"))

    def _ids(self, root: ET.Element) -> GatewayResult:
        if root.tag != "search-results" or root.find("ids") is None:
            return self.unreadable("a search answered without its ids")
        ids = [item.text.strip() for item in root.iter("item") if item.text and item.text.strip()]
        if not ids:
            return self.found("lookup.found", [], self._finding, "transaction")
        return replace(self.mapped("lookup.found", f"{len(ids)} id(s)"), cursor=",".join(ids))

    def _lookup(self, root: ET.Element) -> GatewayResult:
        if root.tag == "transaction":
            items = [root]
        elif root.tag == "credit-card-transactions":
            items = root.findall("transaction")
        elif root.tag == "api-error-response":
            return self._error(root, "lookup")
        else:
            return self.unreadable(f"a lookup answered with <{root.tag}>")
        # A refund is a transaction of its own: the sale's own state says what it holds.
        sales = [t for t in items if child_text(t, "type") != "credit"]
        result = self.found("lookup.found", sales, self._finding, "transaction")
        # Where several sales carry the key, one that holds money comes first (recovery reads it).
        held = tuple(sorted(result.findings, key=lambda f: not f.state.holds_money))
        return replace(result, findings=held, reference=held[0].reference if held else None)

    @staticmethod
    def _finding(txn: ET.Element) -> Finding:
        status = child_text(txn, "status") or ""
        if status not in HELD:
            raise ValueError(f"unknown transaction status {status!r}")
        amount = wire.money(txn)
        if amount is None:
            raise ValueError("a transaction without its amount and currency")
        code = wire.code(txn, "charge")
        refunds = txn.find("refund-ids")
        if HELD[status] is Settlement.SETTLED and refunds is not None and refunds.findall("item"):
            # Refunded, in full or in part (the refunds' amounts are not in the sale: the lookup
            # reads them into Finding.refunded): a clerk looks, and a Refund & Unlock's full
            # refund is refused unless nothing is left.
            code = "charge.settled_with_refunds"
        return Finding(state=HELD[status], amount=amount, reference=child_text(txn, "id"),
                       at=wire.time(child_text(txn, "created-at")), code=code,
                       key=child_text(txn, "order-id"))  # fmt: skip

    def scrub(self, text: str) -> str:
        """No payment method token, card number, CVV or bin is stored. A webhook's form is
        stored as its decoded notification, scrubbed the same way, without its signature."""
        if text.startswith(("bt_signature=", "bt_payload=")):
            try:
                text = base64.b64decode(wire.form(text.encode("ascii"))[1]).decode("utf-8")
            except (UnreadableWebhook, binascii.Error, UnicodeError):
                return "[a webhook form Settle could not read]"
        return _CARD.sub(r"\1[FILTERED]\2", _SECRETS.sub(r"\1[FILTERED]\2", text))


def _refunded(sale: Finding, refund_ids: list[str] | None, credits: dict[str, Finding]) -> Finding:
    """A sale with what its refunds gave back: None where the answer named no refund-ids, or
    where one of its refunds was not read (or is in another currency)."""
    if refund_ids is None or sale.amount is None:
        return sale
    given = Money.zero(sale.amount.currency)
    for refund_id in refund_ids:
        credit = credits.get(refund_id)
        if credit is None or credit.amount is None or credit.amount.currency != given.currency:
            return sale
        if credit.state.holds_money:
            given += credit.amount
    whole = sale.state is Settlement.SETTLED and given >= sale.amount
    return replace(sale, state=Settlement.REFUNDED if whole else sale.state, refunded=given)


def _own(txn: ET.Element, operation: str) -> bool:
    """Whether an answer's transaction can be this operation's own, as far as the answer alone
    tells (OWN_TYPE; a refund's credit names the sale it refunds). A lookup makes none."""
    if operation not in OWN_TYPE or child_text(txn, "type") != OWN_TYPE[operation]:
        return False
    return operation != "refund" or bool(child_text(txn, "refunded-transaction-id"))


def _codes(root: ET.Element) -> list[ET.Element]:
    """An <api-error-response>'s own validation errors (under <errors>), those with a code."""
    errors = root.find("errors")
    return [e for e in errors.iter("error") if child_text(e, "code")] if errors is not None else []


PLUGIN = BraintreeGateway
