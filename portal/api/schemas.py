"""The API's request and response shapes (marshmallow), from which the OpenAPI description is made.

Amounts are strings of plain decimals beside their currency ("1999.99", "USD"), never floats;
times are UTC ISO 8601 with a Z.
"""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma
from marshmallow import fields, validate

from portal.money import MINOR_UNITS, Money

AMOUNT = validate.Regexp(r"^\d{1,14}(\.\d{1,4})?$", error="a plain decimal such as 1999.99")
CURRENCY = validate.OneOf(sorted(MINOR_UNITS), error="a currency Settle knows (ISO 4217)")
EXTERNAL_ID = [validate.Length(min=1, max=80)]


class Utc(fields.DateTime):
    """A naive UTC time from the database, written with its Z."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _money(amount_attr: str, currency_attr: str = "currency"):
    return fields.Function(
        serialize=lambda obj: None if getattr(obj, amount_attr) is None
        else Money(getattr(obj, amount_attr), getattr(obj, currency_attr)).plain(),
        metadata={"type": "string", "example": "1999.99"},
    )  # fmt: skip


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE  # a misspelt field is an error, not silently ignored


class ListArgs(Strict):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(metadata={"description": "next_cursor of the previous page"})


class InvoiceListArgs(ListArgs):
    external_id = fields.String()
    state = fields.String(validate=validate.OneOf(
        ["open", "partially-paid", "paid", "action-required", "cancelled"]))  # fmt: skip


class Page(ma.Schema):
    next_cursor = fields.String(allow_none=True, metadata={
        "description": "Give it as cursor for the next page; null on the last page"})  # fmt: skip


# Invoices --------------------------------------------------------------------------------------


class InvoiceIn(Strict):
    external_id = fields.String(required=True, validate=EXTERNAL_ID)
    account_external_id = fields.String(required=True, validate=EXTERNAL_ID)
    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    currency = fields.String(required=True, validate=CURRENCY)
    total = fields.String(required=True, validate=AMOUNT)
    due_date = fields.Date(required=True)
    posted = fields.Boolean(load_default=True)


class InvoiceChange(Strict):
    number = fields.String(validate=validate.Length(min=1, max=40))
    currency = fields.String(validate=CURRENCY)
    total = fields.String(validate=AMOUNT)
    due_date = fields.Date()
    posted = fields.Boolean()

    @ma.validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ma.ValidationError("give at least one field to change", "_schema")


class Invoice(ma.Schema):
    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    number = fields.String()
    account_id = fields.Integer()
    account_external_id = fields.Function(lambda i: i.account.external_id, allow_none=True)
    currency = fields.String()
    total = _money("total")
    balance = _money("balance")
    due_date = fields.Date()
    posted = fields.Boolean()
    state = fields.String()
    corrective_action = fields.String(allow_none=True)
    cancelled_at = Utc(allow_none=True)
    created_at = Utc()


class InvoicePage(Page):
    data = fields.List(fields.Nested(Invoice))


# Accounts and payment methods ------------------------------------------------------------------


class AccountIn(Strict):
    external_id = fields.String(required=True, validate=EXTERNAL_ID)
    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class Account(ma.Schema):
    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    number = fields.String()
    name = fields.String()


class PaymentMethodIn(Strict):
    external_id = fields.String(required=True, validate=EXTERNAL_ID)
    account_external_id = fields.String(required=True, validate=EXTERNAL_ID)
    gateway = fields.String(required=True, metadata={"description": "the gateway's name in Settle"})
    token = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "the gateway's customer / payment method token; never a card number"})  # fmt: skip
    brand = fields.String(required=True, validate=validate.Length(min=1, max=40))
    last4 = fields.String(required=True, validate=validate.Regexp(r"^\d{4}$", error="4 digits"))
    exp_month = fields.Integer(validate=validate.Range(1, 12))
    exp_year = fields.Integer(validate=validate.Range(2000, 2100))
    is_default = fields.Boolean(load_default=True)


class PaymentMethod(ma.Schema):
    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    account_id = fields.Integer()
    gateway = fields.Function(lambda m: m.gateway.name)
    brand = fields.String()
    last4 = fields.String()
    exp_month = fields.Integer(allow_none=True)
    exp_year = fields.Integer(allow_none=True)
    is_default = fields.Boolean()
    state = fields.String()


# Transactions and payments (read only) ---------------------------------------------------------


class Transaction(ma.Schema):
    id = fields.Integer()
    operation = fields.String()
    invoice_id = fields.Integer()
    run_id = fields.Integer(allow_none=True)
    parent_id = fields.Integer(allow_none=True)
    gateway = fields.Function(lambda t: t.gateway.name)
    amount = _money("amount")
    currency = fields.String()
    status = fields.String()
    provider_code = fields.String(allow_none=True)
    provider_message = fields.String(allow_none=True)
    provider_reference = fields.String(allow_none=True)
    idempotency_key = fields.String()
    requested_at = Utc()
    answered_at = Utc(allow_none=True)
    finalization = fields.String(allow_none=True)


class TransactionPage(Page):
    data = fields.List(fields.Nested(Transaction))


class Allocation(ma.Schema):
    id = fields.Integer()
    invoice_id = fields.Integer()
    amount = fields.Function(serialize=lambda a: Money(a.amount, a.payment.currency).plain(),
                           metadata={"type": "string"})  # fmt: skip
    created_at = Utc()
    unallocated_at = Utc(allow_none=True)


class Payment(ma.Schema):
    id = fields.Integer()
    account_id = fields.Integer()
    amount = _money("amount")
    currency = fields.String()
    method = fields.String()
    reference = fields.String(allow_none=True)
    received_on = fields.Date()
    transaction_id = fields.Integer(allow_none=True)
    allocations = fields.List(fields.Nested(Allocation))


class PaymentPage(Page):
    data = fields.List(fields.Nested(Payment))
