"""The supervisor's reset of an invoice's retry schedule, and who finalizes a locked invoice."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.ids import LARGEST


class ResetRetriesForm(FlaskForm):
    reason = StringField(
        "Why reset the retries",
        validators=[
            DataRequired(message="Write why the retries are reset"),
            Length(min=5, max=500),
        ],
    )


class OwnerForm(FlaskForm):
    """Take a locked invoice, give it back, or (a supervisor) give it to a clerk."""

    owner = IntegerField(validators=[Optional(), NumberRange(min=1, max=LARGEST)])
    # The list the clerk came from, to go back to: a path of this site only (see `back_to`).
    next = HiddenField()

    def back_to(self) -> str | None:
        target = self.next.data or ""
        return target if target.startswith("/") and not target.startswith("//") else None
