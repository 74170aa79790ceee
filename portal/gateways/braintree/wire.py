"""Braintree's XML as its client libraries write and read it (braintree_python@80b03f4
util/generator.py, util/xml_util.py, transaction.py), and the webhook form it posts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import parse_qs

from portal.gateways.base import CallNotMade
from portal.gateways.webhooks import UnreadableWebhook
from portal.gateways.xmlread import child_text
from portal.money import Money, MoneyError


def xml(root: str, fields: dict[str, str], options: dict[str, bool] | None = None) -> str:
    """A request body as the client libraries generate it: keys with dashes, booleans typed."""
    element = ET.Element(root)
    for name, value in fields.items():
        ET.SubElement(element, name).text = value
    if options:
        holder = ET.SubElement(element, "options")
        for name, value in options.items():
            ET.SubElement(holder, name, type="boolean").text = "true" if value else "false"
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(element, encoding="unicode")


def code(txn: ET.Element, operation: str) -> str:
    """A transaction's mapping key (codes.yaml header): a decline's processor code, a rejection's
    reason, a partial approval's 1004, else the operation and the status."""
    status = child_text(txn, "status") or ""
    if status == "processor_declined":
        return processor_code(child_text(txn, "processor-response-code"))
    if status == "gateway_rejected":
        return f"gateway_rejected.{child_text(txn, 'gateway-rejection-reason') or 'unknown'}"
    if operation == "charge" and child_text(txn, "processor-response-code") == "1004":
        return "1004"  # approved for a partial amount
    return f"{operation}.{status}"


def merchant_account(setting: str | None, currency: str) -> str | None:
    """The merchant account for a currency from "USD:acct_usd, EUR:acct_eur"; None when unset.
    A currency the setting does not name is refused before anything is sent."""
    if not setting:
        return None
    accounts = {}
    for pair in setting.split(","):
        cur, _, account = pair.partition(":")
        if cur.strip() and account.strip():
            accounts[cur.strip().upper()] = account.strip()
    if currency not in accounts:
        raise CallNotMade(f"merchant_accounts names no merchant account for {currency}")
    return accounts[currency]


def processor_code(code: str | None) -> str:
    """A processor response code as the mapping keys it: Braintree's page gives 2109 to 2999 one
    row ("Processor Declined"), so any of them is the key "2109-2999"."""
    code = (code or "").strip()
    if code.isascii() and code.isdigit() and 2109 <= int(code) <= 2999:
        return "2109-2999"
    return code or "processor_declined"


def money(txn: ET.Element) -> Money | None:
    try:
        return Money.parse(child_text(txn, "amount") or "", child_text(txn, "currency-iso-code"))
    except (MoneyError, TypeError, ValueError):
        return None


def time(text: str | None) -> datetime | None:
    """An XML datetime ("2026-12-03T10:00:00Z") as Settle stores times: UTC, naive."""
    if not text:
        return None
    try:
        return (
            datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            .astimezone(UTC)
            .replace(tzinfo=None)
        )
    except ValueError:
        return None


def form(body: bytes) -> tuple[str, bytes]:
    """bt_signature and bt_payload of a webhook's form body, as received."""
    try:
        form = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise UnreadableWebhook("not a form of bt_signature and bt_payload") from None
    signature, payload = form.get("bt_signature", []), form.get("bt_payload", [])
    if len(signature) != 1 or len(payload) != 1:
        raise UnreadableWebhook("give bt_signature and bt_payload once each")
    return signature[0], payload[0].encode("ascii", "replace")
