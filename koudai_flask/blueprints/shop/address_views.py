"""The buyer's address book (收货地址): the saved addresses the checkout offers, added,
changed, made the default and deleted here. Only the buyer's own addresses: another's id is
404, and every change is a POST with the session's CSRF token."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from koudai_flask import identity
from koudai_flask.blueprints.field_messages import field_errors
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.blueprints.shop.common import expired_page, login_redirect, own_button
from koudai_flask.blueprints.shop.forms import ActionForm, AddressForm, typed_address
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import customers

BOOK = "koudai/shop/account/addresses.html"
EDIT = "koudai/shop/account/address_form.html"


def register(bp: Blueprint) -> None:
    @bp.get("/account/addresses")
    def addresses_page() -> ResponseReturnValue:
        customer = identity.current_customer()
        if customer is None:
            return login_redirect()
        return _book(customer.id, AddressForm(formdata=None))

    @bp.post("/account/addresses")
    def address_add() -> ResponseReturnValue:
        customer = identity.current_customer()
        if customer is None:
            return login_redirect()
        form = AddressForm()
        if not form.validate():
            return expired_page(), 400
        try:
            customers.add_address(
                customer.id, **typed_address(form), is_default=bool(form.is_default.data)
            )
        except ValidationError as exc:
            return _book(customer.id, form, exc), 422
        flash(_k("Address saved."), "success")
        return redirect(url_for(".addresses_page"), 303)

    @bp.route("/account/addresses/<int:address_id>/edit", methods=["GET", "POST"])
    def address_edit(address_id: int) -> ResponseReturnValue:
        customer = identity.current_customer()
        if customer is None:
            return login_redirect()
        address = _own(customer.id, address_id)
        if request.method == "GET":
            form = AddressForm(formdata=None, obj=address)
            return render_template(EDIT, form=form, address=address)
        form = AddressForm()
        if not form.validate():
            return expired_page(), 400
        try:
            customers.update_address(
                customer.id,
                address_id,
                **typed_address(form),
                is_default=bool(form.is_default.data),
            )
        except ValidationError as exc:
            errors = _errors(form, exc)
            return render_template(EDIT, form=form, address=address, field_errors=errors), 422
        flash(_k("Address saved."), "success")
        return redirect(url_for(".addresses_page"), 303)

    @bp.post("/account/addresses/<int:address_id>/default")
    def address_default(address_id: int) -> ResponseReturnValue:
        return _act(address_id, customers.set_default_address, _k("Default address changed."))

    @bp.post("/account/addresses/<int:address_id>/delete")
    def address_delete(address_id: int) -> ResponseReturnValue:
        return _act(address_id, customers.delete_address, _k("Address deleted."))


def _own(customer_id: int, address_id: int) -> Any:
    try:
        return customers.get_address(customer_id, address_id)
    except NotFound:
        abort(404)


def _act(address_id: int, change: Any, done: str) -> ResponseReturnValue:
    """A button's POST on one of the buyer's addresses: checked, done, back to the book."""
    return own_button(
        lambda customer_id: change(customer_id, address_id), done, url_for(".addresses_page")
    )


def _book(customer_id: int, form: AddressForm, refused: ValidationError | None = None) -> str:
    return render_template(
        BOOK,
        addresses=customers.addresses(customer_id),
        form=form,
        action=ActionForm(),
        error=refusal_text(refused) if refused is not None else None,
        field_errors=_errors(form, refused) if refused is not None else {},
    )


def _errors(form: AddressForm, refused: ValidationError) -> dict[str, str]:
    return field_errors(refused.messages, {field.name: str(field.label.text) for field in form})
