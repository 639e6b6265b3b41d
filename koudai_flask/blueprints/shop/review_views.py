"""Buyer reviews (评价) in the shop: written from the buyer's own order once it arrived, one
per item, and read on the product's own reviews page. Writing needs the signed-in buyer and
the session's CSRF token; another buyer's order is 404."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from koudai_flask import identity
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.blueprints.shop.common import expired_page, login_redirect, page_number
from koudai_flask.blueprints.shop.forms import ActionForm
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Order, OrderLine, Product
from koudai_flask.services import reviews
from koudai_flask.services.transaction import current_session


def _line_to_review(number: str, line_id: int) -> tuple[Order, OrderLine]:
    """The signed-in buyer's own shop order and one of its lines, or 404."""
    customer = identity.current_customer()
    session = current_session()
    order = session.scalar(select(Order).where(Order.number == number))
    line = session.get(OrderLine, line_id)
    if (
        customer is None
        or order is None
        or order.customer_id != customer.id
        or line is None
        or line.order_id != order.id
    ):
        abort(404)
    return order, line


def register(bp: Blueprint) -> None:
    @bp.route("/orders/<number>/review/<int:line_id>", methods=["GET", "POST"])
    def review_write(number: str, line_id: int) -> ResponseReturnValue:
        if identity.current_customer() is None:
            return login_redirect()
        order, line = _line_to_review(number, line_id)
        back = url_for(".order_detail", number=number)
        if not reviews.can_review(order) or line.id in reviews.reviewed_lines(order.id):
            return redirect(back, 303)
        form = ActionForm()
        error = None
        if request.method == "POST":
            if not form.validate():
                return expired_page(), 400
            raw = request.form.get("rating", "")
            rating = int(raw) if raw.isascii() and raw.isdigit() else 0
            try:
                reviews.write(
                    order.customer_id or 0, number, line.id, rating, request.form.get("body", "")
                )
            except NotFound:
                abort(404)
            except ValidationError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Thank you: your review is on the product's page."), "success")
                return redirect(back, 303)
        return render_template(
            "koudai/shop/review_form.html",
            order=order,
            line=line,
            form=form,
            error=error,
            rating=request.form.get("rating", ""),
            body=request.form.get("body", ""),
            most=reviews.MAX_TEXT,
        ), (400 if error else 200)

    @bp.get("/products/<slug>/reviews")
    def product_reviews(slug: str) -> ResponseReturnValue:
        product = current_session().scalar(select(Product).where(Product.slug == slug))
        if product is None or product.status != "active":
            abort(404)
        page = page_number()
        rows, total = reviews.for_product(product.id, page)
        return render_template(
            "koudai/shop/reviews.html",
            product=product,
            reviews=rows,
            total=total,
            page=page,
            pages=max(1, -(-total // reviews.PER_PAGE)),
            summary=reviews.summary(product.review_count, product.rating_total),
        )
