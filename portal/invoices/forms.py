"""The supervisor's reset of an invoice's retry schedule."""

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class ResetRetriesForm(FlaskForm):
    reason = StringField(
        "Why reset the retries",
        validators=[
            DataRequired(message="Write why the retries are reset"),
            Length(min=5, max=500),
        ],
    )
