"""Imports every model once, so that SQLAlchemy and Alembic see the whole schema."""

from portal.accounts.models import Account, PaymentMethod
from portal.api.models import ApiRequest, ApiToken
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.gateways.models import Gateway
from portal.imports.models import ImportBatch
from portal.invoices.models import Invoice
from portal.once import FormToken
from portal.payments.models import Allocation, Payment
from portal.reconciliation.models import ReconciliationLine, ReconciliationReport
from portal.runs.models import PaymentRun, RunChunk, RunSkip
from portal.settings.models import Setting
from portal.transactions.models import PaymentTransaction
from portal.webhooks.models import WebhookEvent

__all__ = [
    "Account", "Allocation", "ApiRequest", "ApiToken", "AuditEvent", "FormToken", "Gateway", "ImportBatch", "Invoice", "Payment",
    "PaymentMethod",
    "PaymentRun", "PaymentTransaction", "ReconciliationLine", "ReconciliationReport", "RunChunk",
    "RunSkip", "Setting", "User", "WebhookEvent",
]  # fmt: skip
