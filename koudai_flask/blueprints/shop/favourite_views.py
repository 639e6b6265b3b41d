"""A buyer's favourites (收藏): kept and taken off from a product's page, listed on their own
page. Signed-in buyers only, every change a POST with the session's CSRF token; a guest is
sent to log in and back to the product."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from koudai_flask import identity
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.blueprints.shop.common import expired_page, login_redirect, own_button
from koudai_flask.blueprints.shop.forms import ActionForm
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Product
from koudai_flask.services import favourites
from koudai_flask.services.transaction import current_session

PAGE = "koudai/shop/account/favourites.html"


def register(bp: Blueprint) -> None:
    @bp.post("/favourites")
    def favourite_add() -> ResponseReturnValue:
        slug = request.form.get("product", "").strip()[:200]
        if not slug:
            abort(404)
        back = url_for(".product", slug=slug)
        customer = identity.current_customer()
        if customer is None:  # signed in, they keep it from the product's page
            return login_redirect(back)
        if not ActionForm().validate():
            return expired_page(), 400
        try:
            favourites.add(customer.id, slug)
        except NotFound:
            abort(404)
        except ValidationError as exc:
            flash(refusal_text(exc), "error")
            return redirect(back, 303)
        flash(_k("Kept in your favourites."), "success")
        return redirect(back, 303)

    @bp.post("/favourites/<int:product_id>/delete")
    def favourite_delete(product_id: int) -> ResponseReturnValue:
        """Take it off, back to the favourites page or (``back=product``) the product's."""
        back = url_for(".favourites_page")
        if request.form.get("back") == "product":
            slug = current_session().scalar(select(Product.slug).where(Product.id == product_id))
            if slug is None:
                abort(404)
            back = url_for(".product", slug=slug)

        def take_off(customer_id: int) -> None:
            if not favourites.remove(customer_id, product_id):
                raise NotFound(f"product {product_id} is not in the favourites")

        return own_button(take_off, _k("Taken off your favourites."), back)

    @bp.get("/account/favourites")
    def favourites_page() -> ResponseReturnValue:
        customer = identity.current_customer()
        if customer is None:
            return login_redirect()
        return render_template(
            PAGE, favourites=favourites.for_customer(customer.id), action=ActionForm()
        )
