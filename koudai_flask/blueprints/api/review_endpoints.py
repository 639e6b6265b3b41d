"""Review endpoints: buyer reviews (评价) newest first, the shop's reply, hiding and showing.

Reviews are of the own shop's orders: a key limited to channels without the shop's own sees
none of them (an empty list, 404 for one)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import select

from koudai_flask.blueprints.api.access import principal, requires
from koudai_flask.errors import NotFound
from koudai_flask.models import Order, ProductReview, Sku
from koudai_flask.schemas.api_customers import ID
from koudai_flask.schemas.api_reviews import (
    ReplyIn,
    ReviewListArgs,
    ReviewOut,
    ReviewPage,
    ReviewStatusIn,
)
from koudai_flask.services import reviews
from koudai_flask.services.checkout import SHOP_CHANNEL
from koudai_flask.services.platform_reads import decode_cursor, encode_cursor
from koudai_flask.services.transaction import current_session

_ROW = (
    select(ProductReview, Sku.code, Order.number)
    .join(Sku, Sku.id == ProductReview.sku_id)
    .join(Order, Order.id == ProductReview.order_id)
)


def _out(review: ProductReview, sku: str, number: str) -> dict[str, Any]:
    return {
        "id": review.id,
        "product_id": review.product_id,
        "sku": sku,
        "variant": review.variant,
        "number": number,
        "customer_id": review.customer_id,
        "rating": review.rating,
        "body": review.body,
        "author": review.author,
        "status": review.status,
        "reply": review.reply,
        "replied_at": review.replied_at,
        "created_at": review.created_at,
    }


def _sees_reviews() -> bool:
    return principal().sees_channel(SHOP_CHANNEL)


def _one(review_id: int) -> dict[str, Any]:
    row = current_session().execute(_ROW.where(ProductReview.id == review_id)).first()
    if row is None or not _sees_reviews():
        raise NotFound(f"review {review_id} not found")
    return _out(*row)


def register(bp: Blueprint) -> None:
    @bp.route("/reviews", methods=["GET"])
    @requires("customers.view")
    @bp.arguments(ReviewListArgs, location="query")
    @bp.response(200, ReviewPage)
    def reviews_list(args: dict[str, Any]) -> Any:
        """Buyer reviews, newest first: of a product, a SKU, at most some stars, shown or
        hidden."""
        if not _sees_reviews():
            return {"items": [], "next_cursor": None}
        query = _ROW
        if args["product_id"] is not None:
            query = query.where(ProductReview.product_id == args["product_id"])
        if args["sku"] is not None:
            query = query.where(Sku.code == args["sku"])
        if args["rating_max"] is not None:
            query = query.where(ProductReview.rating <= args["rating_max"])
        if args["status"] is not None:
            query = query.where(ProductReview.status == args["status"])
        before = decode_cursor(args["cursor"])
        if before is not None:
            query = query.where(ProductReview.id < before)
        limit = args["limit"]
        rows = (
            current_session()
            .execute(query.order_by(ProductReview.id.desc()).limit(limit + 1))
            .all()
        )
        items = [_out(*row) for row in rows[:limit]]
        more = len(rows) > limit
        return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more else None}

    @bp.route(f"/reviews/<{ID}:review_id>", methods=["GET"])
    @requires("customers.view")
    @bp.response(200, ReviewOut)
    def review_read(review_id: int) -> Any:
        """One review."""
        return _one(review_id)

    @bp.route(f"/reviews/<{ID}:review_id>/reply", methods=["PUT"])
    @requires("customers.edit")
    @bp.arguments(ReplyIn)
    @bp.response(200, ReviewOut)
    def review_reply_api(data: dict[str, Any], review_id: int) -> Any:
        """The shop's reply under a review (replaces an earlier one; empty removes it)."""
        _one(review_id)
        reviews.reply(principal().user_id, review_id, data["reply"])
        return _one(review_id)

    @bp.route(f"/reviews/<{ID}:review_id>/status", methods=["PUT"])
    @requires("customers.edit")
    @bp.arguments(ReviewStatusIn)
    @bp.response(200, ReviewOut)
    def review_status_api(data: dict[str, Any], review_id: int) -> Any:
        """Hide a review (off the product's page and its average) or show it again."""
        _one(review_id)
        reviews.set_status(principal().user_id, review_id, data["status"])
        return _one(review_id)
