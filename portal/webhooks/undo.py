"""What a webhook tells about an undo (a void, a refund, or a lookup that reverses, as Adyen's
reversal): it finishes the Refund & Unlock that waited for it, or, when it says an undo Settle
took as done did not happen after all, reopens the charge so that no run charges the customer
again before a clerk has looked."""

from __future__ import annotations

from portal.gateways.webhooks import Notice
from portal.statuses import GatewayStatus
from portal.transactions import confirmations, lookups
from portal.transactions.models import Operation, PaymentTransaction


def about(notice: Notice, txn: PaymentTransaction) -> bool:
    """Whether an event is about this transaction's own operation. A void or refund event is also
    about a lookup that reverses the charge: that provider's undo is Settle's lookup."""
    if notice.operation == txn.operation:
        return True
    return (
        txn.operation == Operation.LOOKUP
        and notice.operation in lookups.UNDOES
        and not lookups.lookup_is_read_only(txn)
    )


def finish(txn: PaymentTransaction, event_id: str) -> None:
    """After an undo's confirmation was written: the Refund & Unlock that waited for it, if every
    open charge of the invoice is now given back (committed there)."""
    if lookups.is_undo(txn) and txn.gateway_status is GatewayStatus.SUCCESS:
        note = f"Finished when the gateway confirmed #{txn.id} (webhook event {event_id})"
        confirmations.finish_confirmed_undo(txn.parent_id, note)
