"""The CyberSource plugin: the Simple Order API over SOAP, and lookups through the transaction query.

Wire format (CyberSource Simple Order API; Active Merchant cyber_source.rb builds the same shapes)
- POST {base}/commerce/1.x/transactionProcessor, a SOAP 1.1 envelope, Content-Type text/xml. Its
  header carries WS-Security: UsernameToken with Username = merchant id and Password = transaction
  key (PasswordText). The body is a requestMessage in urn:schemas-cybersource-com:transaction-data-1.201:
  - charge (a sale): merchantID, merchantReferenceCode, purchaseTotals (currency, grandTotalAmount),
    recurringSubscriptionInfo/subscriptionID, merchantDefinedData/mddField id=1 (the invoice number),
    ccAuthService run=true and ccCaptureService run=true;
  - refund: purchaseTotals and ccCreditService run=true with captureRequestID = the charge's requestID;
  - void: voidService run=true with voidRequestID = the charge's requestID.
- The stored payment-method token is the CyberSource subscription (customer profile) id, one string.
- The answer is a replyMessage (decision, reasonCode, requestID, per-service replies) or a SOAP
  fault; namespaces and prefixes vary by version, so every element is read by its local name.
- Lookups use the On-Demand Single Transaction Query (report.py), which the Simple Order API lacks.
  A capture may be credited several times, each credit a request of its own that names the capture
  (PredecessorRequestID) with its amount: what they gave back is the finding's `refunded`.

Idempotency: merchantReferenceCode is CyberSource's only duplicate check (reason 104, 15 minutes,
authorizations only), so a charge sends Settle's idempotency key there. It is 32 characters and the
field takes 50, so nothing is shortened. The invoice number therefore goes to merchant-defined field
1, which CyberSource reports beside it. A refund or void sends its charge's merchantReferenceCode, as
CyberSource asks of follow-on requests, so that the query by that code shows the charge with them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from portal.gateways.base import CallNotMade, Gateway, GatewayRequest, GatewayResult, HttpCall
from portal.gateways.cybersource import report
from portal.gateways.xmlread import child_text, children, local, parse_xml
from portal.money import Money, MoneyError

SOAP_PATH = "/commerce/1.x/transactionProcessor"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
TRANSACTION_NS = "urn:schemas-cybersource-com:transaction-data-1.201"

# What scrub() removes: credentials, the subscription id (the stored token), card data and the
# request token that authorizes follow-on requests.
_SECRET_ELEMENTS = re.compile(
    r"(<(?:[\w.-]+:)?(Password|Username|merchantID|subscriptionID|accountNumber|cvNumber|"
    r"requestToken)\b[^>]*>)[^<]*(</(?:[\w.-]+:)?\2\s*>)",
    re.IGNORECASE,
)
_SECRET_ATTRIBUTES = re.compile(r"""(\b(?:MerchantID|SubscriptionID)\s*=\s*)(["'])[^"']+\2""")
_SECRET_FORM_FIELDS = re.compile(r"((?:^|&)merchantID=)[^&]*")


class CyberSourceGateway(Gateway):
    name = "cybersource"
    display_name = "CyberSource"
    not_reconcilable = (
        "Settle reads CyberSource's Transaction Detail report one charge at a time; a period needs"
        " the Payment Batch Detail report, which Settle does not read yet."
    )
    required_credentials = ("merchant_id", "transaction_key")
    live_hosts = ("api.cybersource.com", "ics2wsa.ic3.com")
    test_hosts = ("apitest.cybersource.com", "ics2wstesta.ic3.com")
    # Lookups only: a Business Center user allowed to download reports (see report.py).
    optional_credentials = ("report_username", "report_password")

    # Requests ---------------------------------------------------------------------------------

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        base = self.config.base_url.rstrip("/")
        if operation == "lookup":
            return report.build_lookup(base, self.config.credentials, request)
        message = self._request_message(operation, request)
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": "runTransaction",
            "Accept": "text/xml",
        }
        return HttpCall("POST", base + SOAP_PATH, headers, self._envelope(message))

    def _request_message(self, operation: str, request: GatewayRequest) -> ET.Element:
        if operation == "charge":
            if request.amount is None or not request.token:
                raise CallNotMade("a charge needs an amount and a payment method token")
            message = self._message(request.idempotency_key)
            _totals(message, request.amount)
            subscription = ET.SubElement(message, "recurringSubscriptionInfo")
            ET.SubElement(subscription, "subscriptionID").text = request.token
            if request.order_id:
                fields = ET.SubElement(message, "merchantDefinedData")
                ET.SubElement(fields, "mddField", {"id": "1"}).text = request.order_id
            ET.SubElement(message, "ccAuthService", {"run": "true"})
            ET.SubElement(message, "ccCaptureService", {"run": "true"})
            return message
        if operation not in ("refund", "void"):
            raise CallNotMade(f"unknown operation {operation!r}")
        if not request.reference:
            raise CallNotMade(f"a {operation} needs the charge's requestID")
        message = self._message(request.original_key or request.idempotency_key)
        if operation == "refund":
            if request.amount is None:
                raise CallNotMade("a refund needs an amount")
            _totals(message, request.amount)
            credit = ET.SubElement(message, "ccCreditService", {"run": "true"})
            ET.SubElement(credit, "captureRequestID").text = request.reference
        else:
            void = ET.SubElement(message, "voidService", {"run": "true"})
            ET.SubElement(void, "voidRequestID").text = request.reference
        return message

    def _message(self, reference_code: str) -> ET.Element:
        # Element order follows CyberSource's XSD, which rejects other orders.
        message = ET.Element("requestMessage", {"xmlns": TRANSACTION_NS})
        ET.SubElement(message, "merchantID").text = self.config.credentials["merchant_id"]
        ET.SubElement(message, "merchantReferenceCode").text = reference_code
        return message

    def _envelope(self, message: ET.Element) -> bytes:
        # Prefixed names are written as given, so no namespace prefix is registered process-wide.
        envelope = ET.Element("soap:Envelope", {"xmlns:soap": SOAP_NS})
        header = ET.SubElement(envelope, "soap:Header")
        security = ET.SubElement(
            header, "wsse:Security", {"xmlns:wsse": WSSE_NS, "soap:mustUnderstand": "1"}
        )
        token = ET.SubElement(security, "wsse:UsernameToken")
        ET.SubElement(token, "wsse:Username").text = self.config.credentials["merchant_id"]
        password = ET.SubElement(token, "wsse:Password", {"Type": PASSWORD_TEXT})
        password.text = self.config.credentials["transaction_key"]
        ET.SubElement(envelope, "soap:Body").append(message)
        return ET.tostring(envelope, encoding="utf-8", xml_declaration=True)

    # Answers ----------------------------------------------------------------------------------

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        if operation == "lookup":
            return self._lookup(http_status, body)
        root = parse_xml(body)
        if root is None or local(root.tag) != "Envelope":
            return self.unreadable(f"HTTP {http_status} with a body that is not a SOAP envelope")
        soap_body = next(iter(children(root, "Body")), None)
        if soap_body is None:
            return self.unreadable("a SOAP envelope without a Body")
        fault = next(iter(children(soap_body, "Fault")), None)
        if fault is not None:
            # CyberSource's error envelope (HTTP 500): rejected credentials or a refused request.
            fault_code = child_text(fault, "faultcode")
            if not fault_code:
                return self.unreadable("a SOAP fault without a faultcode")
            code = "fault:" + fault_code.rsplit(":", 1)[-1]
            return self.mapped(code, child_text(fault, "faultstring") or None)
        reply = next(iter(children(soap_body, "replyMessage")), None)
        if reply is None:
            return self.unreadable("a SOAP answer with neither a replyMessage nor a Fault")
        code = child_text(reply, "reasonCode")
        if not code or not code.isdigit():
            return self.unreadable("a replyMessage without a numeric reasonCode")
        return self.mapped(code, self._reply_message(reply, code), reference=_request_id(reply))

    def _reply_message(self, reply: ET.Element, code: str) -> str:
        """The decision and the code's description, with the fields CyberSource names (101, 102)."""
        decision = child_text(reply, "decision") or "no decision"
        message = f"{decision}: {self.mapping.lookup(code).description}"
        for name, label in (("missingField", "missing"), ("invalidField", "invalid")):
            fields = [(f.text or "").strip() for f in children(reply, name)]
            if fields:
                message += f" ({label}: {', '.join(fields)})"
        return message

    def _lookup(self, http_status: int, body: str) -> GatewayResult:
        if 400 <= http_status < 500:
            # The query refuses with plain pages: its HTTP status is the only code it gives.
            return self.mapped(f"query:{http_status}", None)
        if http_status != 200:
            return self.unreadable(f"HTTP {http_status} from the transaction query")
        root = parse_xml(body)
        if root is None or local(root.tag) != "Report":
            return self.unreadable("the transaction query did not answer with a report")
        if not children(root, "Requests"):
            return self.unreadable("a report without Requests")
        try:
            found = report.findings(root)
        except (ValueError, MoneyError) as exc:
            return self.unreadable(f"a transaction in the report cannot be read: {exc}")
        message = f"{len(found)} charge(s) found" if found else "No charge found"
        message += "".join(
            f"; {f.reference} partly refunded, {f.refunded} of {f.amount}"
            for f in found
            if f.partly_refunded
        )
        reference = found[0].reference if found else None
        return self.mapped("query:200", message, reference=reference, findings=found)

    # Stored bodies ----------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        text = _SECRET_ELEMENTS.sub(r"\1[FILTERED]\3", text)
        text = _SECRET_ATTRIBUTES.sub(r"\1\2[FILTERED]\2", text)
        return _SECRET_FORM_FIELDS.sub(r"\1[FILTERED]", text)


def _totals(message: ET.Element, amount: Money) -> None:
    totals = ET.SubElement(message, "purchaseTotals")
    ET.SubElement(totals, "currency").text = amount.currency
    # CyberSource wants a decimal string in the currency's units ("12.30", "1" for JPY).
    ET.SubElement(totals, "grandTotalAmount").text = amount.plain()


def _request_id(reply: ET.Element) -> str | None:
    return child_text(reply, "requestID") or None


PLUGIN = CyberSourceGateway
