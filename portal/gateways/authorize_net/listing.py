"""Authorize.Net's listings, for reconciliation: the settled batches of a period
(getSettledBatchListRequest), each batch's transactions (getTransactionListRequest), and the open
batch (getUnsettledTransactionListRequest), each list a thousand at a time.

Sources: developer.authorize.net/api/reference, "Transaction Reporting": the settlement dates of
getSettledBatchList span at most 31 days; lists page by paging.limit (at most 1000) and
paging.offset (the page number, from 1). A transaction summary carries transId, submitTimeUTC,
transactionStatus, invoiceNumber and settleAmount, but not the merchant's refId, nor its
transactionType or refTransId (AnetApiSchema.xsd transactionSummaryType): what a refund refunds is
told only by its details.

Each request's refId says which list and page it asks for ("batches", "b:<batchId>:<page>",
"u:<page>"), so that reading an answer needs nothing but the answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# A charge of the period's last day settles in a batch a day or so later.
SETTLEMENT_LAG = timedelta(days=2)
MAX_SPAN = timedelta(days=31)
PAGE = 1000


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def batches_request(since: datetime, until: datetime) -> tuple[str, dict]:
    last = min(until + SETTLEMENT_LAG, since + MAX_SPAN)
    return "getSettledBatchListRequest", {
        "refId": "batches",
        "includeStatistics": False,
        "firstSettlementDate": _when(since),
        "lastSettlementDate": _when(last),
    }


def transactions_request(ref: str) -> tuple[str, dict]:
    """The page a refId names: a settled batch's ("b:ID:N") or the open batch's ("u:N")."""
    parts = ref.split(":")
    page = {"limit": str(PAGE), "offset": parts[-1]}
    sorting = {"orderBy": "submitTimeUTC", "orderDescending": False}
    if parts[0] == "b":
        return "getTransactionListRequest", {"refId": ref, "batchId": parts[1],
                                             "sorting": sorting, "paging": page}  # fmt: skip
    return "getUnsettledTransactionListRequest", {"refId": ref, "sorting": sorting, "paging": page}


def next_page(ref: str, listed: int, total: int) -> str | None:
    """The refId of the page after this one, where there is one."""
    parts = ref.split(":")
    page = int(parts[-1])
    if listed == 0 or page * PAGE >= total:
        return None
    return ":".join([*parts[:-1], str(page + 1)])
