"""Payflow Pro's emulation: PayPal's name-value-pair gateway (Sale, Credit, Void, Inquiry) at /payflow_pro.

As the real one (https://pilot-payflowpro.paypal.com): one endpoint, POST /, bodies of NAME=value
pairs in text/namevalue (NAME[length]=value when a value holds & or =), HTTP 200 for every answer,
credentials in the body (PARTNER, VENDOR, USER, PWD), the duplicate check by X-VPS-REQUEST-ID
(a repeat gets the first answer with DUPLICATE=1 appended, and is never run again), and the
Inquiry by ORIGID or by CUSTREF (the last transaction carrying it). The charge's token arrives as
ORIGID of a reference sale, and chooses the outcome (README's test tokens).

Ledger: a charge's id is its PNREF; its key is the CUSTREF the sale carried (what an Inquiry
searches by), or the request ID when it carried none. Replies are kept per X-VPS-REQUEST-ID.

Not documented by PayPal, so chosen here: the TRANSSTATE of a voided sale (1, "General error
state", with ORIGRESULT=0: it will never settle) and of a refunded one (8: the Credit is a
transaction of its own; the sale stays settled), and CURRENCY in an Inquiry's answer.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime
from decimal import Decimal

from werkzeug.wrappers import Request, Response

from portal.money import MINOR_UNITS, MoneyError, parse_amount
from portal.sandbox.emulator import Emulator, outcome_for

# Outcome kind -> (RESULT, RESPMSG) of the Payflow developer guide's table.
CODES = {
    "approve": ("0", "Approved"),
    "decline": ("50", "Insufficient funds available in account"),
    "do_not_honor": ("12", "Declined"),
    "cvc": ("114", "CSC Mismatch"),
    "address": ("112", "Failed AVS check"),
    "closed": ("23", "Invalid account number"),
    "review": ("126", "Under review by Fraud Service"),
    "timeout": ("104", "Timeout waiting for processor response"),
    "misconfigured": ("5", "Invalid merchant information"),
    "refuse": ("1", "User authentication failed"),
    # Listed nowhere in Payflow's table, so in no mapping: Settle must show it as unmapped.
    "unknown": ("9999", "Unlisted processor response"),
}

# The card checks an issuer answers with, for the outcomes that reached the issuer.
CHECKS = {
    "approve": {"AVSADDR": "Y", "AVSZIP": "Y", "CVV2MATCH": "Y"},
    "decline": {"AVSADDR": "Y", "AVSZIP": "Y", "CVV2MATCH": "Y"},
    "do_not_honor": {"AVSADDR": "Y", "AVSZIP": "Y", "CVV2MATCH": "Y"},
    "cvc": {"AVSADDR": "Y", "AVSZIP": "Y", "CVV2MATCH": "N"},
    "address": {"AVSADDR": "N", "AVSZIP": "N", "CVV2MATCH": "Y"},
    "review": {
        "AVSADDR": "Y",
        "AVSZIP": "Y",
        "CVV2MATCH": "Y",
        "PREFPSMSG": "Review: More than one rule was triggered for Review",
        "POSTFPSMSG": "Review",
    },
}
AUTHORIZED = ("approve", "review")

# Ledger state -> TRANSSTATE (developer guide, VERBOSITY table; see the module docstring).
TRANSSTATES = {"declined": "1", "unsettled": "6", "settled": "8", "voided": "1", "refunded": "8"}

_PAIR = re.compile(r"([A-Z0-9_]+)(?:\[(\d+)\])?=")
_AMOUNT = re.compile(r"\d{1,10}(?:\.\d{2})?")
REPLIES = "transaction"  # Payflow's duplicate check spans every TRXTYPE


class _Refusal(Exception):
    """A Payflow error answer: RESULT and RESPMSG."""

    def __init__(self, result: str, message: str):
        super().__init__(message)
        self.fields = {"RESULT": result, "RESPMSG": message}


class PayflowProEmulator(Emulator):
    provider = "payflow_pro"
    # The password holds & and =, so that every run exercises Payflow's length tags.
    credentials = {
        "partner": "PayPal",
        "vendor": "SettleSandbox",
        "user": "SettleSandboxAPI",
        "password": "pf&sandbox=1",
    }

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path not in ("", "/"):
            return Response("Not Found", status=404, mimetype="text/plain")
        try:
            fields = self.parse(request.get_data(as_text=True))
        except ValueError as exc:
            return self.answer({"RESULT": "7", "RESPMSG": f"Field format error: {exc}"})
        if not self._authentic(fields):
            return self.answer({"RESULT": "1", "RESPMSG": "User authentication failed"})
        if not request.headers.get("X-VPS-VIT-CLIENT-CERTIFICATION-ID"):
            return self.answer({"RESULT": "14", "RESPMSG": "Invalid Client Certification ID"})
        request_id = request.headers.get("X-VPS-REQUEST-ID", "")
        if not 0 < len(request_id) <= 32 or not request_id.isprintable():
            return self.answer({"RESULT": "7", "RESPMSG": "Field format error: X-VPS-REQUEST-ID"})
        if (kept := self.ledger.reply_for(self.provider, request_id, REPLIES)) is not None:
            status, body = kept
            return Response(body + "&DUPLICATE=1", status=status, content_type="text/namevalue")
        handler = {
            "S": self.on_sale,
            "C": self.on_credit,
            "V": self.on_void,
            "I": self.on_inquiry,
        }.get(fields.get("TRXTYPE", ""))
        fault, keep = None, True
        try:
            if handler is None:
                raise _Refusal("3", "Invalid transaction type")
            if fields.get("TENDER") != "C":
                raise _Refusal("2", "Invalid tender")
            answer, fault, keep = handler(fields, request_id)
        except _Refusal as refusal:
            answer = refusal.fields
        body = self.encode(answer)
        if keep:
            # Stored before the answer leaves, so a re-send after a hang or a drop is a duplicate.
            self.ledger.keep_reply(self.provider, request_id, REPLIES, 200, body)
        return self.deliver(self.reply(body), fault)

    # Wire format ------------------------------------------------------------------------------

    @staticmethod
    def parse(body: str) -> dict[str, str]:
        """Read NAME=value pairs; NAME[n]=value takes exactly n characters, & and = included."""
        fields, pos = {}, 0
        while pos < len(body):
            match = _PAIR.match(body, pos)
            if match is None:
                raise ValueError(f"no field name at position {pos}")
            start = match.end()
            if match.group(2) is not None:
                stop = start + int(match.group(2))
            else:
                stop = body.find("&", start)
                stop = len(body) if stop == -1 else stop
            if stop > len(body) or body[stop : stop + 1] not in ("", "&"):
                raise ValueError(f"invalid [ ] name length clause for {match.group(1)}")
            fields[match.group(1)] = body[start:stop]
            pos = stop + 1
        return fields

    @staticmethod
    def encode(fields: dict[str, str]) -> str:
        return "&".join(
            f"{name}[{len(value)}]={value}" if ("&" in value or "=" in value) else f"{name}={value}"
            for name, value in fields.items()
        )

    def reply(self, body: str) -> Response:
        # Payflow answers HTTP 200 whatever the RESULT, in its own content type.
        return Response(body, status=200, content_type="text/namevalue")

    def answer(self, fields: dict[str, str]) -> Response:
        return self.reply(self.encode(fields))

    def _authentic(self, fields: dict[str, str]) -> bool:
        wanted = self.credentials
        given = (fields.get("PARTNER"), fields.get("VENDOR"), fields.get("USER"), fields.get("PWD"))
        expected = (wanted["partner"], wanted["vendor"], wanted["user"], wanted["password"])
        return all(secrets.compare_digest(g or "", e) for g, e in zip(given, expected, strict=True))

    @staticmethod
    def pnref() -> str:
        # PNREFs are 12 upper-case alphanumerics, such as A10AA63244D1.
        return "E" + uuid.uuid4().hex[:11].upper()

    @staticmethod
    def _money(fields: dict[str, str], default: str | None = None) -> tuple[Decimal, str]:
        currency = fields.get("CURRENCY") or "USD"
        if currency not in MINOR_UNITS:
            raise _Refusal("6", "Invalid or unsupported currency code")
        text = fields.get("AMT") or default or ""
        try:
            if not _AMOUNT.fullmatch(text):
                raise MoneyError(text)
            amount = parse_amount(text, currency)
        except MoneyError:
            raise _Refusal("4", "Invalid amount format") from None
        if amount <= 0:
            raise _Refusal("4", "Invalid amount format")
        return amount, currency

    def _original(
        self, fields: dict[str, str], wanted: tuple[str, ...], error: tuple[str, str]
    ) -> dict:
        """The charge a Credit or Void references, in a state it needs."""
        if not fields.get("ORIGID"):
            raise _Refusal("7", "Field format error: ORIGID missing")
        charge = self.ledger.charge(self.provider, fields["ORIGID"])
        if charge is None:
            raise _Refusal("19", "Original transaction ID not found")
        if charge["state"] == "declined":
            raise _Refusal("120", "Attempt to reference a failed transaction")
        if charge["state"] not in wanted:
            raise _Refusal(*error)
        return charge

    # Transactions: each returns (answer fields, fault, keep the reply) ---------------------

    def on_sale(self, fields: dict[str, str], request_id: str):
        amount, currency = self._money(fields)
        token = fields.get("ORIGID") or fields.get("ACCT")
        if not token:
            raise _Refusal("23", "Invalid account number")
        outcome = outcome_for(token)
        result, message = CODES[outcome.kind]
        if outcome.kind == "refuse":
            # Rejected credentials: nothing is run and the request ID is not used up.
            return {"RESULT": result, "RESPMSG": message}, outcome.fault, False
        pnref = self.pnref()
        self.ledger.add_charge(
            self.provider,
            fields.get("CUSTREF") or request_id,
            fields.get("INVNUM") or fields.get("COMMENT1") or "",
            amount,
            currency,
            result,
            outcome.moved,
            charge_id=pnref,
        )
        answer = {"RESULT": result, "PNREF": pnref, "RESPMSG": message}
        if outcome.kind in AUTHORIZED:
            answer["AUTHCODE"] = uuid.uuid4().hex[:6].upper()
        answer |= CHECKS.get(outcome.kind, {})
        return answer, outcome.fault, True

    def on_credit(self, fields: dict[str, str], request_id: str):
        # A sale may be credited in parts, each Credit a transaction of its own, up to its amount.
        charge = self._original(
            fields,
            ("settled", "refunded"),
            ("105", "Credit error: the transaction is not settled"),
        )
        left = Decimal(charge["amount"]) - Decimal(charge["refunded"] or 0)
        amount, _ = self._money({**fields, "CURRENCY": charge["currency"]}, charge["amount"])
        if amount > left:
            raise _Refusal("105", "Credit error: the amount exceeds what is left to credit")
        pnref = self.pnref()
        self.ledger.add_refund(self.provider, charge["id"], amount, refund_id=pnref)
        return {"RESULT": "0", "PNREF": pnref, "RESPMSG": "Approved"}, None, True

    def on_void(self, fields: dict[str, str], request_id: str):
        charge = self._original(
            fields,
            ("unsettled",),
            ("108", "Void error: the transaction is settled or already voided"),
        )
        self.ledger.void(self.provider, charge["id"])
        return {"RESULT": "0", "PNREF": self.pnref(), "RESPMSG": "Approved"}, None, True

    def on_inquiry(self, fields: dict[str, str], request_id: str):
        if fields.get("ORIGID"):
            charge = self.ledger.charge(self.provider, fields["ORIGID"])
            if charge is None:
                raise _Refusal("19", "Original transaction ID not found")
        elif fields.get("CUSTREF"):
            found = self.ledger.find(self.provider, key=fields["CUSTREF"])
            if not found:
                raise _Refusal("20", "Cannot find the customer reference number")
            charge = found[-1]  # "returns only the last transaction with the specified CUSTREF"
        else:
            raise _Refusal("7", "Field format error: ORIGID or CUSTREF required")
        created = datetime.fromisoformat(charge["created"])
        answer = {
            "RESULT": "0",
            "PNREF": self.pnref(),
            "RESPMSG": "Approved",
            "ORIGRESULT": charge["code"],
            "ORIGPNREF": charge["id"],
            "TRANSSTATE": TRANSSTATES[charge["state"]],
            "CUSTREF": charge["idempotency_key"],
            "AMT": f"{Decimal(charge['amount']):.2f}",
            "CURRENCY": charge["currency"],
            "TRANSTIME": created.strftime("%Y-%m-%d %H:%M:%S"),
        }
        return answer, None, True


EMULATOR = PayflowProEmulator
