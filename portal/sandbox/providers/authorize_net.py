"""The Authorize.Net emulation: its JSON API at /authorize_net/xml/v1/request.api, BOM and all."""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from werkzeug.wrappers import Request, Response

from portal.money import MoneyError, parse_amount
from portal.sandbox.emulator import Emulator, outcome_for

ENDPOINT = "/xml/v1/request.api"
BOM = "\ufeff"
NAMESPACE = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"
# The emulated merchant account settles in US dollars, as the plugin's account_currency says.
CURRENCY = "USD"
DEFAULT_WINDOW, MAX_WINDOW = 120, 28800  # responseCodes.json, the notes on reason code 11

# The children each request may have, in the schema's order (the JSON is read as XML would be).
_BASE = ("merchantAuthentication", "clientId", "refId")
SEQUENCES = {
    "createTransactionRequest": (*_BASE, "transactionRequest"),
    "getTransactionDetailsRequest": (*_BASE, "transId"),
    "getUnsettledTransactionListRequest": (*_BASE, "status", "sorting", "paging"),
    "getSettledBatchListRequest": (
        *_BASE, "includeStatistics", "firstSettlementDate", "lastSettlementDate"),
    "getTransactionListRequest": (*_BASE, "batchId", "sorting", "paging"),
    "authenticateTestRequest": _BASE,
    "transactionRequest": (
        "transactionType", "amount", "currencyCode", "payment", "profile", "solution", "callId",
        "terminalNumber", "authCode", "refTransId", "splitTenderId", "order", "lineItems", "tax",
        "duty", "shipping", "taxExempt", "poNumber", "customer", "billTo", "shipTo", "customerIP",
        "cardholderAuthentication", "retail", "employeeId", "transactionSettings", "userFields",
        "surcharge", "merchantDescriptor", "subMerchant", "tip", "processingOptions",
        "subsequentAuthInformation", "otherTax", "shipFrom", "authorizationIndicatorType",
    ),
}  # fmt: skip

# Outcome kind -> (responseCode, reason code, Authorize.Net's text, avsResultCode, cvvResultCode).
# Authorize.Net reports issuer declines (insufficient funds, do not honor) alike, as reason 2.
OUTCOMES = {
    "approve": ("1", "1", "This transaction has been approved.", "Y", "P"),
    "decline": ("2", "2", "This transaction has been declined.", "Y", "P"),
    "do_not_honor": ("2", "2", "This transaction has been declined.", "Y", "P"),
    "cvc": ("2", "44", "This transaction has been declined.", "Y", "N"),
    "address": ("2", "27", "The transaction has been declined because of an AVS mismatch. "
                "The address provided does not match billing address of cardholder.", "N", "P"),
    "closed": ("2", "128", "This transaction cannot be processed.", "P", ""),
    "review": ("4", "253", "Your order has been received. Thank you for your business!", "Y", "P"),
    "timeout": ("3", "120", "An error occurred during processing. Please try again.", "P", ""),
    "misconfigured": ("3", "30", "The configuration with processor is invalid. "
                      "Call Merchant Service Provider.", "P", ""),
}  # fmt: skip
REJECTED = ("E00007", "User authentication failed due to invalid authentication values.")
# A real code of Authorize.Net's newer table that Settle's codes.yaml does not list.
UNLISTED = ("E00114", "Invalid OTS Token.")


class AuthorizeNetEmulator(Emulator):
    provider = "authorize_net"
    credentials = {"api_login_id": "SettleSandbox01", "transaction_key": "SandboxTxnKey001"}

    def __init__(self, ledger, faults, webhooks=None):
        super().__init__(ledger, faults, webhooks)
        self._lock = threading.Lock()
        # What the shared ledger does not keep: profile, auth code and response code per transId.
        self._extra: dict[str, dict] = {}

    def handle(self, request: Request) -> Response:
        if request.path != ENDPOINT or request.method != "POST":
            return Response(
                "<html><body><h1>404 Not Found</h1></body></html>", 404, mimetype="text/html"
            )
        try:
            payload = json.loads(
                request.get_data(as_text=True).removeprefix(BOM), parse_float=Decimal
            )
        except ValueError:
            return self.error("E00003", "An error occurred while parsing the XML request.")
        if not isinstance(payload, dict) or len(payload) != 1:
            return self.error("E00003", "An error occurred while parsing the XML request.")
        ((root, body),) = payload.items()
        handler = getattr(self, f"on_{root}", None) if root in SEQUENCES else None
        if handler is None or root == "transactionRequest":
            return self.error("E00004", "The name of the requested API method is invalid.")
        if not isinstance(body, dict):
            return self.error("E00003", "An error occurred while parsing the XML request.")
        problem = self._schema(root, body)
        if problem:
            return self.error("E00003", problem, body.get("refId"))
        auth = body.get("merchantAuthentication") or {}
        if (auth.get("name"), auth.get("transactionKey")) != (
            self.credentials["api_login_id"],
            self.credentials["transaction_key"],
        ):
            return self.error(*REJECTED, body.get("refId"))
        return handler(body, body.get("refId"))

    # Answers ----------------------------------------------------------------------------------

    @staticmethod
    def reply(body: dict) -> Response:
        text = BOM + json.dumps(body, separators=(",", ":"))
        return Response(text.encode("utf-8"), 200, content_type="application/json; charset=utf-8")

    @staticmethod
    def _messages(ok: bool, code: str, text: str) -> dict:
        return {"resultCode": "Ok" if ok else "Error", "message": [{"code": code, "text": text}]}

    def error(self, code: str, text: str, ref_id=None) -> Response:
        body = {} if ref_id is None else {"refId": ref_id}
        return self.reply({**body, "messages": self._messages(False, code, text)})

    def _transaction(self, ref_id, response_code, reason, text, trans_id="0", *, ref_trans="",
                     auth_code="", avs="P", cvv="", profile=None) -> Response:  # fmt: skip
        answer = {
            "responseCode": response_code, "authCode": auth_code, "avsResultCode": avs,
            "cvvResultCode": cvv, "cavvResultCode": "", "transId": trans_id,
            "refTransID": ref_trans, "transHash": "", "testRequest": "0",
            "accountNumber": "XXXX1111", "accountType": "Visa",
        }  # fmt: skip
        ok = response_code in ("1", "4")
        if ok:
            answer["messages"] = [{"code": reason, "description": text}]
        else:
            answer["errors"] = [{"errorCode": reason, "errorText": text}]
        if profile:
            answer["profile"] = {
                "customerProfileId": profile[0],
                "customerPaymentProfileId": profile[1],
            }
        body = {"transactionResponse": answer} | ({} if ref_id is None else {"refId": ref_id})
        if ok:
            messages = self._messages(True, "I00001", "Successful.")
        else:
            messages = self._messages(False, "E00027", "The transaction was unsuccessful.")
        return self.reply({**body, "messages": messages})

    # Requests ---------------------------------------------------------------------------------

    def _schema(self, root: str, body: dict) -> str | None:
        """The schema error Authorize.Net gives for children out of order, unknown or too long."""
        for name, element in ((root, body), ("transactionRequest", body.get("transactionRequest"))):
            if not isinstance(element, dict):
                continue
            allowed, position = SEQUENCES[name], -1
            for child in element:
                if child not in allowed or allowed.index(child) < position:
                    expected = ", ".join(allowed[position + 1 :])
                    return (
                        f"The element '{name}' in namespace '{NAMESPACE}' has invalid child element "
                        f"'{child}' in namespace '{NAMESPACE}'. List of possible elements expected: "
                        f"'{expected}' in namespace '{NAMESPACE}'."
                    )
                position = allowed.index(child)
        request = body.get("transactionRequest")
        order = request.get("order") if isinstance(request, dict) else None
        order = order if isinstance(order, dict) else {}
        for field, value in (
            ("refId", body.get("refId")),
            ("invoiceNumber", order.get("invoiceNumber")),
        ):
            if value is not None and len(str(value)) > 20:
                return (
                    f"The '{NAMESPACE}:{field}' element is invalid - The value '{value}' is invalid "
                    "according to its datatype 'String' - The actual length is greater than the "
                    "MaxLength value."
                )
        return None

    def on_authenticateTestRequest(self, body: dict, ref_id) -> Response:
        return self.reply({"messages": self._messages(True, "I00001", "Successful.")})

    def on_createTransactionRequest(self, body: dict, ref_id) -> Response:
        request = body.get("transactionRequest")
        if not isinstance(request, dict):
            return self.error("E00003", "An error occurred while parsing the XML request.", ref_id)
        kind = request.get("transactionType")
        if kind == "authCaptureTransaction":
            return self._charge(request, ref_id)
        if kind == "refundTransaction":
            return self._refund(request, ref_id)
        if kind == "voidTransaction":
            return self._void(request, ref_id)
        return self.error("E00060", "The transaction type is invalid.", ref_id)

    @staticmethod
    def _amount(request: dict) -> Decimal | None:
        try:
            amount = parse_amount(str(request.get("amount", "")), CURRENCY)
        except MoneyError:
            return None
        return amount if amount > 0 else None

    @staticmethod
    def _profile(request: dict) -> tuple[str, str] | None:
        profile = request.get("profile")
        if not isinstance(profile, dict) or not isinstance(profile.get("paymentProfile"), dict):
            return None
        customer = str(profile.get("customerProfileId") or "")
        payment = str(profile["paymentProfile"].get("paymentProfileId") or "")
        return (customer, payment) if customer and payment else None

    @staticmethod
    def _window(request: dict) -> int:
        settings = (request.get("transactionSettings") or {}).get("setting") or []
        for setting in settings if isinstance(settings, list) else [settings]:
            if isinstance(setting, dict) and setting.get("settingName") == "duplicateWindow":
                try:
                    return min(int(setting.get("settingValue") or 0), MAX_WINDOW)
                except ValueError:
                    return DEFAULT_WINDOW
        return DEFAULT_WINDOW

    def _charge(self, request: dict, ref_id) -> Response:
        amount, profile = self._amount(request), self._profile(request)
        if amount is None:
            return self._transaction(ref_id, "3", "5", "A valid amount is required.")
        if request.get("currencyCode", CURRENCY) != CURRENCY:
            return self._transaction(ref_id, "3", "39", "The supplied currency code is either invalid, not supported, not allowed for this merchant or doesnt have an exchange rate.")  # fmt: skip
        if profile is None:
            return self._transaction(ref_id, "3", "33", "Credit card number cannot be left blank.")
        invoice = str((request.get("order") or {}).get("invoiceNumber") or "")
        outcome = outcome_for(profile[0])
        if outcome.kind == "refuse":
            return self.deliver(self.error(*REJECTED, ref_id), outcome.fault)
        if outcome.kind == "unknown":
            return self.deliver(self.error(*UNLISTED, ref_id), outcome.fault)
        with self._lock:
            first = self._duplicate_of(invoice, amount, profile, self._window(request))
            if first is not None:
                extra = self._extra.get(first["id"], {})
                answer = self._transaction(
                    ref_id, "3", "11", "A duplicate transaction has been submitted.", first["id"],
                    auth_code=extra.get("auth_code", ""), profile=profile,
                )  # fmt: skip
                return self.deliver(answer, outcome.fault)
            response_code, reason, text, avs, cvv = OUTCOMES[outcome.kind]
            if outcome.kind == "misconfigured":
                answer = self._transaction(ref_id, response_code, reason, text, avs=avs)
                return self.deliver(answer, outcome.fault)
            trans_id = self._new_trans_id()
            auth_code = _auth_code() if response_code in ("1", "4") else ""
            self.ledger.add_charge(self.provider, ref_id or "", invoice, amount, CURRENCY, reason,
                                   outcome.moved, charge_id=trans_id)  # fmt: skip
            self._extra[trans_id] = {"profile": profile, "auth_code": auth_code,
                                     "response_code": response_code, "text": text}  # fmt: skip
        answer = self._transaction(ref_id, response_code, reason, text, trans_id,
                                   auth_code=auth_code, avs=avs, cvv=cvv, profile=profile)  # fmt: skip
        return self.deliver(answer, outcome.fault)

    def _duplicate_of(self, invoice: str, amount: Decimal, profile, window: int) -> dict | None:
        """Authorize.Net's duplicate check: same invoice, amount and payment data inside the window."""
        if window <= 0:
            return None
        now = time.time()
        for charge in reversed(self.ledger.find(self.provider, order_id=invoice)):
            created = datetime.fromisoformat(charge["created"]).replace(tzinfo=UTC).timestamp()
            known = self._extra.get(charge["id"], {}).get("profile")
            if (
                now - created < window
                and Decimal(charge["amount"]) == amount
                and known in (None, profile)
            ):
                return charge
        return None

    def _void(self, request: dict, ref_id) -> Response:
        ref = str(request.get("refTransId") or "")
        if not ref:
            return self._transaction(
                ref_id, "3", "15", "The transaction ID is invalid or not present."
            )
        charge = self.ledger.charge(self.provider, ref)
        state = charge["state"] if charge else None
        auth_code = self._extra.get(ref, {}).get("auth_code", "")
        if state == "unsettled":
            self.ledger.void(self.provider, ref)
            return self._transaction(ref_id, "1", "1", "This transaction has been approved.", ref,
                                     ref_trans=ref, auth_code=auth_code)  # fmt: skip
        if state == "voided":
            return self._transaction(ref_id, "1", "310", "This transaction has already been voided.",
                                     ref, ref_trans=ref)  # fmt: skip
        if state in ("settled", "refunded"):
            return self._transaction(ref_id, "3", "327", "The void request failed. Either the original transaction type does not support void, or the transaction is in the process of being settled.", ref_trans=ref)  # fmt: skip
        return self._transaction(
            ref_id, "3", "16", "The transaction cannot be found.", ref_trans=ref
        )

    def _refund(self, request: dict, ref_id) -> Response:
        """A refund is a transaction of its own, naming the charge in refTransId; refunds add up
        to at most what the charge settled, and the charge itself stays settledSuccessfully."""
        amount, profile = self._amount(request), self._profile(request)
        ref = str(request.get("refTransId") or "")
        if amount is None:
            return self._transaction(ref_id, "3", "5", "A valid amount is required.", ref_trans=ref)
        if not ref:
            return self._transaction(
                ref_id, "3", "15", "The transaction ID is invalid or not present."
            )
        if profile is None and not isinstance(request.get("payment"), dict):
            return self._transaction(ref_id, "3", "33", "Credit card number cannot be left blank.", ref_trans=ref)  # fmt: skip
        with self._lock:
            charge = self.ledger.charge(self.provider, ref)
            if charge is None:
                return self._transaction(
                    ref_id, "3", "16", "The transaction cannot be found.", ref_trans=ref
                )
            known = self._extra.get(ref, {}).get("profile")
            if profile is not None and known not in (None, profile):
                return self.error("E00051", "The original transaction was not issued for this payment profile.", ref_id)  # fmt: skip
            if charge["state"] not in ("settled", "refunded"):
                return self._transaction(ref_id, "3", "54", "The referenced transaction does not meet the criteria for issuing a credit.", ref_trans=ref)  # fmt: skip
            left = Decimal(charge["amount"]) - Decimal(charge["refunded"] or 0)
            if amount > left:
                return self._transaction(ref_id, "3", "55", "The sum of credits against the referenced transaction would exceed original debit amount.", ref_trans=ref)  # fmt: skip
            refund_id, auth_code = self._new_trans_id(), _auth_code()
            self.ledger.add_refund(self.provider, ref, amount, refund_id=refund_id)
            invoice = str((request.get("order") or {}).get("invoiceNumber") or "")
            self._extra[refund_id] = {"profile": profile or known, "auth_code": auth_code,
                                      "response_code": "1", "invoice": invoice,
                                      "text": "This transaction has been approved."}  # fmt: skip
        return self._transaction(ref_id, "1", "1", "This transaction has been approved.",
                                 refund_id, ref_trans=ref, auth_code=auth_code)  # fmt: skip

    def on_getTransactionDetailsRequest(self, body: dict, ref_id) -> Response:
        trans_id = str(body.get("transId") or "")
        charge = self.ledger.charge(self.provider, trans_id) if trans_id else None
        refund = self._refund_of(trans_id) if trans_id and charge is None else None
        if charge is None and refund is None:
            return self.error("E00040", "The record cannot be found.", ref_id)
        if refund is not None:
            transaction = self._refund_details(refund)
        else:
            transaction = self._charge_details(charge)
        body = {} if ref_id is None else {"refId": ref_id}
        return self.reply({"transaction": transaction, **body,
                           "messages": self._messages(True, "I00001", "Successful.")})  # fmt: skip

    def _charge_details(self, charge: dict) -> dict:
        extra = self._extra.get(charge["id"], {})
        moved = charge["state"] in ("unsettled", "settled", "refunded")
        return {
            **self._summary_head(charge),
            "transactionType": "authCaptureTransaction",
            "transactionStatus": self._status(charge),
            "responseCode": int(extra.get("response_code", "1" if moved else "2")),
            "responseReasonCode": int(charge["code"]),
            "responseReasonDescription": extra.get("text", ""),
            "authCode": extra.get("auth_code", ""),
            "order": {"invoiceNumber": charge["order_id"]},
            "authAmount": charge["amount"],
            "settleAmount": charge["amount"] if moved else "0.00",
            "payment": {"creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX", "cardType": "Visa"}},
            **self._profile_of(charge["id"]),
            "product": "Card Not Present",
            "marketType": "eCommerce",
        }  # fmt: skip

    def _refund_details(self, refund: dict) -> dict:
        """A refund's details: its own transaction, whose refTransId names the charge."""
        extra = self._extra.get(refund["id"], {})
        head = self._summary_head(refund)
        transaction = {"transId": head.pop("transId"), "refTransId": refund["charge_id"], **head}
        return transaction | {
            "transactionType": "refundTransaction",
            "transactionStatus": self._refund_status(refund),
            "responseCode": 1,
            "responseReasonCode": 1,
            "responseReasonDescription": extra.get("text", "This transaction has been approved."),
            "authCode": extra.get("auth_code", ""),
            "order": {"invoiceNumber": self._refund_invoice(refund)},
            "authAmount": refund["amount"],
            "settleAmount": refund["amount"],
            "payment": {"creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX", "cardType": "Visa"}},
            **self._profile_of(refund["id"]),
            "product": "Card Not Present",
            "marketType": "eCommerce",
        }  # fmt: skip

    def _mine(self) -> list[dict]:
        return [c for c in self.ledger.all() if self.ledger.charge(self.provider, c["id"])]

    def _refunds(self) -> list[dict]:
        """Each refund as a transaction of the lists, beside the charges."""
        return [r | {"refund": True} for r in self.ledger.refunds(self.provider)]

    def _refund_of(self, trans_id: str) -> dict | None:
        return next((r for r in self.ledger.refunds(self.provider) if r["id"] == trans_id), None)

    def on_getUnsettledTransactionListRequest(self, body: dict, ref_id) -> Response:
        # Unsettled, declined and voided transactions wait in the open batch, and refunds until
        # they settle; settled ones left it.
        waiting = [c for c in self._mine() if c["state"] in ("unsettled", "declined", "voided")]
        waiting += [r for r in self._refunds() if r["state"] == "unsettled"]
        return self._listed(waiting, body, ref_id)

    # The emulation settles each day's charges in one batch, at 02:00 UTC the next day.
    @staticmethod
    def _batch_of(charge: dict) -> tuple[str, datetime]:
        day = datetime.fromisoformat(charge["created"]).date()
        settled_at = datetime.combine(day + timedelta(days=1), datetime.min.time()) + timedelta(
            hours=2
        )
        return day.strftime("%Y%m%d"), settled_at

    def _settled(self) -> list[dict]:
        charges = [c for c in self._mine() if c["state"] in ("settled", "refunded")]
        return charges + [r for r in self._refunds() if r["state"] == "settled"]

    def on_getSettledBatchListRequest(self, body: dict, ref_id) -> Response:
        echo = {} if ref_id is None else {"refId": ref_id}
        try:
            first = _utc_naive(body["firstSettlementDate"])
            last = _utc_naive(body["lastSettlementDate"])
        except (KeyError, ValueError):
            return self.error("E00003", "firstSettlementDate and lastSettlementDate are required.",
                              ref_id)  # fmt: skip
        if last < first or last - first > timedelta(days=31):
            return self.error("E00059", "The date range cannot exceed 31 days.", ref_id)
        batches = {}
        for charge in self._settled():
            batch_id, at = self._batch_of(charge)
            if first <= at <= last:
                batches[batch_id] = at
        if not batches:
            return self.reply(
                {**echo, "messages": self._messages(True, "I00004", "No records found.")}
            )
        listed = [{"batchId": b, "settlementTimeUTC": f"{at:%Y-%m-%dT%H:%M:%S}Z",
                   "settlementTimeLocal": f"{at:%Y-%m-%dT%H:%M:%S}",
                   "settlementState": "settledSuccessfully", "paymentMethod": "creditCard",
                   "marketType": "eCommerce", "product": "Card Not Present"}
                  for b, at in sorted(batches.items())]  # fmt: skip
        return self.reply({"batchList": listed, **echo,
                           "messages": self._messages(True, "I00001", "Successful.")})  # fmt: skip

    def on_getTransactionListRequest(self, body: dict, ref_id) -> Response:
        batch_id = str(body.get("batchId") or "")
        charges = [c for c in self._settled() if self._batch_of(c)[0] == batch_id]
        return self._listed(charges, body, ref_id)

    def _listed(self, charges: list[dict], body: dict, ref_id) -> Response:
        """A page of charges and refunds, each a transaction summary (transactionSummaryType:
        no transactionType and no refTransId, so a refund tells what it refunds only in its
        details)."""
        sorting, paging = body.get("sorting") or {}, body.get("paging") or {}
        key = "id" if sorting.get("orderBy") == "id" else "created"
        descending = str(sorting.get("orderDescending", "false")).lower() == "true"
        charges.sort(key=lambda c: c[key], reverse=descending)
        limit = max(1, min(int(paging.get("limit") or 1000), 1000))
        offset = max(1, int(paging.get("offset") or 1))
        page = charges[(offset - 1) * limit : offset * limit]
        echo = {} if ref_id is None else {"refId": ref_id}
        if not charges:
            return self.reply(
                {**echo, "messages": self._messages(True, "I00004", "No records found.")}
            )
        listed = [self._summary(item) for item in page]
        return self.reply({"transactions": listed, "totalNumInResultSet": len(charges), **echo,
                           "messages": self._messages(True, "I00001", "Successful.")})  # fmt: skip

    def _summary(self, item: dict) -> dict:
        if item.get("refund"):
            status, invoice, settled = (self._refund_status(item), self._refund_invoice(item),
                                        item["amount"])  # fmt: skip
        else:
            moved = item["state"] in ("unsettled", "settled", "refunded")
            status, invoice = self._status(item), item["order_id"]
            settled = item["amount"] if moved else "0.00"
        summary = {**self._summary_head(item), "transactionStatus": status}
        if invoice:
            summary["invoiceNumber"] = invoice
        return summary | {
            "accountType": "Visa", "accountNumber": "XXXX1111", "settleAmount": settled,
            "marketType": "eCommerce", "product": "Card Not Present",
            **self._profile_of(item["id"]),
        }  # fmt: skip

    # Helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _summary_head(charge: dict) -> dict:
        created = datetime.fromisoformat(charge["created"])
        return {
            "transId": charge["id"],
            "submitTimeUTC": f"{created:%Y-%m-%dT%H:%M:%S}.{created.microsecond // 1000:03d}Z",
            "submitTimeLocal": f"{created:%Y-%m-%dT%H:%M:%S}.{created.microsecond // 1000:03d}",
        }

    @staticmethod
    def _status(charge: dict) -> str:
        if charge["state"] == "unsettled":
            return (
                "FDSAuthorizedPendingReview"
                if charge["code"] == "253"
                else "capturedPendingSettlement"
            )
        # A refund is a transaction of its own (_refund_status); the charge it refunds, in part
        # or in full, stays settledSuccessfully, as at Authorize.Net.
        return {
            "settled": "settledSuccessfully",
            "voided": "voided",
            "declined": "declined",
            "refunded": "settledSuccessfully",
        }[charge["state"]]

    @staticmethod
    def _refund_status(refund: dict) -> str:
        return (
            "refundSettledSuccessfully"
            if refund["state"] == "settled"
            else "refundPendingSettlement"
        )

    def _refund_invoice(self, refund: dict) -> str:
        """The invoiceNumber the refund was sent with; the charge's, when this process has no
        record of it (the sandbox restarted)."""
        invoice = self._extra.get(refund["id"], {}).get("invoice")
        if invoice is None:
            charge = self.ledger.charge(self.provider, refund["charge_id"])
            invoice = charge["order_id"] if charge else ""
        return invoice

    def _profile_of(self, trans_id: str) -> dict:
        profile = self._extra.get(trans_id, {}).get("profile")
        if not profile:
            return {}
        return {
            "profile": {"customerProfileId": profile[0], "customerPaymentProfileId": profile[1]}
        }

    def _new_trans_id(self) -> str:
        # Authorize.Net's sandbox hands out 11-digit numeric ids (60006537898 in its reference).
        return str(60_000_000_000 + secrets.randbelow(10_000_000_000))


def _utc_naive(text: str) -> datetime:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _auth_code() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(6))


EMULATOR = AuthorizeNetEmulator
