"""The gateway plugin contract, and the one place where transport failures become statuses."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from portal import clock
from portal.gateways import transport
from portal.gateways.mapping import CodeMapping
from portal.money import Money, MoneyError
from portal.statuses import GatewayStatus


class Settlement(enum.StrEnum):
    """What a lookup found at the gateway."""

    NOT_FOUND = "not found"
    DECLINED = "declined"
    UNSETTLED = "unsettled"
    SETTLED = "settled"
    VOIDED = "voided"
    REFUNDED = "refunded"

    @property
    def holds_money(self) -> bool:
        return self in (Settlement.UNSETTLED, Settlement.SETTLED)


@dataclass(frozen=True)
class GatewayConfig:
    base_url: str
    credentials: dict[str, str]
    timeout: float = 120.0
    connect_timeout: float = 10.0
    # The most a call may take in all, however the gateway drips its answer (gateways.transport).
    deadline: float = 120.0
    # Why nothing may be sent to base_url (gateways.hosts, in production mode); None: it may.
    refused: str | None = None


@dataclass(frozen=True)
class GatewayRequest:
    operation: str  # charge, refund, void or lookup
    idempotency_key: str
    order_id: str  # the invoice number: what the provider shows as the merchant reference
    amount: Money | None = None
    token: str | None = None  # the payment method's token, for a charge
    reference: str | None = None  # the provider's reference of the charge a follow-up is about
    original_key: str | None = None  # the idempotency key of that charge, for a lookup
    original_at: datetime | None = None  # when that charge was sent (UTC), for a lookup
    # For a listing (reconciliation): the period [since, until) in UTC, and the page to read.
    period: tuple[datetime, datetime] | None = None
    cursor: str | None = None
    # The charge's own reference in the provider's order field, where that field is shorter than
    # Settle's key (Gateway.order_reference): sent with the charge, and what its lookups match.
    order_reference: str | None = None


@dataclass(frozen=True)
class Finding:
    """One transaction as the gateway holds it, from a lookup."""

    state: Settlement
    amount: Money | None = None
    reference: str | None = None
    at: datetime | None = None
    # The provider's code for that transaction, where the lookup tells it (crash recovery uses it).
    code: str | None = None
    # Where the provider tells them: the merchant's idempotency key and order id (invoice number).
    key: str | None = None
    order_id: str | None = None
    # What the gateway has already given back of it, where it tells (a partial refund): the
    # charge still holds `amount - refunded`. None: the gateway said nothing of refunds.
    refunded: Money | None = None

    @property
    def partly_refunded(self) -> bool:
        return (
            self.state.holds_money
            and self.refunded is not None
            and self.refunded.is_positive()
            and self.amount is not None
            and self.refunded.amount < self.amount.amount
        )

    @property
    def held(self) -> Money | None:
        """The money the gateway still holds of this charge (None where it holds none)."""
        if not self.state.holds_money or self.amount is None:
            return None
        if self.refunded is not None and self.refunded.is_positive():
            return self.amount - self.refunded
        return self.amount


@dataclass(frozen=True)
class Holdings:
    """What a gateway holds for a period, for reconciliation; `problem` says why it is incomplete."""

    findings: tuple[Finding, ...]
    problem: str | None = None


@dataclass(frozen=True)
class GatewayResult:
    status: GatewayStatus
    code: str | None
    message: str
    reference: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    unmapped: bool = False
    # Which rule gave the status: a mapping file's line (or its default), as the plugin applied it.
    rule: str | None = None
    # Why Settle decided the status itself (transport failure, unreadable answer).
    reason: str | None = None
    guidance: str | None = None
    findings: tuple[Finding, ...] = ()
    # False when Settle knows the request never reached the gateway: no money can have moved.
    sent: bool = True
    # Sent, and no answer within the timeout: what the provider's retry-safety may allow resending.
    timed_out: bool = False
    # A listing's next page, where there is one.
    cursor: str | None = None
    # The provider's webhook event that told this answer (None: the call's own answer).
    event: str | None = None
    # The provider took the request and tells its outcome later, by webhook (Adyen's "received",
    # a pending Stripe refund): asked, not done.
    awaiting_confirmation: bool = False
    # HTTP 429, Too Many Requests: the gateway did nothing and asks to be called again, after
    # `retry_after` seconds where it says (Retry-After). A run sends the same call again later.
    slow_down: bool = False
    retry_after: float | None = None

    def with_raw(self, raw: dict[str, Any]) -> GatewayResult:
        return replace(self, raw=raw)


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | bytes | None = None


# Raised by requests before anything is sent.
_NOT_SENT_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)


def _public_url(url: str) -> str:
    """A URL fit to store or show: no user:password@ and no query string (either may hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# Statuses that say the gateway decided the money did not move: an answer the gateway itself
# failed to produce (a 5xx) can never say so.
DECIDED_FAILURES = frozenset(
    {
        GatewayStatus.DECLINE,
        GatewayStatus.VALIDATION_ERROR,
        GatewayStatus.PERMANENT_FAIL,
        GatewayStatus.SYSTEM_FAIL,
    }
)


class CallNotMade(Exception):
    """The request could not be built (missing credential, bad configuration): nothing left Settle."""


class Gateway:
    """A provider plugin builds its requests and reads its answers; this class does the rest."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    required_credentials: ClassVar[tuple[str, ...]] = ()
    # Credentials some operations need (a reporting login for lookups, say); the form offers them.
    optional_credentials: ClassVar[tuple[str, ...]] = ()
    # The provider's published hosts, live and test (gateways.hosts: enforced in production mode).
    live_hosts: ClassVar[tuple[str, ...]] = ()
    test_hosts: ClassVar[tuple[str, ...]] = ()
    # True where the provider has no read-only lookup and "asking" reverses an unsettled charge
    # (Payeezy's timeout reversal): Settle then never looks up just to show a clerk.
    lookup_moves_money: ClassVar[bool] = False
    # True where that reversal also refunds a settled charge (Adyen's /reversals): autovoid, which
    # never refunds, then never asks it.
    lookup_may_refund: ClassVar[bool] = False
    # Where a lookup without a charge's key lists what the provider holds for an invoice number
    # (its order id), what it lists ("charge", "unsettled charge"): Refund & Unlock then also finds
    # charges Settle never sent. None where the provider cannot list by invoice.
    invoice_listing: ClassVar[str | None] = None
    # Whether the period's listing shows a charge given back after the period (the charge's state
    # now, as Stripe's lists do). False where a refund is a transaction of its own listed only in
    # its own period (Authorize.Net's batches): the listing then cannot contradict a later refund.
    listing_tells_later_refunds: ClassVar[bool] = True
    # Why Settle cannot ask this provider for everything it holds for a period (reconciliation);
    # None where the plugin builds a "list" operation and `holdings` works.
    not_reconcilable: ClassVar[str | None] = (
        "Settle does not yet read this provider's transaction listing."
    )
    # A listing is read page by page; more pages than this and the report says it is incomplete.
    max_listing_pages: ClassVar[int] = 2000

    def __init__(self, config: GatewayConfig, mapping: CodeMapping, session=None):
        self.config = config
        self.mapping = mapping
        self.session = session or transport.new_session()

    # The contract -----------------------------------------------------------------------------

    def charge(self, request: GatewayRequest) -> GatewayResult:
        return self._call("charge", request)

    def refund(self, request: GatewayRequest) -> GatewayResult:
        return self._call("refund", request)

    def void(self, request: GatewayRequest) -> GatewayResult:
        return self._call("void", request)

    def lookup(self, request: GatewayRequest) -> GatewayResult:
        return self._call("lookup", request)

    def holdings(self, since: datetime, until: datetime) -> Holdings:
        """Every transaction the gateway holds that was made in [since, until) (UTC)."""
        if self.not_reconcilable:
            return Holdings((), self.not_reconcilable)
        found: list[Finding] = []
        problem = self.read_listing((since, until), None, found)
        return Holdings(tuple(found), problem)

    def read_listing(
        self, period: tuple[datetime, datetime], cursor: str | None, found: list[Finding]
    ) -> str | None:
        """Read a listing page by page from `cursor` into `found`: why it stopped short, or None."""
        for _ in range(self.max_listing_pages):
            result = self._call(
                "list", GatewayRequest("list", "", "", period=period, cursor=cursor)
            )
            if result.status is not GatewayStatus.SUCCESS:
                return f"The gateway's listing failed: {result.message}"
            found.extend(result.findings)
            cursor = result.cursor
            if not cursor:
                return None
        return f"More than {self.max_listing_pages} pages: read in part"

    def build(self, operation: str, request: GatewayRequest) -> HttpCall:
        raise NotImplementedError

    # The credential that signs the provider's webhooks; None where Settle reads none of them.
    webhook_credential: ClassVar[str | None] = None
    # The body the provider expects in answer to a delivery it may count as accepted ("[accepted]"
    # for Adyen); None: Settle's own words, what it did with each event.
    webhook_accepted: ClassVar[str | None] = None

    def verify_webhook(self, headers: dict, body: bytes, credentials: dict) -> bool:
        """Whether a webhook was sent by the provider, by its own signing scheme: pure (no I/O),
        comparing in constant time. A provider whose webhooks Settle does not read says False."""
        return False

    def read_webhook(self, body: bytes) -> list:
        """A verified webhook's events, as `webhooks.Notice`s; `webhooks.UnreadableWebhook` when
        the body is not the provider's format."""
        raise NotImplementedError(f"{self.display_name} sends no webhooks Settle reads")

    def interpret(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        raise NotImplementedError

    def scrub(self, text: str) -> str:
        """What of a request or answer body may be stored: no credentials, tokens or card data."""
        raise NotImplementedError

    @classmethod
    def order_reference(cls, idempotency_key: str) -> str | None:
        """A per-charge reference for the provider's merchant order field, for a provider that
        finds a charge with no reference of its own (one that timed out) only by that field and
        keeps it shorter than Settle's key; None where the provider finds it by the key itself."""
        return None

    def answer(
        self, http_status: int, headers: dict, body: str, operation: str = "charge"
    ) -> GatewayResult:
        """interpret(), then one rule for every provider: a 5xx answer came from the gateway
        itself, after the request reached it, so an error it carries that the mapping does not
        decide (untyped, or a code the mapping does not list, which would fall back to its
        default) cannot say the money did not move: Indeterminate (domain.md section 2). A code
        the mapping lists still decides (CyberSource answers every SOAP fault, a refused login
        among them, with HTTP 500). Pure, like interpret()."""
        result = self.interpret(http_status, headers, body, operation)
        undecided = result.unmapped or not result.code
        if http_status >= 500 and undecided and result.status in DECIDED_FAILURES:
            reason = (
                f"HTTP {http_status}: the gateway failed on its side after the request reached "
                f"it ({result.message}); the money may have moved"
            )
            return replace(result, status=GatewayStatus.INDETERMINATE, reason=reason)
        return result

    # Shared machinery -------------------------------------------------------------------------

    def mapped(self, code: str, message: str | None, **kwargs) -> GatewayResult:
        """A result whose status the provider's code decides, through the YAML mapping."""
        entry = self.mapping.lookup(code)
        return GatewayResult(
            status=entry.status,
            code=code,
            message=message or entry.description,
            unmapped=entry.unmapped,
            rule=self.mapping.rule_for(entry),
            guidance=entry.guidance,
            **kwargs,
        )

    def interpret_finding(self, finding: Finding) -> GatewayResult:
        """The status of a charge as a lookup found it (crash recovery): its provider's code
        through the mapping where the lookup tells it, else what the gateway holds of it."""
        if finding.code is not None:
            return self.mapped(finding.code, None, reference=finding.reference)
        held = finding.state.holds_money
        return GatewayResult(
            status=GatewayStatus.SUCCESS if held else GatewayStatus.DECLINE,
            code=None,
            message=f"the gateway holds it as {finding.state}",
            reference=finding.reference,
            rule=f"what the gateway holds ({finding.state}), no code told",
        )

    def found(self, code: str, items, read, what: str, *, has_more: bool = False) -> GatewayResult:
        """A lookup's or a listing's answer: each item read as a Finding by `read` (one that
        cannot be read makes the whole answer unreadable: a lookup is never half believed), the
        first one's reference, and where more pages follow, the next page's cursor."""
        if not isinstance(items, list):
            return self.unreadable(f"a {what} list was expected")
        try:
            findings = tuple(read(item) for item in items)
        except (KeyError, TypeError, ValueError, MoneyError) as exc:
            return self.unreadable(f"a {what} in the answer cannot be read: {exc}")
        first = findings[0] if findings else Finding(Settlement.NOT_FOUND)
        partly = "".join(
            f"; {f.reference} partly refunded, {f.refunded} of {f.amount}"
            for f in findings
            if f.partly_refunded
        )
        return self.mapped(
            code,
            (f"{len(findings)} {what}(s) found" if findings else f"No {what} found") + partly,
            reference=first.reference,
            findings=findings,
            cursor=findings[-1].reference if findings and has_more else None,
        )

    def too_soon_to_tell(
        self, request: GatewayRequest, lag, nothing: GatewayResult, why: str
    ) -> GatewayResult:
        """A search that found nothing, within `lag` of the charge it looked for: no proof that
        the charge never reached the provider (its search may lag behind), so Indeterminate."""
        sent = request.original_at
        if sent is None or clock.now() - sent < lag:
            reason = f"{why}: it cannot yet tell whether the charge reached {self.display_name}"
            return self.decided_by_settle(GatewayStatus.INDETERMINATE, reason, raw=nothing.raw)
        return nothing

    @staticmethod
    def decided_by_settle(status: GatewayStatus, reason: str, **kwargs) -> GatewayResult:
        return GatewayResult(status=status, code=None, message=reason, reason=reason, **kwargs)

    def json_object(self, http_status: int, body: str) -> dict | GatewayResult:
        """A JSON answer's top-level object, or the Indeterminate result of one that is not."""
        try:
            data = json.loads(body)
        except ValueError:
            return self.unreadable(f"HTTP {http_status} with a body that is not JSON")
        if not isinstance(data, dict):
            return self.unreadable("the answer is not a JSON object")
        return data

    def unreadable(self, reason: str) -> GatewayResult:
        # The request reached the gateway, so the money may have moved (domain.md section 2).
        return self.decided_by_settle(GatewayStatus.INDETERMINATE, f"Unreadable answer: {reason}")

    def _call(self, operation: str, request: GatewayRequest) -> GatewayResult:
        try:
            if self.config.refused:
                raise CallNotMade(self.config.refused)
            missing = [k for k in self.required_credentials if not self.config.credentials.get(k)]
            if missing:
                raise CallNotMade(f"missing credential {', '.join(missing)}")
            call = self.build(operation, request)
            stored_request = {
                "method": call.method,
                "url": _public_url(call.url),
                "body": self._scrubbed(call.body),
            }
        except CallNotMade as exc:
            return self._not_sent(str(exc))
        except Exception as exc:  # a request Settle could not build never left
            return self._not_sent(f"the request could not be built ({type(exc).__name__})")
        with transport.Deadline(self.config.deadline) as deadline:
            try:
                response = self.session.request(
                    call.method,
                    call.url,
                    headers=call.headers,
                    data=call.body,
                    timeout=(
                        self.config.connect_timeout,
                        min(self.config.timeout, deadline.seconds),
                    ),
                    allow_redirects=False,
                    stream=True,
                )
                body = transport.read_capped(response)
                if deadline.fired:  # cut off: what was read is a fragment, not an answer
                    raise transport.DeadlinePassed
            except transport.AnswerTooLong as exc:
                response.close()
                result = self.unreadable(f"longer than Settle reads ({exc})")
                return result.with_raw(
                    {"request": stored_request,
                     "response": {"http_status": response.status_code, "body": None}}
                )  # fmt: skip
            except Exception as exc:
                if not deadline.fired:
                    result = self._failed(exc)
                else:  # the watchdog cut it off: sent, and no whole answer in time
                    result = self.decided_by_settle(
                        GatewayStatus.INDETERMINATE,
                        f"Sent, but no complete answer within the call's deadline of"
                        f" {self.config.deadline:g} s",
                        timed_out=True,
                    )
            else:
                return self._read(response, body, operation, stored_request)
        return result.with_raw({"request": stored_request, "response": None})

    def _failed(self, exc: Exception) -> GatewayResult:
        """What an exception of requests says about a call: never sent, or sent with no answer."""
        try:
            raise exc
        except requests.exceptions.ConnectTimeout:
            return self._not_sent("the connection timed out")
        except requests.exceptions.SSLError:
            return self._not_sent("TLS failure")
        except _NOT_SENT_ERRORS as exc:
            return self._not_sent(f"the gateway URL or a header is invalid ({type(exc).__name__})")
        except requests.exceptions.ReadTimeout:
            return self.decided_by_settle(
                GatewayStatus.INDETERMINATE,
                f"Sent, but no answer within the gateway's timeout of {self.config.timeout:g} s",
                timed_out=True,
            )
        except requests.exceptions.ConnectionError as exc:
            return self._connection_error(exc)
        except requests.exceptions.RequestException as exc:
            # Anything else requests raises happened while talking to the gateway: it may have acted.
            return self.decided_by_settle(
                GatewayStatus.INDETERMINATE, f"Call broke off ({type(exc).__name__})"
            )

    def _read(self, response, raw: bytes, operation: str, stored_request: dict) -> GatewayResult:
        """The answer arrived: whatever goes wrong reading it, the request reached the gateway."""
        try:
            body = self._text(response, raw)
            result = self.answer(response.status_code, dict(response.headers), body, operation)
            stored_body = self.scrub(body)
            if response.status_code == 429:
                wait = transport.retry_after(response.headers.get("Retry-After"))
                result = replace(result, slow_down=True, retry_after=wait)
        except Exception as exc:
            result = self.unreadable(f"the answer could not be read ({type(exc).__name__}: {exc})")
            stored_body = None
        return result.with_raw(
            {
                "request": stored_request,
                "response": {"http_status": response.status_code, "body": stored_body},
            }
        )

    @staticmethod
    def _text(response, raw: bytes) -> str:
        # requests reads text/* without a charset as ISO-8859-1 (RFC 2616); gateways send UTF-8.
        declared = "charset=" in response.headers.get("Content-Type", "").lower()
        encoding = (response.encoding if declared else None) or "utf-8"
        try:
            return raw.decode(encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return raw.decode("utf-8", errors="replace")

    def _connection_error(self, exc: requests.exceptions.ConnectionError) -> GatewayResult:
        inner = exc.args[0] if exc.args else None
        if isinstance(inner, MaxRetryError) and isinstance(inner.reason, NewConnectionError):
            # Refused or the host name did not resolve: the request never left.
            return self._not_sent(f"could not connect to {_public_url(self.config.base_url)}")
        # The exception's own text ("('Connection aborted.', RemoteDisconnected(...))") is for
        # the log, not for a clerk.
        return self.decided_by_settle(
            GatewayStatus.INDETERMINATE,
            "Connection dropped after the request was sent: the gateway closed it without an answer",
        )

    def _not_sent(self, reason: str) -> GatewayResult:
        return self.decided_by_settle(
            GatewayStatus.SYSTEM_FAIL, f"Request not sent: {reason}", sent=False
        )

    def _scrubbed(self, body: str | bytes | None) -> str | None:
        if body is None:
            return None
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        return self.scrub(body)
