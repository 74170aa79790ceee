"""The Sandbox plugin: speaks Settle's own JSON sandbox gateway (portal/sandbox/)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from urllib.parse import quote, urlencode

from portal.gateways.base import (
    CallNotMade,
    Finding,
    Gateway,
    GatewayRequest,
    GatewayResult,
    HttpCall,
    Settlement,
)
from portal.money import Money

_SECRET_FIELDS = re.compile(r'("(?:source|api_key|token)"\s*:\s*")[^"]*(")')


class SandboxGateway(Gateway):
    name = "sandbox"
    invoice_listing = "charge"  # GET /v1/charges?order_id= lists every charge of the invoice
    display_name = "Settle Sandbox"
    not_reconcilable = None  # GET /v1/charges?created_gte=&created_lt= lists a period
    required_credentials = ("api_key",)
    live_hosts = ()
    test_hosts = ()

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        base = self.config.base_url.rstrip("/")
        headers = {
            "Authorization": f"Bearer {self.config.credentials['api_key']}",
            "Idempotency-Key": request.idempotency_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if operation == "charge":
            if request.amount is None or not request.token:
                raise CallNotMade("a charge needs an amount and a payment method token")
            body = {
                "amount": request.amount.plain(),
                "currency": request.amount.currency,
                "source": request.token,
                "order_id": request.order_id,
            }
            return HttpCall("POST", f"{base}/v1/charges", headers, json.dumps(body))
        if operation in ("refund", "void"):
            if not request.reference:
                raise CallNotMade(f"a {operation} needs the provider's reference of the charge")
            path = f"{base}/v1/charges/{quote(request.reference, safe='')}"
            if operation == "void":
                return HttpCall("POST", f"{path}/void", headers, "{}")
            body = {"amount": request.amount.plain(), "currency": request.amount.currency}
            return HttpCall("POST", f"{path}/refunds", headers, json.dumps(body))
        if operation == "lookup":
            query = (
                {"idempotency_key": request.original_key}
                if request.original_key
                else {"order_id": request.order_id}
            )
            return HttpCall("GET", f"{base}/v1/charges?{urlencode(query)}", headers)
        if operation == "list":
            since, until = request.period
            query = {
                "created_gte": since.isoformat(),
                "created_lt": until.isoformat(),
                "limit": 100,
            }
            if request.cursor:
                query["starting_after"] = request.cursor
            return HttpCall("GET", f"{base}/v1/charges?{urlencode(query)}", headers)
        raise CallNotMade(f"unknown operation {operation!r}")

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        data = self.json_object(http_status, body)
        if isinstance(data, GatewayResult):
            return data
        if "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            return self.mapped(str(error.get("code", "")), error.get("message"))
        if operation in ("lookup", "list"):
            return self._lookup(data)
        if "code" not in data:
            return self.unreadable("the answer has no code")
        return self.mapped(str(data["code"]), data.get("message"), reference=data.get("id"))

    def _lookup(self, data: dict) -> GatewayResult:
        return self.found(
            "found", data.get("data"), self._finding, "charge", has_more=bool(data.get("has_more"))
        )

    @staticmethod
    def _finding(charge: dict) -> Finding:
        return Finding(
            state=Settlement(charge["state"]),
            amount=Money.parse(charge["amount"], charge["currency"]),
            reference=charge["id"],
            at=datetime.fromisoformat(charge["created"]),
            code=charge.get("code"),
            key=charge.get("idempotency_key"),
            order_id=charge.get("order_id"),
        )

    def scrub(self, text: str) -> str:
        return _SECRET_FIELDS.sub(r"\1[FILTERED]\2", text)


PLUGIN = SandboxGateway
