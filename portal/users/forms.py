"""Forms of the users page and of a user's own password."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.auth.models import Role

ROLES = [SelectChoice(r.value, r.value.capitalize()) for r in Role]


class NewUserForm(FlaskForm):
    username = StringField(
        "Username", validators=[DataRequired(message="Give a username"), Length(max=80)]
    )
    display_name = StringField("Name shown", validators=[Length(max=120)])
    role = SelectField("Role", choices=ROLES, default=Role.CLERK.value)
    password = PasswordField(
        "First password", validators=[DataRequired(message="Give a first password")]
    )


class ChangeUserForm(FlaskForm):
    role = SelectField("Role", choices=ROLES)
    active = BooleanField("Active: may log in")


class OwnPasswordForm(FlaskForm):
    current = PasswordField(
        "Current password", validators=[DataRequired(message="Give your current password")]
    )
    new = PasswordField("New password", validators=[DataRequired(message="Give a new password")])
    again = PasswordField(
        "New password again",
        validators=[DataRequired(message="Give the new password again"),
                    EqualTo("new", message="The two new passwords differ")],
    )  # fmt: skip


class ApiTokenForm(FlaskForm):
    # Its rules (given, at most 80 characters) are the token service's, said in its own words.
    name = StringField("Name")
