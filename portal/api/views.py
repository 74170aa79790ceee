"""The JSON API, /api/v1/, for the billing system that issues invoices (flask-smorest).

Every request carries a user's API token (Authorization: Bearer settle_...); the user's role is
its limit: reads need auditor, writes supervisor (as confirming an import does). Writes plan their
rows through the import's rules, so that a file and a request meet the same checks.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import wraps

from flask import g, request
from flask_smorest import Blueprint, abort
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from portal.accounts.models import Account, PaymentMethod
from portal.api import schemas, tokens
from portal.api.idempotency import DOC as IDEMPOTENCY_KEY
from portal.api.idempotency import idempotent
from portal.audit import service as audit
from portal.auth.models import Role
from portal.errors import DomainError
from portal.extensions import csrf, db
from portal.imports import service as imports
from portal.invoices import service as invoices
from portal.invoices.models import Invoice
from portal.listings.invoices import state_clause
from portal.payments.models import Payment
from portal.runs import eligibility
from portal.transactions.models import PaymentTransaction

bp = Blueprint("api", __name__, url_prefix="/api/v1",
               description="Invoices in; invoices, transactions and payments out.")  # fmt: skip
csrf.exempt(bp)  # no cookies here: a token in a header is not sent by a browser on its own


@bp.before_request
def authenticate():
    if request.endpoint == "api-docs.openapi_json":
        return None
    user = tokens.authenticate(request.headers.get("Authorization"))
    if user is None:
        abort(401, message="Give a live API token: Authorization: Bearer settle_...",
              headers={"WWW-Authenticate": 'Bearer realm="settle"'})  # fmt: skip
    g.api_user = user
    return None


def requires(role: Role):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not g.api_user.can(role):
                abort(403, message=f"This needs the {role.value} role; the token's user is "
                                   f"{g.api_user.role}.")  # fmt: skip
            return view(*args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator


# Pagination: a cursor is the last id of the page, opaque to the caller --------------------------


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode() + b"==").decode()
        kind, _, last = text.partition(":")
        if kind != "id" or not last.isdigit() or len(last) > 18:
            raise ValueError
        return int(last)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        abort(422, message="That cursor is not one Settle gave.",
              errors={"query": {"cursor": ["not a cursor Settle gave"]}})  # fmt: skip


def _page(model, query, args) -> dict:
    query = query.where(model.id > _after(args.get("cursor"))).order_by(model.id)
    rows = list(db.session.scalars(query.limit(args["limit"] + 1)))
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    cursor = None
    if more:
        cursor = base64.urlsafe_b64encode(f"id:{rows[-1].id}".encode()).decode().rstrip("=")
    return {"data": rows, "next_cursor": cursor}


# Writes through the import's rules -------------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _planned(record: str, data: dict) -> imports.Row:
    values = {"record": record, **{k: _text(v) for k, v in data.items()}}
    try:
        imports.refuse_card_numbers(values, "")
    except imports.ImportRefused as exc:
        abort(422, message=str(exc), errors={"json": {exc.field: [str(exc)]}})
    (row,) = imports.plan_rows([(1, values)]).rows
    if row.action == "refused":
        field = _field_named(row.reason or "", values)
        abort(422, message=row.reason, errors={"json": {field: [row.reason]}})
    return row


def _field_named(reason: str, values: dict) -> str:
    """The request field an import rule's reason is about: the first field it names."""
    for word in re.findall(r"\w+", reason):
        word = _ALIASES.get(word, word)
        if word in values and word not in ("record", "external_id"):
            return word
    return "_schema"


_ALIASES = {"account": "account_external_id"}


def _save(record: str, model, data: dict):
    """Plan one row through the import's rules (a refusal is a JSON 422), write it, and return
    the row's plan and the record it wrote."""
    row = _planned(record, data)
    imports.write(imports.Plan([row]))
    if row.action == "refused":  # what was planned no longer held under the row's lock
        db.session.rollback()
        field = _field_named(row.reason or "", row.values)
        abort(422, message=row.reason, errors={"json": {field: [row.reason]}})
    db.session.flush()
    return row, _by_external(model, data["external_id"])


def _by_external(model, external_id: str):
    return db.session.scalar(select(model).where(model.external_id == external_id))


@bp.route("/invoices")
@requires(Role.AUDITOR)
@bp.arguments(schemas.InvoiceListArgs, location="query")
@bp.response(200, schemas.InvoicePage)
def list_invoices(args):
    """Invoices, oldest first, a page at a time"""
    query = select(Invoice).options(joinedload(Invoice.account))
    if args.get("external_id"):
        query = query.where(Invoice.external_id == args["external_id"])
    if args.get("state"):
        query = query.where(state_clause(args["state"]))
    return _page(Invoice, query, args)


@bp.route("/invoices", methods=["POST"])
@requires(Role.SUPERVISOR)
@idempotent
@bp.arguments(schemas.InvoiceIn)
@bp.response(201, schemas.Invoice)
@bp.doc(parameters=[IDEMPOTENCY_KEY])
def create_invoice(data):
    """Create an invoice for an account known by its external id"""
    if _by_external(Invoice, data["external_id"]) is not None:
        abort(409, message=f"Invoice {data['external_id']} exists: change it with PATCH.")
    _, invoice = _save("invoice", Invoice, data)
    audit.record("invoice.created_by_api", invoice, actor=g.api_user,
                 after={k: _text(v) for k, v in data.items()})  # fmt: skip
    return invoice


def _one(model, ident: int, what: str):
    """The record, or a JSON 404 (an id past the database's integers included)."""
    found = db.session.get(model, ident) if 0 < ident < 2**63 else None
    if found is None:
        abort(404, message=f"No {what} {ident}.")
    return found


def _invoice(invoice_id: int) -> Invoice:
    return _one(Invoice, invoice_id, "invoice")


@bp.route("/invoices/<int:invoice_id>")
@requires(Role.AUDITOR)
@bp.response(200, schemas.Invoice)
def get_invoice(invoice_id):
    """One invoice"""
    return _invoice(invoice_id)


@bp.route("/invoices/<int:invoice_id>", methods=["PATCH"])
@requires(Role.SUPERVISOR)
@bp.arguments(schemas.InvoiceChange)
@bp.response(200, schemas.Invoice)
def update_invoice(data, invoice_id):
    """Change an invoice's number, amount, currency, due date or posting (amount and currency
    only before it is charged or paid)"""
    invoice = invoices.lock_invoice(_invoice(invoice_id).id)
    if invoice.external_id is None:
        abort(409, message=f"Invoice {invoice.number} was not made by the billing system "
                           "(it has no external id): change it in Settle.")  # fmt: skip
    if invoice.cancelled_at is not None:
        abort(409, message=f"Invoice {invoice.number} is cancelled.")
    current = {"external_id": invoice.external_id, "account_external_id": invoice.account.external_id,
               "number": invoice.number, "currency": invoice.currency, "total": str(invoice.total),
               "due_date": invoice.due_date, "posted": invoice.posted}  # fmt: skip
    row, _ = _save("invoice", Invoice, {**current, **data})
    audit.record("invoice.updated_by_api", invoice, actor=g.api_user,
                 before={k: _text(old) for k, (old, _) in row.changes.items()},
                 after={k: _text(new) for k, (_, new) in row.changes.items()})  # fmt: skip
    db.session.commit()
    return db.session.get(Invoice, invoice.id, populate_existing=True)


@bp.route("/invoices/<int:invoice_id>/cancel", methods=["POST"])
@requires(Role.SUPERVISOR)
@idempotent
@bp.response(200, schemas.Invoice)
@bp.doc(parameters=[IDEMPOTENCY_KEY])
def cancel_invoice(invoice_id):
    """Cancel an invoice: runs never charge it again (only one with no money on it)"""
    try:
        return eligibility.cancel(_invoice(invoice_id).id, g.api_user)
    except DomainError as exc:
        abort(409, message=str(exc))


@bp.route("/accounts", methods=["POST"])
@requires(Role.SUPERVISOR)
@idempotent
@bp.arguments(schemas.AccountIn)
@bp.response(200, schemas.Account)
@bp.doc(parameters=[IDEMPOTENCY_KEY])
def save_account(data):
    """Create or update an account by its external id"""
    row, account = _save("account", Account, data)
    if row.action != "unchanged":
        audit.record("account.saved_by_api", account, actor=g.api_user,
                     after={"action": row.action, **data})  # fmt: skip
    return account


@bp.route("/payment-methods", methods=["POST"])
@requires(Role.SUPERVISOR)
@idempotent
@bp.arguments(schemas.PaymentMethodIn)
@bp.response(200, schemas.PaymentMethod)
@bp.doc(parameters=[IDEMPOTENCY_KEY])
def save_payment_method(data):
    """Create or update a payment method by its external id: a gateway token, never card data"""
    row, method = _save("payment_method", PaymentMethod, data)
    if row.action != "unchanged":
        audit.record("payment_method.saved_by_api", method, actor=g.api_user,
                     after={"action": row.action, "gateway": data["gateway"],
                            "last4": data["last4"]})  # fmt: skip
    return method


@bp.route("/transactions")
@requires(Role.AUDITOR)
@bp.arguments(schemas.ListArgs, location="query")
@bp.response(200, schemas.TransactionPage)
def list_transactions(args):
    """Payment transactions (charges, refunds, voids, lookups), oldest first"""
    query = select(PaymentTransaction).options(joinedload(PaymentTransaction.gateway))
    return _page(PaymentTransaction, query, args)


@bp.route("/transactions/<int:txn_id>")
@requires(Role.AUDITOR)
@bp.response(200, schemas.Transaction)
def get_transaction(txn_id):
    """One payment transaction"""
    return _one(PaymentTransaction, txn_id, "transaction")


@bp.route("/payments")
@requires(Role.AUDITOR)
@bp.arguments(schemas.ListArgs, location="query")
@bp.response(200, schemas.PaymentPage)
def list_payments(args):
    """Payments with their allocations, oldest first"""
    return _page(Payment, select(Payment).options(selectinload(Payment.allocations)), args)


@bp.route("/payments/<int:payment_id>")
@requires(Role.AUDITOR)
@bp.response(200, schemas.Payment)
def get_payment(payment_id):
    """One payment with its allocations"""
    return _one(Payment, payment_id, "payment")
