"""Forms of the supervisor's allocation actions."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class UnallocateForm(FlaskForm):
    reason = TextAreaField(
        "Why take this allocation back",
        validators=[
            DataRequired(message="Write why the allocation is taken back"),
            Length(max=500),
        ],
    )
    # The one-time token (portal.once): a double click unallocates once.
    once = HiddenField()


class AllocateForm(FlaskForm):
    invoice_id = SelectField("Invoice", coerce=int, validate_choice=True)
    amount = StringField("Amount", validators=[DataRequired(message="Give the amount to allocate")])
    once = HiddenField()
