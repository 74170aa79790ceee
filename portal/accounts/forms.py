"""The supervisor's choice of gateway for a payment method."""

from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import DataRequired


class AssignGatewayForm(FlaskForm):
    gateway_id = IntegerField("Gateway", validators=[DataRequired(message="Choose a gateway")])
