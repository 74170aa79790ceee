"""Authorize.Net's refunds of a charge: a refund is a transaction of its own there, naming the
charge it refunds only in its details (refTransId), so what a charge has given back is found by
searching the batches after it and asking each refund's details. Mixed into the plugin
(`AuthorizeNetGateway`), whose calls and readers it uses."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from portal import clock
from portal.gateways.authorize_net import listing
from portal.gateways.base import Finding, GatewayRequest, GatewayResult, Settlement
from portal.money import Money, MoneyError
from portal.statuses import GatewayStatus

# A refund is a transaction of its own at Authorize.Net (transactionType refundTransaction, its
# refTransId the charge it refunds), and only a refund has one of these statuses; the charge it
# refunds, in part or in full, stays settledSuccessfully. A list's summary of a transaction has
# neither its type nor its refTransId: only its details tell what a refund refunds.
REFUND_STATUSES = frozenset({"refundSettledSuccessfully", "refundPendingSettlement"})
# Authorize.Net takes a refund within 180 days of the charge's settlement, so a lookup searches
# the batches that long after the charge for its refunds, a window at a time (the batch list
# takes at most 31 days a request, and listing.batches_request adds its settlement lag).
REFUND_WINDOW = timedelta(days=182)
SEARCH_STEP = listing.MAX_SPAN - listing.SETTLEMENT_LAG


class RefundSearch:
    """The plugin's refund search (the methods it needs: _call, _listing, _finding, mapped,
    unreadable)."""

    def _refunds(
        self, listed: list[Finding], invoice: str | None = None
    ) -> tuple[dict[str, Money], set[str], str | None]:
        """What listed refunds gave back, by the transId of the charge each refunds; the refunds'
        own transIds; why the search stopped short, or None. A listed transaction given back may
        be a refund or a charge returned or charged back, and a summary does not say which nor
        what a refund refunds: each is asked for its details (only those of `invoice`, or of no
        invoice number, where `invoice` is given: Settle sends a refund with its charge's)."""
        given: dict[str, Money] = {}
        refunds: set[str] = set()
        for finding in listed:
            if finding.state is not Settlement.REFUNDED or not finding.reference:
                continue
            if invoice is not None and finding.order_id not in (None, invoice):
                continue
            asked = self._call(
                "refund_of", GatewayRequest("refund_of", "", "", reference=finding.reference)
            )
            if asked.status is not GatewayStatus.SUCCESS or not asked.findings:
                why = (
                    f"transaction {finding.reference}'s details could not be read: {asked.message}"
                )
                return given, refunds, why
            if asked.reference is None:  # no refund: a charge returned or charged back
                continue
            refunds.add(finding.reference)
            (refund,) = asked.findings
            if refund.state is Settlement.REFUNDED and refund.amount is not None:
                before = given.get(asked.reference, Money.zero(refund.amount.currency))
                given[asked.reference] = before + refund.amount
        return given, refunds, None

    def _with_its_refunds(self, result: GatewayResult) -> GatewayResult:
        """A settled charge found by its transId, with what its refunds gave back. Its details
        say nothing of refunds (a refund is a transaction of its own that names the charge), so
        the batches from the charge on (within Authorize.Net's 180 days for a refund) and the
        open batch are searched for them. Where that search fails, the charge is as its details
        tell it, and the message says that its refunds are not known."""
        if result.status is not GatewayStatus.SUCCESS or len(result.findings) != 1:
            return result
        (charge,) = result.findings
        if charge.state is not Settlement.SETTLED or charge.amount is None:
            return result  # a refund needs a settled charge
        listed, problem = self._listings_since(charge.at or clock.now())
        given: dict[str, Money] = {}
        if problem is None:
            given, _, problem = self._refunds(listed, invoice=charge.order_id)
        if problem:
            return replace(
                result, message=f"{result.message}; its refunds could not be searched ({problem})"
            )
        found = refunded(charge, given.get(charge.reference, Money.zero(charge.amount.currency)))
        message = result.message
        if found.state is Settlement.REFUNDED:
            message += f"; refunded in full ({found.refunded})"
        elif found.partly_refunded:
            message += f"; {found.reference} partly refunded, {found.refunded} of {found.amount}"
        return replace(result, message=message, findings=(found,))

    def _listings_since(self, moment: datetime) -> tuple[list[Finding], str | None]:
        """Every transaction of the batches settled from `moment` until now (or the end of the
        refund window), a window at a time, and of the open batch once."""
        start = moment - timedelta(hours=1)
        end = max(start, min(clock.now(), start + REFUND_WINDOW))
        seen: dict[str, Finding] = {}
        while True:
            stop = min(start + SEARCH_STEP, end)
            last = stop >= end
            found, problem = self._listing(start, stop, open_batch=last)
            seen.update((f.reference or "", f) for f in found)
            if problem or last:
                return list(seen.values()), problem
            start = stop

    def _refund_of(self, data: dict, ok: bool, top: dict | None) -> GatewayResult:
        """A transaction's details, asked for the charge it refunds: the result's reference is
        that charge's transId (refTransId), None where the transaction is no refund; its one
        finding is the transaction, with its amount (settleAmount) and what it holds."""
        if top is None or not top.get("code"):
            return self.unreadable("a transaction's details without a message code")
        code = str(top["code"])
        if not ok:
            return self.mapped(code, top.get("text"))
        transaction = data.get("transaction")
        if not isinstance(transaction, dict):
            return self.unreadable("a transaction's details without the transaction")
        try:
            finding = self._finding(transaction)
        except (KeyError, TypeError, ValueError, MoneyError) as exc:
            return self.unreadable(f"the transaction cannot be read: {exc}")
        refunds = transaction.get("transactionType") == "refundTransaction"
        charge = trans_id(transaction.get("refTransId")) if refunds else None
        what = f"refunds {charge}" if charge else "is no refund"
        return self.mapped(code, f"Transaction {finding.reference} {what}", reference=charge,
                           findings=(finding,))  # fmt: skip


def refunded(finding: Finding, refunded: Money | None) -> Finding:
    """A charge with what its refunds gave back; given back in full, it is refunded. None: what
    was searched shows none of its refunds, which says nothing of them."""
    if refunded is None:
        return finding
    whole = finding.amount is not None and refunded >= finding.amount
    state = Settlement.REFUNDED if finding.state is Settlement.SETTLED and whole else finding.state
    return replace(finding, state=state, refunded=refunded)


def trans_id(value: Any) -> str | None:
    """A transaction id; "0" is what Authorize.Net sends when it created no transaction."""
    text = "" if value is None else str(value).strip()
    return text if text and text != "0" else None
