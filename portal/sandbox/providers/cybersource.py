"""CyberSource's emulation: the Simple Order API over SOAP and the On-Demand Single Transaction Query.

- POST /commerce/1.x/transactionProcessor: a SOAP 1.1 requestMessage with a WS-Security
  UsernameToken (merchant id, transaction key). Sales (ccAuthService + ccCaptureService), credits
  (ccCreditService) and voids (voidService) answer with a replyMessage in the request's
  transaction-data namespace, content type text/xml, no BOM, as in Active Merchant's recorded
  replies; rejected credentials answer with CyberSource's wsse:FailedCheck SOAP fault (HTTP 500).
- POST /ebc/Query and /ebctest/Query: the transaction query (HTTP Basic with the report user), by
  requestID or by merchantReferenceNumber and targetDate, answering a Transaction Detail report
  (tdr 1.7); its refusals are plain pages with HTTP 400 or 401.
- Duplicate check as CyberSource's (reason 104): an authorization whose merchantReferenceCode was
  used by another one in the last 15 minutes is refused with 104 and charges nothing. After 15
  minutes CyberSource would charge again, and so does this emulation: a re-send is never safe.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import defusedxml.ElementTree as defused
from defusedxml import DefusedXmlException
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from portal.money import MoneyError, parse_amount
from portal.sandbox.emulator import Emulator, outcome_for

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DEFAULT_TRANSACTION_NS = "urn:schemas-cybersource-com:transaction-data-1.201"
DUPLICATE_WINDOW = timedelta(minutes=15)

# Outcome kind -> CyberSource reason code. "refuse" answers with the FailedCheck fault instead, and
# "unknown" with a code CyberSource does not document (so it is in no mapping).
CODES = {
    "approve": "100",
    "decline": "204",
    "do_not_honor": "203",
    "cvc": "211",
    "address": "200",
    "closed": "231",
    "review": "480",
    "timeout": "151",
    "misconfigured": "234",
    "unknown": "999",
}
DECISIONS = {"100": "ACCEPT", "480": "REVIEW", "150": "ERROR", "151": "ERROR", "152": "ERROR"}
# How the Transaction Detail report shows a declined authorization: (RFlag, RMsg), by reason code.
DECLINE_FLAGS = {
    "200": ("DAVSNO", "AVS check failed"),
    "203": ("DCARDREFUSED", "General decline of the card"),
    "204": ("DCARDREFUSED", "Insufficient funds in the account"),
    "211": ("DCV", "Invalid card verification number"),
    "231": ("DINVALIDCARD", "Invalid account number"),
    "234": ("DINVALIDDATA", "A problem exists with your CyberSource merchant configuration"),
}
FAILED_CHECK = ("wsse:FailedCheck", "Security Data : UsernameToken authentication failed.")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str | None:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else None


def _first(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    return next((e for e in element.iter() if _local(e.tag) == name), None)


def _text(element: ET.Element | None, path: str) -> str:
    """The stripped text at a slash-separated path of local names, or ''."""
    for name in path.split("/"):
        if element is None:
            return ""
        element = next((c for c in element if _local(c.tag) == name), None)
    return (element.text or "").strip() if element is not None else ""


def _runs(message: ET.Element, service: str) -> ET.Element | None:
    found = next((c for c in message if _local(c.tag) == service), None)
    return found if found is not None and found.get("run") == "true" else None


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _new_request_id() -> str:
    # CyberSource request IDs are 22 digits.
    return f"{time.time_ns() // 1_000_000 % 10**13:013d}{secrets.randbelow(10**9):09d}"


def _follow_id(charge_id: str, kind: str) -> str:
    """The requestID of a void or credit of a charge: derived, so the report shows the same one."""
    digest = int(hashlib.sha256(f"{charge_id}:{kind}".encode()).hexdigest(), 16)
    return f"{digest % 10**22:022d}"


def _stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Reject(Exception):
    """A request CyberSource refuses with a reason code (101, 102) before processing it."""

    def __init__(self, code: str, missing=(), invalid=()):
        super().__init__(code)
        self.code, self.missing, self.invalid = code, list(missing), list(invalid)


class CyberSourceEmulator(Emulator):
    provider = "cybersource"
    credentials = {
        "merchant_id": "settle_sandbox",
        "transaction_key": "sandbox-transaction-key-0123456789abcdef",
        "report_username": "settle_reports",
        "report_password": "sandbox-report-password",
    }

    urls = Map(
        [
            Rule("/commerce/1.x/transactionProcessor", methods=["POST"], endpoint="soap"),
            Rule("/ebc/Query", methods=["POST"], endpoint="query"),
            Rule("/ebctest/Query", methods=["POST"], endpoint="query"),
        ]
    )

    def handle(self, request: Request) -> Response:
        try:
            endpoint, _ = self.urls.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return exc.get_response(request.environ)
        return getattr(self, f"on_{endpoint}")(request)

    # The Simple Order API ---------------------------------------------------------------------

    def on_soap(self, request: Request) -> Response:
        try:
            # What arrives is untrusted: defusedxml refuses entity declarations (billion laughs,
            # whose smaller kin the standard library's parser expands) and external references.
            envelope = defused.fromstring(request.get_data())
        except DefusedXmlException:
            return self.fault(
                "soap:Client", "XML parse error: entity declarations are not accepted."
            )
        except ET.ParseError:
            return self.fault("soap:Client", "XML parse error: the request is not well-formed.")
        message = _first(_first(envelope, "Body"), "requestMessage")
        if _local(envelope.tag) != "Envelope" or message is None:
            return self.fault(
                "soap:Client", "The request is not a Simple Order API requestMessage."
            )
        token = _first(_first(envelope, "Header"), "UsernameToken")
        if token is None:
            return self.fault("wsse:InvalidSecurity", "Security Data : Security processing failed.")
        merchant_id = _text(message, "merchantID")
        if (
            _text(token, "Username") != self.credentials["merchant_id"]
            or _text(token, "Password") != self.credentials["transaction_key"]
            or merchant_id != self.credentials["merchant_id"]
        ):
            return self.fault(*FAILED_CHECK)
        namespace = _namespace(message.tag) or DEFAULT_TRANSACTION_NS
        reference_code = _text(message, "merchantReferenceCode")
        try:
            if not reference_code:
                raise _Reject("101", missing=["c:merchantReferenceCode"])
            if _runs(message, "ccAuthService") is not None:
                return self.sale(namespace, reference_code, message)
            if _runs(message, "ccCreditService") is not None:
                return self.credit(namespace, reference_code, message)
            if _runs(message, "voidService") is not None:
                return self.void(namespace, reference_code, message)
            raise _Reject("102", invalid=["c:ccAuthService_run"])
        except _Reject as reject:
            reply = self.reply(namespace, reference_code, _new_request_id(), reject.code)
            for field in reject.missing:
                _add(reply, "c:missingField", field)
            for field in reject.invalid:
                _add(reply, "c:invalidField", field)
            return self.soap(reply)

    def sale(self, namespace: str, reference_code: str, message: ET.Element) -> Response:
        amount, currency = self._amount(message)
        token = _text(message, "recurringSubscriptionInfo/subscriptionID")
        if not token:
            raise _Reject("101", missing=["c:recurringSubscriptionInfo/c:subscriptionID"])
        request_id = _new_request_id()
        if self._recent_authorization(reference_code):
            # The duplicate check: refused, nothing charged, and not the first answer either.
            return self.deliver(
                self.soap(self.reply(namespace, reference_code, request_id, "104")), None
            )
        outcome = outcome_for(token)
        if outcome.kind == "refuse":
            return self.deliver(self.fault(*FAILED_CHECK), outcome.fault)
        code = CODES[outcome.kind]
        invoice = next(
            (
                (f.text or "").strip()
                for f in message.iter()
                if _local(f.tag) == "mddField" and f.get("id") == "1"
            ),
            "",
        )
        self.ledger.add_charge(
            self.provider, reference_code, invoice, amount, currency, code, outcome.moved,
            charge_id=request_id,
        )  # fmt: skip
        reply = self.reply(namespace, reference_code, request_id, code)
        if code in ("100", "480"):
            _add(_add(reply, "c:purchaseTotals"), "c:currency", currency)
        if code != "151":
            self._auth_reply(reply, code, amount)
        if code == "100":
            capture = _add(reply, "c:ccCaptureReply")
            _add(capture, "c:reasonCode", "100")
            _add(capture, "c:requestDateTime", _stamp())
            _add(capture, "c:amount", str(amount))
            _add(capture, "c:reconciliationID", request_id[-16:])
        return self.deliver(self.soap(reply), outcome.fault)

    @staticmethod
    def _auth_reply(reply: ET.Element, code: str, amount: Decimal) -> None:
        auth = _add(reply, "c:ccAuthReply")
        # Under Decision Manager review the authorization itself was approved.
        _add(auth, "c:reasonCode", "100" if code == "480" else code)
        if code not in ("100", "480", "200"):
            return
        _add(auth, "c:amount", str(amount))
        _add(auth, "c:authorizationCode", f"{secrets.randbelow(10**6):06d}")
        _add(auth, "c:avsCode", "N" if code == "200" else "Y")
        _add(auth, "c:avsCodeRaw", "N" if code == "200" else "Y")
        _add(auth, "c:cvCode", "M")
        _add(auth, "c:authorizedDateTime", _stamp())
        _add(auth, "c:processorResponse", "00")

    def _recent_authorization(self, reference_code: str) -> bool:
        now = datetime.now(UTC).replace(tzinfo=None)
        return any(
            now - datetime.fromisoformat(charge["created"]) < DUPLICATE_WINDOW
            for charge in self.ledger.find(self.provider, key=reference_code)
        )

    def credit(self, namespace: str, reference_code: str, message: ET.Element) -> Response:
        capture_id = _text(message, "ccCreditService/captureRequestID")
        if not capture_id:
            raise _Reject("101", missing=["c:ccCreditService/c:captureRequestID"])
        amount, currency = self._amount(message)
        charge = self.ledger.charge(self.provider, capture_id)
        state = charge["state"] if charge else "missing"
        refusal = {"missing": "241", "declined": "241", "voided": "247"}.get(state)
        if refusal is None and state not in ("settled", "refunded"):
            # Not yet sent to the processor: Settle's sandbox only credits settled captures.
            raise _Reject("102", invalid=["c:ccCreditService/c:captureRequestID"])
        if refusal is None and currency != charge["currency"]:
            raise _Reject("102", invalid=["c:purchaseTotals/c:currency"])
        # A capture may be credited several times, up to what it captured.
        if refusal is None and amount > Decimal(charge["amount"]) - _refunded(charge):
            refusal = "235"  # the credits would exceed what was captured
        request_id = _new_request_id()
        if refusal:
            return self.soap(self.reply(namespace, reference_code, request_id, refusal))
        self.ledger.add_refund(self.provider, capture_id, amount, refund_id=request_id)
        reply = self.reply(namespace, reference_code, request_id, "100")
        _add(_add(reply, "c:purchaseTotals"), "c:currency", currency)
        credit = _add(reply, "c:ccCreditReply")
        _add(credit, "c:reasonCode", "100")
        _add(credit, "c:requestDateTime", _stamp())
        _add(credit, "c:amount", str(amount))
        _add(credit, "c:reconciliationID", request_id[-16:])
        return self.soap(reply)

    def void(self, namespace: str, reference_code: str, message: ET.Element) -> Response:
        target = _text(message, "voidService/voidRequestID")
        if not target:
            raise _Reject("101", missing=["c:voidService/c:voidRequestID"])
        charge = self.ledger.charge(self.provider, target)
        state = charge["state"] if charge else "missing"
        refusal = {
            "missing": "241",
            "declined": "241",
            "voided": "243",
            "settled": "246",  # already sent to the processor: refund it instead
            "refunded": "246",
        }.get(state)
        request_id = _follow_id(target, "void")
        if refusal:
            return self.soap(self.reply(namespace, reference_code, request_id, refusal))
        self.ledger.void(self.provider, target)
        reply = self.reply(namespace, reference_code, request_id, "100")
        _add(_add(reply, "c:purchaseTotals"), "c:currency", charge["currency"])
        void = _add(reply, "c:voidReply")
        _add(void, "c:reasonCode", "100")
        _add(void, "c:requestDateTime", _stamp())
        _add(void, "c:amount", charge["amount"])
        _add(void, "c:currency", charge["currency"].lower())
        return self.soap(reply)

    @staticmethod
    def _amount(message: ET.Element) -> tuple[Decimal, str]:
        currency = _text(message, "purchaseTotals/currency")
        total = _text(message, "purchaseTotals/grandTotalAmount")
        missing = [
            f"c:purchaseTotals/c:{name}"
            for name, value in (("currency", currency), ("grandTotalAmount", total))
            if not value
        ]
        if missing:
            raise _Reject("101", missing=missing)
        try:
            amount = parse_amount(total, currency)
        except MoneyError:
            raise _Reject("102", invalid=["c:purchaseTotals/c:grandTotalAmount"]) from None
        if amount <= 0:
            raise _Reject("102", invalid=["c:purchaseTotals/c:grandTotalAmount"])
        return amount, currency

    # SOAP answers -----------------------------------------------------------------------------

    @staticmethod
    def reply(namespace: str, reference_code: str, request_id: str, code: str) -> ET.Element:
        reply = ET.Element("c:replyMessage", {"xmlns:c": namespace})
        if reference_code:
            _add(reply, "c:merchantReferenceCode", reference_code)
        _add(reply, "c:requestID", request_id)
        _add(reply, "c:decision", DECISIONS.get(code, "REJECT"))
        _add(reply, "c:reasonCode", code)
        _add(reply, "c:requestToken", base64.b64encode(secrets.token_bytes(48)).decode("ascii"))
        return reply

    @staticmethod
    def soap(content: ET.Element, status: int = 200) -> Response:
        envelope = ET.Element("soap:Envelope", {"xmlns:soap": SOAP_NS})
        security = _add(_add(envelope, "soap:Header"), "wsse:Security", **{"xmlns:wsse": WSSE_NS})
        timestamp = _add(
            security,
            "wsu:Timestamp",
            **{"xmlns:wsu": WSU_NS, "wsu:Id": f"Timestamp-{secrets.randbelow(10**9)}"},
        )
        _add(
            timestamp,
            "wsu:Created",
            datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
        )
        _add(envelope, "soap:Body").append(content)
        body = ET.tostring(envelope, encoding="utf-8", xml_declaration=True)
        return Response(body, status=status, content_type="text/xml")

    def fault(self, code: str, text: str) -> Response:
        fault = ET.Element(
            "soap:Fault",
            {"xmlns:wsse": WSSE_NS, "xmlns:c": "urn:schemas-cybersource-com:transaction-data-1.0"},
        )
        _add(fault, "faultcode", code)
        _add(fault, "faultstring", text)
        return self.soap(fault, status=500)

    # The transaction query --------------------------------------------------------------------

    def on_query(self, request: Request) -> Response:
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or auth.username != self.credentials["report_username"]
            or auth.password != self.credentials["report_password"]
        ):
            response = Response(
                "<html><head><title>401 Unauthorized</title></head>"
                "<body><h1>Unauthorized</h1><p>Login failed.</p></body></html>",
                status=401,
                content_type="text/html",
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="CyberSource"'
            return response
        form = request.form
        if form.get("merchantID") != self.credentials["merchant_id"]:
            return self._query_refusal("Invalid merchantID")
        if form.get("type") != "transaction" or form.get("subtype") != "transactionDetail":
            return self._query_refusal("Invalid type or subtype")
        request_id = form.get("requestID")
        reference_code, day = form.get("merchantReferenceNumber"), form.get("targetDate", "")
        if request_id:
            charge = self.ledger.charge(self.provider, request_id)
            charges = [charge] if charge else []
            related = form.get("includeExtendedDetail") == "Related"
        elif reference_code and len(day) == 8 and day.isdigit():
            wanted = f"{day[:4]}-{day[4:6]}-{day[6:]}"
            charges = [
                c
                for c in self.ledger.find(self.provider, key=reference_code)
                if c["created"].startswith(wanted)
            ]
            related = True  # voids and credits carry the charge's merchantReferenceCode
        else:
            return self._query_refusal("Give requestID, or merchantReferenceNumber and targetDate")
        return self._report(request.path, charges, related)

    @staticmethod
    def _query_refusal(text: str) -> Response:
        return Response(text, status=400, content_type="text/plain")

    def _report(self, path: str, charges: list[dict], related: bool) -> Response:
        host = "ebctest.cybersource.com/ebctest" if "ebctest" in path else "ebc.cybersource.com/ebc"
        dtd = f"https://{host}/reports/dtd/tdr_1_7.dtd"
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        report = ET.Element(
            "Report",
            {
                "xmlns": dtd,
                "Name": "Transaction Detail",
                "Version": "1.7",
                "MerchantID": self.credentials["merchant_id"],
                "ReportStartDate": now,
                "ReportEndDate": now,
            },
        )
        requests = _add(report, "Requests")
        for charge in charges:
            self._report_charge(requests, charge)
            if related and charge["state"] == "voided":
                self._report_follow_up(requests, charge, _follow_id(charge["id"], "void"),
                                       "ics_void", charge["amount"], charge["created"])  # fmt: skip
            for credit in self._credits(charge) if related else ():
                self._report_follow_up(requests, charge, credit["id"], "ics_credit",
                                       credit["amount"], credit["created"])  # fmt: skip
        # ElementTree writes no DOCTYPE; CyberSource's reports start with one.
        prolog = f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE Report SYSTEM "{dtd}">\n'
        return Response(prolog + ET.tostring(report, encoding="unicode"), content_type="text/xml")

    def _report_charge(self, requests: ET.Element, charge: dict) -> None:
        request = self._report_request(requests, charge, charge["id"])
        replies = _add(request, "ApplicationReplies")
        if charge["state"] == "declined":
            flag, text = DECLINE_FLAGS.get(charge["code"], ("DERROR", "The request was declined."))
            _reply(replies, "ics_auth", "0", flag, text)
        else:
            _reply(replies, "ics_auth", "1", "SOK", "Request was processed successfully.")
            if charge["code"] == "480":
                _reply(replies, "ics_decision", "0", "DREVIEW", "Decision is REVIEW.")
            else:
                _reply(replies, "ics_bill", "1", "SOK", "Request was processed successfully.")
        payment = _payment_data(request, charge, charge["id"])
        if charge["code"] != "480" and charge["state"] in ("settled", "refunded"):
            _add(payment, "EventType", "TRANSMITTED")
        if charge["order_id"]:
            _add(_add(request, "MerchantDefinedData"), "field1", charge["order_id"], name="mdd1")

    def _credits(self, charge: dict) -> list[dict]:
        """The credits of a capture, each a request of its own with its amount; one of all it
        gave back where the ledger keeps no credit of it (refunded before credits were kept)."""
        credits = self.ledger.refunds(self.provider, charge["id"])
        if credits or charge["state"] != "refunded":
            return credits
        amount = charge["refunded"] or charge["amount"]
        return [{"id": _follow_id(charge["id"], "credit"), "amount": amount,
                 "created": charge["created"]}]  # fmt: skip

    def _report_follow_up(self, requests: ET.Element, charge: dict, follow_id: str, service: str,
                          amount: str, created: str) -> None:  # fmt: skip
        """A void or a credit of the charge: a request of its own, naming the charge."""
        request = self._report_request(requests, charge, follow_id, created)
        request.set("PredecessorRequestID", charge["id"])
        _reply(
            _add(request, "ApplicationReplies"), service, "1", "SOK",
            "Request was processed successfully.",
        )  # fmt: skip
        _payment_data(request, charge, follow_id, amount)

    @staticmethod
    def _report_request(
        requests: ET.Element, charge: dict, request_id: str, created: str | None = None
    ) -> ET.Element:
        created = datetime.fromisoformat(created or charge["created"]).replace(tzinfo=UTC)
        return _add(
            requests,
            "Request",
            MerchantReferenceNumber=charge["idempotency_key"],
            RequestDate=created.isoformat(timespec="seconds"),
            RequestID=request_id,
            SubscriptionID="",
            Source="SOAP Toolkit API",
            TransactionReferenceNumber=request_id[-16:],
        )


def _reply(replies: ET.Element, name: str, code: str, flag: str, text: str) -> None:
    reply = _add(replies, "ApplicationReply", Name=name)
    _add(reply, "RCode", code)
    _add(reply, "RFlag", flag)
    _add(reply, "RMsg", text)


def _refunded(charge: dict) -> Decimal:
    return Decimal(charge["refunded"] or 0)


def _payment_data(
    request: ET.Element, charge: dict, request_id: str, amount: str | None = None
) -> ET.Element:
    payment = _add(request, "PaymentData")
    _add(payment, "PaymentRequestID", request_id)
    _add(payment, "PaymentProcessor", "smartfdc")
    _add(payment, "Amount", amount or charge["amount"])
    _add(payment, "CurrencyCode", charge["currency"])
    _add(payment, "TotalTaxAmount", "0.00")
    return payment


EMULATOR = CyberSourceEmulator
