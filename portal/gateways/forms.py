"""The gateway form: its credential fields are the chosen plugin's required credentials."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DecimalField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

# The URL and the timeout's range are checked once, by portal.gateways.service.save_gateway.


class GatewayForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired(message="Give the gateway a name"), Length(max=120)]
    )
    base_url = StringField(
        "Base URL",
        validators=[DataRequired(message="Give the gateway's base URL"), Length(max=500)],
    )
    timeout_seconds = DecimalField(
        "Timeout (seconds)",
        places=3,
        validators=[DataRequired(message="Give a timeout in seconds")],
    )
    deadline_seconds = DecimalField(
        "Deadline (seconds)", places=3, validators=[Optional()]
    )  # empty: 120 s (at least the timeout), or the saved one
    rate_limit = DecimalField(
        "Rate limit (requests per second)", places=2, validators=[Optional()]
    )  # empty: none of its own (its calls in flight still apply)
    enabled = BooleanField("Enabled: runs may charge through it", default=True)
    resend_after_timeout = BooleanField(
        "Send a call that timed out once more, with the same key (only where the provider makes a"
        " repeated key safe)"
    )


def gateway_form(
    credential_names: tuple[str, ...], *, editing: bool, optional: tuple[str, ...] = (), **kwargs
) -> GatewayForm:
    """A form with one password field per credential; when editing, an empty field keeps the old value."""

    class Form(GatewayForm):
        pass

    for name in credential_names:
        needed = not editing and name not in optional
        validators = [DataRequired(message=f"Give the {name}")] if needed else [Optional()]
        setattr(
            Form,
            f"credential_{name}",
            PasswordField(name, validators=[*validators, Length(max=500)]),
        )
    return Form(**kwargs)


class ReviewUnmappedForm(FlaskForm):
    """Mark an unmapped code as looked at, with an optional note (what was decided)."""

    plugin = HiddenField(validators=[DataRequired()])
    code = HiddenField(validators=[DataRequired(), Length(max=40)])
    note = StringField("Note", validators=[Optional(), Length(max=500)])
