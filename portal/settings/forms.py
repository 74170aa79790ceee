"""The policy page's forms (their fields are the page's inputs: on, days, minutes, autovoid)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField


class StrictModeForm(FlaskForm):
    on = HiddenField()


class RetryScheduleForm(FlaskForm):
    days = StringField()


class JanitorForm(FlaskForm):
    minutes = StringField()
    autovoid = BooleanField()
