"""CyberSource lookups: the On-Demand Single Transaction Query and its Transaction Detail report."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from urllib.parse import urlencode, urlsplit

from portal import clock
from portal.gateways.base import CallNotMade, Finding, GatewayRequest, HttpCall, Settlement
from portal.gateways.xmlread import child_text, children
from portal.money import Money

# The query lives on the Business Center host, not on the SOAP host the gateway is configured with.
# Any other base URL (Settle's sandbox, a proxy) serves it under the base URL itself.
QUERY_URLS = {
    "ics2wstest.ic3.com": "https://ebctest.cybersource.com/ebctest/Query",
    "ics2wstesta.ic3.com": "https://ebctest.cybersource.com/ebctest/Query",
    "ics2ws.ic3.com": "https://ebc.cybersource.com/ebc/Query",
    "ics2wsa.ic3.com": "https://ebc.cybersource.com/ebc/Query",
}
QUERY_PATH = "/ebc/Query"
REPORT_VERSION = "1.7"
# The payment event of a capture that has gone to the processor: it can be refunded, not voided.
SENT_TO_PROCESSOR = "TRANSMITTED"
# Services of the report's ApplicationReplies: those that take money, and those that undo it.
CHARGE_SERVICES = frozenset({"ics_auth", "ics_bill", "ics_ecp_debit"})
UNDO_SERVICES = {
    "ics_void": Settlement.VOIDED,
    "ics_auth_reversal": Settlement.VOIDED,
    "ics_credit": Settlement.REFUNDED,
    "ics_ecp_credit": Settlement.REFUNDED,
}
# The Decision Manager flag of an order held for review (reason 480 on the SOAP reply).
REVIEW_FLAG = "DREVIEW"
REVIEW_CODE = "480"


def query_url(base_url: str) -> str:
    return QUERY_URLS.get(urlsplit(base_url).hostname or "", base_url.rstrip("/") + QUERY_PATH)


def build_lookup(base_url: str, credentials: dict[str, str], request: GatewayRequest) -> HttpCall:
    user, password = credentials.get("report_username"), credentials.get("report_password")
    if not user or not password:
        raise CallNotMade(
            "a lookup needs report_username and report_password (a Business Center user allowed "
            "to download reports); the transaction key does not open the transaction query"
        )
    fields = {
        "merchantID": credentials["merchant_id"],
        "type": "transaction",
        "subtype": "transactionDetail",
        "versionNumber": REPORT_VERSION,
    }
    if request.reference:
        # A requestID is unique at CyberSource; Related adds the voids and credits that follow it.
        fields |= {"requestID": request.reference, "includeExtendedDetail": "Related"}
    elif request.original_key:
        # The charge's merchantReferenceCode is its idempotency key (see plugin.py).
        fields |= {
            "merchantReferenceNumber": request.original_key,
            "targetDate": _charge_day(request).strftime("%Y%m%d"),
        }
    else:
        raise CallNotMade("a lookup needs the charge's requestID or its idempotency key")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "text/xml",
    }
    return HttpCall("POST", query_url(base_url), headers, urlencode(fields))


def _charge_day(request: GatewayRequest) -> date:
    """The day the query searches: the charge's own day (UTC).

    GatewayRequest does not carry the charge's time yet (an `original_at` field is proposed to the
    lead); until it does, the day of the lookup is searched, which is the charge's day for the
    janitor's and crash recovery's first look but not for a lookup on a later day.
    """
    original_at = getattr(request, "original_at", None)
    return (original_at or clock.now()).date()


def findings(report: ET.Element) -> tuple[Finding, ...]:
    """What the report holds: one finding per charge, in report order.

    Raises ValueError (or MoneyError) when a request in the report cannot be read, or runs no
    service Settle knows: holding nothing must never be concluded from a report misread.
    """
    requests = [r for wrapper in children(report, "Requests") for r in children(wrapper, "Request")]
    for request in requests:
        if not _replies(request).keys() & (CHARGE_SERVICES | UNDO_SERVICES.keys()):
            raise ValueError(f"request {request.get('RequestID')} runs no payment service")
    undone = _undone(requests)
    credited = _credited(requests)
    return tuple(
        _finding(request, undone, credited)
        for request in requests
        if _replies(request).keys() & CHARGE_SERVICES
    )


def _replies(request: ET.Element) -> dict[str, tuple[str, str]]:
    """Each ApplicationReply of a request: its service name -> (RCode, RFlag)."""
    replies = {}
    for wrapper in children(request, "ApplicationReplies"):
        for reply in children(wrapper, "ApplicationReply"):
            replies[reply.get("Name", "")] = (
                child_text(reply, "RCode") or "",
                child_text(reply, "RFlag") or "",
            )
    return replies


def _succeeded(replies: dict[str, tuple[str, str]], service: str) -> bool:
    return replies.get(service, ("", ""))[0] == "1"


def _undone(requests: list[ET.Element]) -> dict[str, Settlement]:
    """Charges that a successful void, reversal or credit followed, by the charge's requestID."""
    undone: dict[str, Settlement] = {}
    for request in requests:
        predecessor = request.get("PredecessorRequestID")
        replies = _replies(request)
        if not predecessor:
            continue
        for service, state in UNDO_SERVICES.items():
            # A void outranks a credit: a voided charge never reached the customer's account.
            if _succeeded(replies, service) and undone.get(predecessor) is not Settlement.VOIDED:
                undone[predecessor] = state
    return undone


def _credited(requests: list[ET.Element]) -> dict[str, Money | None]:
    """What the successful credits that followed a charge gave back, by the charge's requestID:
    CyberSource takes several credits of one capture, each a request of its own with its amount.
    None where a credit's amount cannot be read."""
    credited: dict[str, Money | None] = {}
    for request in requests:
        predecessor = request.get("PredecessorRequestID")
        replies = _replies(request)
        if not predecessor or not any(
            _succeeded(replies, service)
            for service, state in UNDO_SERVICES.items()
            if state is Settlement.REFUNDED
        ):
            continue
        payment = next(iter(children(request, "PaymentData")), ET.Element("PaymentData"))
        amount = _amount(payment)
        before = credited.get(predecessor, amount and Money.zero(amount.currency))
        # A credit of another currency than the others raises: the report is not half believed.
        credited[predecessor] = None if amount is None or before is None else before + amount
    return credited


def _finding(
    request: ET.Element, undone: dict[str, Settlement], credited: dict[str, Money | None]
) -> Finding:
    request_id = request.get("RequestID")
    if not request_id:
        raise ValueError("a request without a RequestID")
    replies = _replies(request)
    payment = next(iter(children(request, "PaymentData")), ET.Element("PaymentData"))
    captured = _succeeded(replies, "ics_bill") or _succeeded(replies, "ics_ecp_debit")
    amount = _amount(payment)
    # What the credits the report shows gave back; None where it shows none (a query by
    # merchant reference and date does not show a credit made on a later day).
    refunded = credited.get(request_id)
    if not any(_succeeded(replies, service) for service in CHARGE_SERVICES):
        state = Settlement.DECLINED
    elif undone.get(request_id) is Settlement.VOIDED:
        state = Settlement.VOIDED
    elif request_id in undone and (refunded is None or amount is None or refunded >= amount):
        # Credited in full, or by credits whose amounts cannot be read: given back.
        state = Settlement.REFUNDED
    elif request_id in undone:
        # Credited in part: a credit follows only a capture sent to the processor.
        state = Settlement.SETTLED
    elif captured and (child_text(payment, "EventType") or "").upper() == SENT_TO_PROCESSOR:
        state = Settlement.SETTLED
    else:
        # Authorized, perhaps captured, not yet sent to the processor: it can still be voided.
        state = Settlement.UNSETTLED
    reviewed = any(flag == REVIEW_FLAG for _, flag in replies.values())
    return Finding(
        state=state,
        amount=amount,
        reference=request_id,
        at=_utc(request.get("RequestDate")),
        code=REVIEW_CODE if reviewed else None,
        refunded=refunded if state is not Settlement.VOIDED else None,
    )


def _amount(payment: ET.Element) -> Money | None:
    amount, currency = child_text(payment, "Amount"), child_text(payment, "CurrencyCode")
    if not amount or not currency:
        return None
    return Money.parse(amount, currency.upper())


def _utc(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
