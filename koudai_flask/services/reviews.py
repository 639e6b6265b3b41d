"""Buyer reviews (评价): stars and words on an item received, shown on its product's page.

A buyer reviews each line of their own shop order once it has arrived (``delivered`` or
``completed``): one to five stars and up to 500 characters, published at once under their
name masked (``李*``). The product keeps the count and the sum of the stars of its published
reviews in the same transaction, so its page shows the average without reading them.
Staff with ``customers.edit`` hide a review (it leaves the page and the average) or show it
again, and reply to it; each change is audited. Refused with nothing written: another
buyer's order or a marketplace's (``NotFound``: it does not exist for them), an item not
received yet (``review_not_received``), a second review of one line (``review_exists``),
stars outside 1..5 (``review_rating``), a text over 500 characters (``review_too_long``).
A published review is a ``review.created`` outbox event (the webhook of that name; staff
who answer reviews are e-mailed one of one or two stars, ``staff_alerts.on_low_review``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Customer, Order, OrderLine, Product, ProductReview, Sku
from koudai_flask.models.base import utcnow
from koudai_flask.services import outbox, staff
from koudai_flask.services.checkout import SHOP_CHANNEL
from koudai_flask.services.transaction import current_session, unit_of_work

RECEIVED = ("delivered", "completed")
MAX_TEXT = 500
PER_PAGE = 20


@dataclass(frozen=True)
class Summary:
    count: int
    average: float | None  # one decimal; None without reviews


def summary(review_count: int, rating_total: int) -> Summary:
    """The product's figures as a page shows them."""
    if not review_count:
        return Summary(0, None)
    return Summary(review_count, round(rating_total / review_count, 1))


def mask(name: str | None) -> str:
    """How a review names its buyer: the first character and a star (``李*``)."""
    name = (name or "").strip()
    return f"{name[0]}*" if name else ""


def reviewed_lines(order_id: int) -> dict[int, ProductReview]:
    """Order line id → its review, for an order's page."""
    rows = current_session().scalars(
        select(ProductReview).where(ProductReview.order_id == order_id)
    )
    return {review.order_line_id: review for review in rows}


def can_review(order: Order) -> bool:
    return order.channel == SHOP_CHANNEL and order.status in RECEIVED


def write(customer_id: int, number: str, line_id: int, rating: int, text: str) -> ProductReview:
    """Publish the buyer's review of one line of their order."""
    body = _checked(rating, text)
    with unit_of_work() as session:
        order = session.scalar(select(Order).where(Order.number == number))
        if order is None or order.customer_id != customer_id or order.channel != SHOP_CHANNEL:
            raise NotFound(f"order {number} not found")
        line = session.get(OrderLine, line_id)
        if line is None or line.order_id != order.id:
            raise NotFound(f"order {number} has no line {line_id}")
        if order.status not in RECEIVED:
            raise ValidationError(
                f"order {number} has not arrived yet ({order.status})",
                reason="review_not_received",
                detail={"number": number},
            )
        exists = select(ProductReview.id).where(ProductReview.order_line_id == line.id)
        if session.scalar(exists) is not None:
            raise _exists(number, line.title)
        product_id = session.scalar(select(Sku.product_id).where(Sku.id == line.sku_id))
        assert product_id is not None
        customer = session.get(Customer, customer_id)
        review = ProductReview(
            product_id=product_id,
            sku_id=line.sku_id,
            order_id=order.id,
            order_line_id=line.id,
            customer_id=customer_id,
            rating=rating,
            body=body,
            variant=line.variant,
            author=mask(customer.name if customer is not None else None),
        )
        session.add(review)
        try:
            session.flush()
        except IntegrityError:  # the same line reviewed at the same moment elsewhere
            raise _exists(number, line.title) from None
        _count(session, product_id, 1, rating)
        product = session.get(Product, product_id)
        assert product is not None
        outbox.record(
            session,
            "review.created",
            {
                "id": review.id,
                "product_id": product_id,
                "product": product.title,
                "slug": product.slug,
                "sku": line.sku_code,
                "variant": line.variant,
                "number": number,
                "customer_id": customer_id,
                "rating": rating,
                "body": body,
                "author": review.author,
            },
        )
        return review


def for_product(product_id: int, page: int = 1) -> tuple[list[ProductReview], int]:
    """A product's published reviews, newest first, and how many there are."""
    session = current_session()
    published = (ProductReview.product_id == product_id) & (ProductReview.status == "published")
    total = session.scalar(select(func.count()).where(published)) or 0
    rows = session.scalars(
        select(ProductReview)
        .where(published)
        .order_by(ProductReview.id.desc())
        .limit(PER_PAGE)
        .offset((max(page, 1) - 1) * PER_PAGE)
    ).all()
    return list(rows), int(total)


def set_status(user_id: str, review_id: int, status: str) -> ProductReview:
    """Hide a review (``hidden``) or show it again (``published``)."""
    staff.require(user_id, "customers.edit")
    if status not in ("published", "hidden"):
        raise ValidationError(f"status is published or hidden, not {status!r}")
    with unit_of_work() as session:
        review = _review(session, review_id)
        if review.status == status:
            return review
        before = review.status
        review.status = status
        sign = 1 if status == "published" else -1
        _count(session, review.product_id, sign, sign * review.rating)
        staff.audit(
            f"staff:{user_id}",
            "review.status",
            "review",
            str(review.id),
            {"status": before},
            {"status": status},
        )
        return review


def reply(user_id: str, review_id: int, text: str) -> ProductReview:
    """The shop's reply under a review (replying again replaces it; empty removes it)."""
    staff.require(user_id, "customers.edit")
    body = text.strip()
    if len(body) > MAX_TEXT:
        raise _too_long()
    with unit_of_work() as session:
        review = _review(session, review_id)
        before = review.reply
        review.reply = body
        review.replied_at = utcnow() if body else None
        staff.audit(
            f"staff:{user_id}",
            "review.reply",
            "review",
            str(review.id),
            {"reply": before},
            {"reply": body},
        )
        return review


def _checked(rating: int, text: str) -> str:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError(f"stars are 1 to 5, not {rating!r}", reason="review_rating")
    body = text.strip()
    if len(body) > MAX_TEXT:
        raise _too_long()
    return body


def _too_long() -> ValidationError:
    return ValidationError(
        f"a review is at most {MAX_TEXT} characters",
        reason="review_too_long",
        detail={"most": MAX_TEXT},
    )


def _exists(number: str, title: str) -> ValidationError:
    return ValidationError(
        f"{title} of order {number} is reviewed already",
        reason="review_exists",
        detail={"item": title},
    )


def _review(session: Session, review_id: int) -> ProductReview:
    review = session.get(ProductReview, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    return review


def _count(session: Session, product_id: int, reviews: int, stars: int) -> None:
    """Move the product's figures in the caller's transaction, as one UPDATE."""
    session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(
            review_count=Product.review_count + reviews,
            rating_total=Product.rating_total + stars,
        )
    )


__all__ = ["MAX_TEXT", "Summary", "can_review", "for_product", "reply", "set_status", "write"]
