"""Changing an unshipped order's address from its page (``orders.edit``): the buyer wrote to
the shop with where the parcel should go instead."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from koudai_flask.blueprints.address_change import NOT_CHANGEABLE, answer_change
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.admin.order_views import order_or_404
from koudai_flask.blueprints.shop.forms import AddressFields, typed_address
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import backoffice, order_address

PAGE = "koudai/admin/order_address.html"


def register(bp: Blueprint) -> None:
    @bp.route("/orders/<number>/address", methods=["GET", "POST"])
    @staff_required("orders.edit")
    def order_address_edit(number: str) -> ResponseReturnValue:
        order = order_or_404(number, "orders.edit")
        back = url_for(".order_detail", number=number)
        if request.method == "GET":
            if not order_address.changeable(order):
                flash(str(NOT_CHANGEABLE), "error")
                return redirect(back, 303)
            return render_template(PAGE, order=order, form=AddressFields(data=order.address))
        checked_form()
        form = AddressFields()
        return answer_change(
            form,
            lambda: backoffice.change_address(actor_id(), number, typed_address(form)),
            lambda errors: render_template(PAGE, order=order, form=form, field_errors=errors),
            back=back,
            done=_k("Address changed."),
        )
