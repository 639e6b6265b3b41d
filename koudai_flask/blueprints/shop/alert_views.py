"""Back-in-stock alerts (到货提醒) for the buyer: asked for from a product page's sold-out
SKUs, listed and taken back on their own page. Signed-in buyers only, every change a POST
with the session's CSRF token; another buyer's alert is 404."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from koudai_flask import identity
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.blueprints.shop.common import expired_page, login_redirect, own_button
from koudai_flask.blueprints.shop.forms import ActionForm
from koudai_flask.errors import ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Product, Sku
from koudai_flask.services import stock_alerts
from koudai_flask.services.transaction import current_session

PAGE = "koudai/shop/account/alerts.html"


def register(bp: Blueprint) -> None:
    @bp.post("/alerts")
    def alert_add() -> ResponseReturnValue:
        code = request.form.get("sku", "").strip()[:64]
        product = _product_of(code)
        back = url_for(".product", slug=product.slug)
        customer = identity.current_customer()
        if customer is None:  # signed in, they ask again from the product's page
            return login_redirect(back)
        if not ActionForm().validate():
            return expired_page(), 400
        try:
            stock_alerts.subscribe(customer.id, code)
        except ValidationError as exc:
            flash(refusal_text(exc), "error")
            return redirect(back, 303)
        flash(_k("We will tell you when it is back."), "success")
        return redirect(back, 303)

    @bp.get("/account/alerts")
    def alerts_page() -> ResponseReturnValue:
        customer = identity.current_customer()
        if customer is None:
            return login_redirect()
        return render_template(
            PAGE, alerts=stock_alerts.for_customer(customer.id), action=ActionForm()
        )

    @bp.post("/account/alerts/<int:alert_id>/delete")
    def alert_delete(alert_id: int) -> ResponseReturnValue:
        return own_button(
            lambda customer_id: stock_alerts.cancel(customer_id, alert_id),
            _k("Alert removed."),
            url_for(".alerts_page"),
        )


def _product_of(code: str) -> Product:
    """The product page a SKU's alert goes back to; an unknown SKU is 404."""
    product = current_session().scalar(
        select(Product).join(Sku, Sku.product_id == Product.id).where(Sku.code == code)
    )
    if not code or product is None:
        abort(404)
    return product
