"""The Payflow Pro plugin: PayPal's name-value-pair gateway over HTTPS (Sale, Credit, Void, Inquiry).

The stored payment-method token is the PNREF of an earlier Payflow transaction on the card,
normally the $0 Authorization (TRXTYPE=A) made when the card was saved. Settle charges it with a
reference Sale: TRXTYPE=S with ORIGID=<that PNREF>, and Payflow reuses the card data it keeps for
that PNREF (developer guide, "Recharging to the Same Credit Card (Reference Transactions)"); the
merchant must allow reference transactions in PayPal Manager. The token is one opaque string, and
Settle never sees a card number. Because any PNREF can be charged again this way, the ORIGID of a
sale is scrubbed like a card token.

What Settle puts on the wire (developer guide, "Payflow Header Parameters" and the Inquiry pages):
- X-VPS-REQUEST-ID = the idempotency key. Payflow takes 1 to 32 printable characters, which is
  what Settle's 32 hex characters are, so it goes unshortened. A repeat of a request ID is not run
  again: Payflow answers with the first transaction's response and appends DUPLICATE=1.
- CUSTREF = the first 12 characters of the idempotency key (Payflow's limit is 12 alphanumerics).
  The guide requires a unique CUSTREF on every transaction, retries included, because an Inquiry
  by CUSTREF returns only the last transaction that carries it. That is how a charge whose PNREF
  never arrived (a time-out) is found again: Inquiry with CUSTREF from the charge's key.
- INVNUM and COMMENT1 = the invoice number, for PayPal Manager's reports and searches.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode

from portal.gateways.base import (
    CallNotMade,
    Finding,
    Gateway,
    GatewayRequest,
    GatewayResult,
    HttpCall,
    Settlement,
)
from portal.money import Money, MoneyError, minor_units

# Sent as X-VPS-VIT-CLIENT-CERTIFICATION-ID: the guide asks for a fixed GUID per integration and
# answers RESULT 14 when the header is missing. Settle's own, not any other library's.
CLIENT_CERTIFICATION_ID = "b5e637b63f2b4afd9ecaf11e68c77cae"

TRXTYPES = {"charge": "S", "refund": "C", "void": "V", "lookup": "I"}

# Fields that never reach storage: the four credentials, card data, and secure tokens.
SECRET_FIELDS = ("PARTNER", "VENDOR", "USER", "PWD", "ACCT", "CVV2", "EXPDATE", "SWIPE",
                 "SECURETOKEN", "SECURETOKENID")  # fmt: skip
# TRXTYPEs whose ORIGID is the stored payment method (a reference sale or authorization).
ORIGID_IS_TOKEN = ("S", "A")

# What the inquired transaction's TRANSSTATE says the gateway holds (verbosity table of the
# developer guide). 1 ("General error state") is split by the original result in _state().
TRANSSTATES: dict[str, Settlement] = {
    "0": Settlement.UNSETTLED,  # general succeed state: assume money may be held
    "3": Settlement.UNSETTLED,  # authorization approved
    "4": Settlement.UNSETTLED,  # in progress (handled by osCommerce's PayPal app; not in the guide)
    "6": Settlement.UNSETTLED,  # settlement pending
    "7": Settlement.SETTLED,  # settlement in progress: too late to void, refund it instead
    "8": Settlement.SETTLED,  # settled successfully
    "9": Settlement.SETTLED,  # authorization captured: the capture moves the money
    "10": Settlement.DECLINED,  # capture failed
    "11": Settlement.DECLINED,  # failed to settle
    "12": Settlement.DECLINED,  # unsettled because of incorrect account information
    "14": Settlement.DECLINED,  # the batch failed settlement
    "15": Settlement.REFUNDED,  # settlement incomplete because of a chargeback
    "16": Settlement.DECLINED,  # merchant ACH settlement failed
    "106": Settlement.UNSETTLED,  # unknown status, not settled
    "206": Settlement.UNSETTLED,  # on hold pending customer intervention
}
# Original results that authorized money (Active Merchant's payflow treats these two as success):
# such a transaction in the general error state no longer settles, so it was voided.
AUTHORIZED_RESULTS = ("0", "126")

_NAME = re.compile(r"([A-Za-z0-9_]+)(?:\[(\d+)\])?")
_RESULT = re.compile(r"-?\d+")
# Payflow's "#####.##". Checked before Money.parse, which would read "12,30" as 1230.
_AMT = re.compile(r"\d+(?:\.\d{1,2})?")
# A BOM as UTF-8 (or read as ISO-8859-1, which requests assumes for text/namevalue).
_BOMS = ("\ufeff", "\u00ef\u00bb\u00bf")


class NvpError(ValueError):
    """A body that is not Payflow name-value pairs."""


def encode_nvp(fields: dict[str, str]) -> str:
    """Payflow's request body: NAME=value pairs joined by &, never URL-encoded.

    A value holding & or = is sent as NAME[length]=value (guide: "Using Special Characters In
    Values"). urlencode joins the pairs; its quoting is replaced by the identity because Payflow
    reads values literally.
    """
    tagged = {
        (f"{name}[{len(value)}]" if ("&" in value or "=" in value) else name): value
        for name, value in fields.items()
    }
    return urlencode(tagged, quote_via=lambda text, *_: text)


def parse_nvp(text: str) -> dict[str, str]:
    """Read name-value pairs, honouring NAME[length]=value (which urllib.parse cannot: it would
    split the value at its & and decode its + and %)."""
    fields: dict[str, str] = {}
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] == "&":  # an empty pair
            pos += 1
            continue
        equals = text.find("=", pos)
        if equals < 0:
            raise NvpError(f"{text[pos : pos + 24]!r} has no '='")
        name = _NAME.fullmatch(text[pos:equals].strip())
        if name is None:
            raise NvpError(f"{text[pos:equals][:24]!r} is not a field name")
        start = equals + 1
        if name.group(2) is not None:
            stop = start + int(name.group(2))
            if stop > end or (stop < end and text[stop] != "&"):
                raise NvpError(f"the length tag of {name.group(1)} does not fit its value")
        else:
            stop = text.find("&", start)
            stop = end if stop < 0 else stop
        fields[name.group(1).upper()] = text[start:stop]
        pos = stop + 1
    return fields


def _redact(text: str, names: tuple[str, ...]) -> str:
    """Replace the values of `names`, honouring length tags; tolerant of a malformed body."""
    pattern = re.compile(
        r"(?<![A-Za-z0-9_\]])(" + "|".join(names) + r")(?:\[(\d+)\])?=", re.IGNORECASE
    )
    out, pos = [], 0
    for match in pattern.finditer(text):
        if match.start() < pos:  # inside a value already redacted
            continue
        if match.group(2) is not None:
            stop = min(match.end() + int(match.group(2)), len(text))
        else:
            stop = text.find("&", match.end())
            stop = len(text) if stop < 0 else stop
        # The length tag goes too: it would tell the secret's length.
        out += [text[pos : match.start()], f"{match.group(1)}=[FILTERED]"]
        pos = stop
    out.append(text[pos:])
    return "".join(out)


def _request_id(key: str) -> str:
    """X-VPS-REQUEST-ID: 1 to 32 printable characters. Settle's keys fit; a longer key (never made
    by Settle) is replaced by the first 32 hex characters of its SHA-256, stable across retries."""
    if 0 < len(key) <= 32 and key.isascii() and key.isprintable() and " " not in key:
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def custref(key: str) -> str:
    """CUSTREF: 12 alphanumerics. The first 12 hex characters of Settle's key (48 random bits,
    unique among a merchant's transactions); any other key by the same rule on its SHA-256."""
    if re.fullmatch(r"[A-Za-z0-9]{12,}", key):
        return key[:12]
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class PayflowProGateway(Gateway):
    name = "payflow_pro"
    display_name = "PayPal Payflow Pro"
    not_reconcilable = (
        "Payflow Pro's payment API cannot list transactions; its separate Reporting API (the"
        " daily activity report) is not read by Settle yet."
    )
    required_credentials = ("partner", "vendor", "user", "password")
    live_hosts = ("payflowpro.paypal.com",)
    test_hosts = ("pilot-payflowpro.paypal.com",)

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        if operation not in TRXTYPES:
            raise CallNotMade(f"unknown operation {operation!r}")
        creds = self.config.credentials
        fields = {
            "TRXTYPE": TRXTYPES[operation],
            "TENDER": "C",
            "PARTNER": creds["partner"],
            "VENDOR": creds["vendor"],
            "USER": creds["user"],
            "PWD": creds["password"],
        }
        if operation == "charge":
            if request.amount is None or not request.token:
                raise CallNotMade("a charge needs an amount and a payment method token")
            fields |= {
                "ORIGID": request.token,
                "AMT": self._amount(request.amount),
                "CURRENCY": request.amount.currency,
                "CUSTREF": custref(request.idempotency_key),
                "INVNUM": request.order_id,
                "COMMENT1": request.order_id,
            }
        elif operation in ("refund", "void"):
            if not request.reference:
                raise CallNotMade(f"a {operation} needs the PNREF of the charge")
            fields["ORIGID"] = request.reference
            if operation == "refund":
                if request.amount is None:
                    raise CallNotMade("a refund needs an amount")
                fields |= {
                    "AMT": self._amount(request.amount),
                    "CUSTREF": custref(request.idempotency_key),
                    "COMMENT1": request.order_id,
                }
        elif request.reference:
            fields |= {"ORIGID": request.reference, "VERBOSITY": "HIGH"}
        elif request.original_key:
            fields |= {"CUSTREF": custref(request.original_key), "VERBOSITY": "HIGH"}
        else:
            raise CallNotMade("a lookup needs the charge's PNREF or its idempotency key")
        headers = {
            "Content-Type": "text/namevalue",
            "X-VPS-REQUEST-ID": _request_id(request.idempotency_key),
            # Payflow gives up on its side after this many seconds (guide: recommended 45).
            "X-VPS-CLIENT-TIMEOUT": str(max(1, math.ceil(self.config.timeout))),
            "X-VPS-VIT-CLIENT-CERTIFICATION-ID": CLIENT_CERTIFICATION_ID,
            "X-VPS-VIT-INTEGRATION-PRODUCT": "Settle",
            "X-VPS-VIT-INTEGRATION-VERSION": "1.0",
        }
        # Bytes, so that an invoice number outside Latin-1 cannot break http.client's encoding.
        body = encode_nvp(fields).encode("utf-8")
        return HttpCall("POST", self.config.base_url.rstrip("/") + "/", headers, body)

    @staticmethod
    def _amount(money: Money) -> str:
        # AMT is "#####.##": two decimals. A three-decimal currency cannot be written that way
        # without rounding the customer's amount, so it is refused before anything is sent.
        units = minor_units(money.currency)
        if units > 2:
            raise CallNotMade(f"Payflow amounts have two decimals; {money.currency} has {units}")
        if units == 2:
            return money.plain()
        return f"{money.amount.quantize(Decimal('0.01')):f}"  # JPY 1000 -> "1000.00"

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        text = body
        for bom in _BOMS:
            text = text.removeprefix(bom)
        text = text.strip()
        if not text:
            return self.unreadable(f"HTTP {http_status} with an empty body")
        try:
            fields = parse_nvp(text)
        except NvpError as exc:
            return self.unreadable(
                f"HTTP {http_status} with a body that is not Payflow name-value pairs ({exc})"
            )
        result = fields.get("RESULT", "").strip()
        if not _RESULT.fullmatch(result):
            return self.unreadable(f"HTTP {http_status} with no RESULT in the answer")
        message = fields.get("RESPMSG") or None
        if fields.get("DUPLICATE"):
            # The first transaction's own answer, replayed for a repeated X-VPS-REQUEST-ID.
            message = f"{message or 'Original answer'} (DUPLICATE={fields['DUPLICATE']}: Payflow returned the first answer to this request ID; nothing was charged again)"
        if operation != "lookup":
            return self.mapped(result, message, reference=fields.get("PNREF") or None)
        # An Inquiry's "no such transaction" answers have their own keys ("I19", "I20"): for a
        # lookup they are a successful answer that the gateway holds nothing.
        key = f"I{result}" if f"I{result}" in self.mapping.codes else result
        if "TRANSSTATE" not in fields and "ORIGRESULT" not in fields:
            if result == "0":
                # A successful Inquiry always describes the transaction; without it, "nothing
                # found" would be a guess that could charge an invoice twice.
                return self.unreadable("an Inquiry answered RESULT=0 without TRANSSTATE")
            return self.mapped(key, message, findings=())
        try:
            finding = self._finding(fields)
        except (KeyError, ValueError, MoneyError) as exc:
            return self.unreadable(f"the inquired transaction cannot be read: {exc}")
        return self.mapped(
            key,
            f"Transaction {finding.reference} is {finding.state} at Payflow",
            reference=finding.reference,
            findings=(finding,),
        )

    @staticmethod
    def _finding(fields: dict[str, str]) -> Finding:
        original = fields.get("ORIGRESULT", "").strip()
        reference = fields.get("ORIGPNREF") or fields.get("PNREF")
        if not reference:
            raise KeyError("no ORIGPNREF")
        if not _AMT.fullmatch(fields["AMT"].strip()):
            raise ValueError(f"AMT {fields['AMT']!r} is not an amount")
        # No refunded: an Inquiry tells the sale's TRANSSTATE, never its Credits (own PNREFs).
        return Finding(
            state=PayflowProGateway._state(fields["TRANSSTATE"].strip(), original),
            # CURRENCY is Payflow's own default when the answer leaves it out.
            amount=Money.parse(fields["AMT"], fields.get("CURRENCY") or "USD"),
            reference=reference,
            at=_transtime(fields.get("TRANSTIME", "")),
            code=original or None,
        )

    @staticmethod
    def _state(transstate: str, original: str) -> Settlement:
        if transstate == "1":
            return Settlement.VOIDED if original in AUTHORIZED_RESULTS else Settlement.DECLINED
        try:
            return TRANSSTATES[transstate]
        except KeyError:
            raise ValueError(f"unknown TRANSSTATE {transstate!r}") from None

    def scrub(self, text: str) -> str:
        try:
            trxtype = parse_nvp(text.strip()).get("TRXTYPE", "").upper()
        except NvpError:
            trxtype = ""  # unreadable: treat any ORIGID in it as a token
        secrets = SECRET_FIELDS
        if trxtype in ORIGID_IS_TOKEN or not trxtype:
            secrets += ("ORIGID",)
        return _redact(text, secrets)


def _transtime(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


PLUGIN = PayflowProGateway
