"""The shop's forms. Every one carries a CSRF token (Flask-WTF), with or without CSRFProtect."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from koudai_flask.i18n import lazy_gettext as _l


class AddToCartForm(FlaskForm):
    # Labels of our own: a field without one asks wtforms' gettext, which makes Flask-WTF
    # read wtforms' message catalog from disk once per request.
    sku = StringField(_l("SKU"), validators=[DataRequired(), Length(max=64)])
    quantity = IntegerField(
        _l("Quantity"), default=1, validators=[DataRequired(), NumberRange(min=1, max=99)]
    )


class CartUpdateForm(FlaskForm):
    sku = HiddenField(validators=[DataRequired(), Length(max=64)])
    quantity = IntegerField(validators=[NumberRange(min=0, max=99)])


class CheckoutForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    address_id = HiddenField()
    name = StringField(_l("Recipient"), validators=[Optional(), Length(max=60)])
    phone = StringField(_l("Phone"), validators=[Optional(), Regexp(r"^\+?[0-9 -]{5,20}$")])
    province = StringField(_l("Province"), validators=[Optional(), Length(max=40)])
    city = StringField(_l("City"), validators=[Optional(), Length(max=40)])
    district = StringField(_l("District"), validators=[Optional(), Length(max=40)])
    street = StringField(_l("Street address"), validators=[Optional(), Length(max=200)])
    postcode = StringField(_l("Postcode"), validators=[Optional(), Length(max=12)])
    save_address = BooleanField(_l("Save to my address book"), default=True)
    note = TextAreaField(_l("Note to the seller"), validators=[Optional(), Length(max=500)])


class PayForm(FlaskForm):
    provider = RadioField(_l("Pay with"), validators=[DataRequired()], choices=[])


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class LoginForm(FlaskForm):
    login = StringField(_l("Email or mobile number"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class RegisterForm(FlaskForm):
    login = StringField(_l("Email or mobile number"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[Optional(), Length(max=120)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=8, max=200)])


class ResetRequestForm(FlaskForm):
    login = StringField(_l("Email or mobile number"), validators=[DataRequired(), Length(max=254)])


class ResetForm(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(min=8, max=200)]
    )
