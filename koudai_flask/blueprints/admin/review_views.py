"""Buyer reviews (评价) in the back office: every review, newest first, the low ones on
their own filter; staff with ``customers.edit`` hide one (it leaves the product's page and
average), show it again, and reply under it. Seeing them needs ``customers.view``."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.common import page_number
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Order, Product, ProductReview
from koudai_flask.services import reviews
from koudai_flask.services.transaction import current_session

PER_PAGE = 30
LOW = 2  # stars at most: the reviews service reads first


def _back() -> ResponseReturnValue:
    """Back to the list as it was filtered: the form's ``back``, only ever that list."""
    home = url_for(".reviews_list")
    back = request.form.get("back", "")
    if not back.startswith(home) or "//" in back or "\\" in back:
        back = home
    return redirect(back, 303)


def register(bp: Blueprint) -> None:
    @bp.get("/reviews")
    @staff_required("customers.view")
    def reviews_list() -> ResponseReturnValue:
        status = request.args.get("status", "")
        low = request.args.get("low") == "1"
        conditions = []
        if status in ("published", "hidden"):
            conditions.append(ProductReview.status == status)
        if low:
            conditions.append(ProductReview.rating <= LOW)
        session, page = current_session(), page_number()
        total = session.scalar(select(func.count(ProductReview.id)).where(*conditions)) or 0
        rows = session.execute(
            select(ProductReview, Product.title, Product.slug, Order.number)
            .join(Product, Product.id == ProductReview.product_id)
            .join(Order, Order.id == ProductReview.order_id)
            .where(*conditions)
            .order_by(ProductReview.id.desc())
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        ).all()
        return render_template(
            "koudai/admin/reviews.html",
            rows=rows,
            status=status,
            low=low,
            page=page,
            pages=max(1, -(-total // PER_PAGE)),
            most=reviews.MAX_TEXT,
        )

    @bp.post("/reviews/<int:review_id>/status")
    @staff_required("customers.edit")
    def review_status(review_id: int) -> ResponseReturnValue:
        checked_form()
        status = request.form.get("status", "")
        if status not in ("published", "hidden"):
            abort(400)
        try:
            reviews.set_status(actor_id(), review_id, status)
        except NotFound:
            abort(404)
        flash(_k("Review hidden.") if status == "hidden" else _k("Review shown."), "success")
        return _back()

    @bp.post("/reviews/<int:review_id>/reply")
    @staff_required("customers.edit")
    def review_reply(review_id: int) -> ResponseReturnValue:
        checked_form()
        try:
            reviews.reply(actor_id(), review_id, request.form.get("reply", ""))
        except NotFound:
            abort(404)
        except ValidationError as exc:
            flash(refusal_text(exc), "error")
            return _back()
        flash(_k("Reply saved."), "success")
        return _back()
