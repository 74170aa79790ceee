"""The form that starts a payment run."""

from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField
from wtforms.validators import DataRequired, NumberRange, Optional


class RunForm(FlaskForm):
    due_on = DateField(
        "Invoices due on or before",
        validators=[DataRequired(message="Give a date as YYYY-MM-DD")],
        format="%Y-%m-%d",
    )
    currency = SelectField("Currency", choices=[], validators=[Optional()])
    gateway_id = SelectField("Gateway", choices=[], coerce=int, validators=[Optional()])
    account_id = SelectField("Account", choices=[], coerce=int, validators=[Optional()])
    invoice_limit = IntegerField(
        "At most this many invoices",
        validators=[
            Optional(),
            NumberRange(min=1, max=10_000_000, message="The cap must be from 1 to 10,000,000"),
        ],
    )
