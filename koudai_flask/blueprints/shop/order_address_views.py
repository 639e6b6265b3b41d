"""The buyer sends their own order elsewhere (修改地址): while it is unpaid, or paid and not
yet being packed, from the order's page, typing an address or taking one of their saved
ones. Only the buyer's own orders of this shop (another's is 404); every change a POST with
the session's CSRF token."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from koudai_flask import identity
from koudai_flask.blueprints.address_change import NOT_CHANGEABLE, answer_change
from koudai_flask.blueprints.shop.common import expired_page
from koudai_flask.blueprints.shop.forms import ActionForm, AddressFields, typed_address
from koudai_flask.blueprints.shop.order_views import after_sales_here, own_order
from koudai_flask.errors import NotFound
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Order
from koudai_flask.services import customers, order_address

PAGE = "koudai/shop/order_address.html"


def register(bp: Blueprint) -> None:
    @bp.route("/orders/<number>/address", methods=["GET", "POST"])
    def order_address_edit(number: str) -> ResponseReturnValue:
        order = own_order(number)
        back = url_for(".order_detail", number=number)
        if not after_sales_here(order):
            abort(404)
        if request.method == "GET":
            if not order_address.changeable(order, by_buyer=True):
                flash(str(NOT_CHANGEABLE), "error")
                return redirect(back, 303)
            return _page(order, AddressFields(data=order.address))
        form = AddressFields()
        if not ActionForm().validate():
            return expired_page(), 400
        return answer_change(
            form,
            lambda: order_address.change_address(
                number, _chosen(form), actor="buyer", by_buyer=True
            ),
            lambda errors: _page(order, form, errors),
            back=back,
            done=_k("The order goes to the new address."),
        )


def _chosen(form: AddressFields) -> dict[str, Any]:
    """One of the buyer's saved addresses (``address_id``), else the address typed."""
    raw = request.form.get("address_id", "")
    customer = identity.current_customer()
    if not raw:
        return typed_address(form)
    if customer is None or not raw.isdigit():
        abort(404)
    try:
        return customers.get_address(customer.id, int(raw)).as_dict()
    except NotFound:
        abort(404)


def _page(order: Order, form: AddressFields, errors: dict[str, str] | None = None) -> str:
    customer = identity.current_customer()
    return render_template(
        PAGE,
        order=order,
        form=form,
        action=ActionForm(),
        saved=customers.addresses(customer.id) if customer is not None else [],
        field_errors=errors or {},
    )
