"""Forms of the finalization actions."""

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal.payments.models import PaymentMethodKind


class ActionForm(FlaskForm):
    """A button that changes something: CSRF-protected, no fields."""


class ManualPaymentForm(FlaskForm):
    amount = StringField("Amount", validators=[DataRequired(message="Give the amount received")])
    currency = StringField(
        "Currency", validators=[DataRequired(message="Give the currency"), Length(min=3, max=3)]
    )
    method = SelectField(
        "Received by",
        choices=[SelectChoice(k.value) for k in PaymentMethodKind],
        default=PaymentMethodKind.GATEWAY.value,
    )
    reference = StringField("Reference", validators=[Optional(), Length(max=120)])
    received_on = DateField("Received on", validators=[Optional()], format="%Y-%m-%d")
    # The one-time token (portal.once): a resubmitted form is refused, never paid twice.
    once = HiddenField()
