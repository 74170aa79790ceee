"""Forms of the finalization actions."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from portal.payments.models import PaymentMethodKind


class ActionForm(FlaskForm):
    """A button that changes something: CSRF-protected, no fields."""


class OnceForm(FlaskForm):
    """A button that moves money or writes many rows: CSRF-protected, with the one-time token
    (portal.once) that makes a second click, or a second tab, count once."""

    once = HiddenField()


def _note(text: str | None) -> str | None:
    return (text or "")[:500] or None


class FinalizeForm(OnceForm):
    """Refund & Unlock, or unlock a charge that never left, with the clerk's optional note (kept
    to 500 characters)."""

    note = StringField(filters=[_note])


class ManualPaymentForm(FlaskForm):
    # The currency is the invoice's, shown beside the amount: a clerk cannot pay in another.
    amount = StringField("Amount", validators=[DataRequired(message="Give the amount received")])
    method = SelectField(
        "Received by",
        choices=[SelectChoice(k.value) for k in PaymentMethodKind],
        default=PaymentMethodKind.GATEWAY.value,
    )
    reference = StringField("Reference", validators=[Optional(), Length(max=120)])
    received_on = DateField(
        "Received on",
        validators=[Optional()],
        format="%Y-%m-%d",
        render_kw={"type": "date"},
    )
    # An amount other than the expected one is an explicit choice, with its reason (audited).
    amount_differs = BooleanField("The amount received differs from the expected amount")
    difference_reason = TextAreaField(
        "Why the amount differs", validators=[Optional(), Length(max=500)]
    )
    note = TextAreaField("Note for the record", validators=[Optional(), Length(max=500)])
    # The one-time token (portal.once): a resubmitted form is refused, never paid twice.
    once = HiddenField()


class CorrectBookingForm(OnceForm):
    """What the gateway holds of the charge, and why the booking changes (audited)."""

    held = StringField(
        "What the gateway holds", validators=[DataRequired(message="Give what the gateway holds")]
    )
    reason = TextAreaField(
        "Why the booking changes",
        validators=[DataRequired(message="Write why the booking changes"), Length(max=500)],
    )
    note = TextAreaField("Note for the record", validators=[Optional(), Length(max=500)])
