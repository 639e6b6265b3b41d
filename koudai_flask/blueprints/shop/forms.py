"""The shop's forms. Every one carries a CSRF token (Flask-WTF), with or without CSRFProtect."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from flask import current_app, g, session
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf, validate_csrf
from marshmallow import Schema
from werkzeug.local import LocalProxy
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.csrf.core import CSRF
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.schemas import Length as MarshmallowLength
from koudai_flask.schemas.orders import AddressInput, PlaceOrderInput
from koudai_flask.services.order_states import MAX_REASON

_SIGNED = "koudai_signed_csrf"  # app.extensions key: (secret, session token) -> (time, signed)
_MAX_SIGNED = 10_000
REUSE_SIGNED_FOR = 60.0  # seconds, and at most a sixtieth of WTF_CSRF_TIME_LIMIT


def signed_token(secret: Any, field: str, time_limit: float | None) -> str:
    """This session's signed CSRF token, signed afresh only if the last is over a minute old.

    Flask-WTF signs the session's token once per request that renders a form, which costs
    more than building the form. A signed token carries the time it was signed and stays
    valid for ``WTF_CSRF_TIME_LIMIT``; handing the same session one signed less than a
    minute ago (or a sixtieth of a shorter limit) only shortens its life by as much.
    """
    token: str | None = g.get(field)
    if token is not None:
        return token
    reuse_for = REUSE_SIGNED_FOR if time_limit is None else min(REUSE_SIGNED_FOR, time_limit / 60)
    signed_tokens: dict[tuple[Any, str], tuple[float, str]] = current_app.extensions.setdefault(
        _SIGNED, {}
    )
    raw = session.get(field)
    known = signed_tokens.get((secret, raw)) if raw else None
    if known is not None and time.monotonic() - known[0] < reuse_for:
        setattr(g, field, known[1])  # where generate_csrf keeps it for the request
        return known[1]
    token = generate_csrf(secret, field)
    if len(signed_tokens) >= _MAX_SIGNED:
        signed_tokens.clear()
    signed_tokens[(secret, session[field])] = (time.monotonic(), token)
    return token


class FormToken(NamedTuple):
    """A shop form's CSRF field as a template renders it: its name and signed value."""

    field: str
    value: str


def form_token() -> FormToken | None:
    """This session's CSRF field for a page's form, or None when CSRF is turned off.

    The same name and token a shop form renders, without building the form (see
    :func:`lazy_form`).
    """
    config = current_app.config
    if not config.get("WTF_CSRF_ENABLED", True):
        return None
    field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    secret = config.get("WTF_CSRF_SECRET_KEY", current_app.secret_key)
    return FormToken(field, signed_token(secret, field, config.get("WTF_CSRF_TIME_LIMIT", 3600)))


def lazy_form(build: Callable[[], FlaskForm]) -> Any:
    """A form for a page's template, built only when the template first touches it.

    Building a form costs more than rendering the page around it; a shop template that
    needs only the token and the chosen values takes them from :func:`form_token` and the
    view, and a host's own template that uses ``form`` gets the form itself.
    """
    built: list[FlaskForm] = []

    def get() -> FlaskForm:
        if not built:
            built.append(build())
        return built[0]

    return LocalProxy(get)


class RecentlySignedCSRF(CSRF):
    """Flask-WTF's form protection, with the signed token of :func:`signed_token`."""

    def setup_form(self, form: Any) -> Any:
        self.meta = form.meta
        return super().setup_form(form)

    def generate_csrf_token(self, csrf_token_field: Any) -> str:
        meta = self.meta
        return signed_token(meta.csrf_secret, meta.csrf_field_name, meta.csrf_time_limit)

    def validate_csrf_token(self, form: Any, field: Any) -> None:
        if g.get("csrf_valid", False):  # the host's CSRFProtect checked this request already
            return
        meta = self.meta
        validate_csrf(field.data, meta.csrf_secret, meta.csrf_time_limit, meta.csrf_field_name)


class ShopForm(FlaskForm):
    """A Flask-WTF form whose CSRF token is the session's recently signed one."""

    class Meta(FlaskForm.Meta):
        csrf_class = RecentlySignedCSRF


class AddToCartForm(ShopForm):
    # Labels of our own: a field without one asks wtforms' gettext, which makes Flask-WTF
    # read wtforms' message catalog from disk once per request.
    sku = StringField(_l("SKU"), validators=[DataRequired(), Length(max=64)])
    quantity = IntegerField(
        _l("Quantity"), default=1, validators=[DataRequired(), NumberRange(min=1, max=99)]
    )


class CartUpdateForm(ShopForm):
    sku = HiddenField(validators=[DataRequired(), Length(max=64)])
    quantity = IntegerField(validators=[NumberRange(min=0, max=99)])


def _most(schema: type[Schema], name: str) -> int | None:
    """The longest value the service's schema takes for field ``name``."""
    for check in schema._declared_fields[name].validators:
        if isinstance(check, MarshmallowLength) and check.max is not None:
            return check.max
    return None


def _address(name: str, autocomplete: str, most: int | None = None) -> dict[str, Any]:
    """A new-address field's attributes: what a phone's autofill fills it with, and the
    address schema's length (or ``most``), so the page stops where the service would refuse."""
    return {"autocomplete": autocomplete, "maxlength": most or _most(AddressInput, name)}


class AddressFields(ShopForm):
    """An address's fields, checked by the address schema, whose refusals the page shows
    beside each field."""

    name = StringField(_l("Recipient"), render_kw=_address("name", "shipping name"))
    # The address schema checks the phone by a pattern of 5 to 20 characters, not by Length.
    phone = TelField(_l("Phone"), render_kw=_address("phone", "shipping tel", most=20))
    province = StringField(_l("Province"), render_kw=_address("province", "address-level1"))
    city = StringField(_l("City"), render_kw=_address("city", "address-level2"))
    district = StringField(_l("District"), render_kw=_address("district", "address-level3"))
    street = StringField(
        _l("Street address"), render_kw=_address("street", "shipping street-address")
    )
    postcode = StringField(
        _l("Postcode"),
        render_kw={**_address("postcode", "shipping postal-code"), "inputmode": "numeric"},
    )


class CheckoutForm(AddressFields):
    """The new address and the note are checked by the services' schemas (the address's
    and the order's); a saved address chosen instead leaves the address fields unread."""

    token = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    address_id = HiddenField()
    save_address = BooleanField(_l("Save to my address book"), default=True)
    note = TextAreaField(
        _l("Note to the seller"), render_kw={"maxlength": _most(PlaceOrderInput, "note")}
    )


class AddressForm(AddressFields):
    """An address of the buyer's address book, new or changed."""

    is_default = BooleanField(_l("Make it my default address"))


ADDRESS_FIELDS = ("name", "phone", "province", "city", "district", "street", "postcode")


def typed_address(form: AddressFields) -> dict[str, str]:
    """The address as typed in ``form``'s fields, each stripped."""
    return {name: (getattr(form, name).data or "").strip() for name in ADDRESS_FIELDS}


class PayForm(ShopForm):
    provider = RadioField(_l("Pay with"), validators=[DataRequired()], choices=[])


# The buyer's words after the chosen reason's label, both kept within the service's bound.
_DETAILS_MOST = MAX_REASON - 40

# Why a buyer wants the money back, as mobile shops offer them; "other" asks for words.
REFUND_REASONS = (
    ("changed_mind", _l("I no longer want it")),
    ("not_as_described", _l("Not as described")),
    ("damaged", _l("Damaged or faulty")),
    ("missing", _l("Items missing from the parcel")),
    ("not_received", _l("Not received")),
    ("other", _l("Other")),
)


class RefundRequestForm(ShopForm):
    reason = RadioField(
        _l("Why"),
        validators=[DataRequired()],
        choices=[SelectChoice(value, label) for value, label in REFUND_REASONS],
    )
    returning = RadioField(
        _l("The goods"),
        default="",
        choices=[
            SelectChoice("", _l("Refund only: keep them, or they never came")),
            SelectChoice("1", _l("Return them and get a refund")),
        ],
        validate_choice=True,
    )
    details = TextAreaField(
        _l("More about it (optional)"),
        validators=[
            Optional(),
            Length(max=_DETAILS_MOST, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"maxlength": _DETAILS_MOST},
    )


class ActionForm(ShopForm):
    """A button that changes something: only the CSRF token."""


# An email or a phone number: the password manager's user name, typed without capitals.
_LOGIN = {"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}


class LoginForm(ShopForm):
    login = StringField(
        _l("Email or mobile number"),
        validators=[DataRequired(), Length(max=254)],
        render_kw=_LOGIN,
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


class RegisterForm(ShopForm):
    login = StringField(
        _l("Email or mobile number"),
        validators=[DataRequired(), Length(max=254)],
        render_kw=_LOGIN,
    )
    name = StringField(
        _l("Full name"),
        validators=[Optional(), Length(max=120)],
        render_kw={"autocomplete": "name"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(min=8, max=200)],
        render_kw={"autocomplete": "new-password"},
    )


class ResetRequestForm(ShopForm):
    login = StringField(
        _l("Email or mobile number"),
        validators=[DataRequired(), Length(max=254)],
        render_kw=_LOGIN,
    )


class ResetForm(ShopForm):
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(min=8, max=200)],
        render_kw={"autocomplete": "new-password"},
    )
