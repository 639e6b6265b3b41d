"""Turning a cart into an order: shipping fee (by the address's province), address,
marketing (special prices, full reductions, a coupon) and a token against double submits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from koudai_flask.errors import ValidationError
from koudai_flask.models import Order
from koudai_flask.services import cart, freight, orders
from koudai_flask.services.transaction import current_session

SHOP_CHANNEL = "web"  # the channel of the orders this shop places


def place_order(
    *,
    items: dict[str, int],
    address: dict[str, Any],
    token: str,
    customer_id: int | None = None,
    note: str = "",
    coupon_code: str | None = None,
) -> Order:
    """Place the own shop's order for ``items``; the same ``token`` gives the same order.

    The checkout page renders a fresh token; submitting the page twice (a double tap, a
    reload) returns the first order instead of a second one. The order is priced by the
    marketing plugins in its own transaction; a coupon that cannot be used raises
    ``marketing.CouponRefused`` and places nothing.
    """
    if not token:
        raise ValidationError("the checkout form has no token; reload the page")
    province = freight.province_of(address.get("province"))
    priced = cart.view(items, customer_id=customer_id, coupon_code=coupon_code, province=province)
    if not priced.lines:
        raise ValidationError("your cart is empty")
    if priced.undeliverable:
        titles = ", ".join(priced.undeliverable)
        raise ValidationError(
            f"{titles}: not delivered to {province}",
            reason="not_delivered",
            detail={"titles": list(priced.undeliverable), "province": province},
        )
    if not priced.purchasable:
        problem = next(line for line in priced.lines if line.problem is not None)
        raise ValidationError(
            f"{problem.sku.product.title}: not enough stock or not on sale",
            reason="cart_unavailable",
        )
    # Two transactions on purpose: ``place`` resolves a concurrent double submit itself,
    # which it can only do as the outermost unit of work. Emptying the cart may then
    # happen twice; that is harmless.
    order = orders.place(
        channel=SHOP_CHANNEL,
        lines=[{"sku": code, "quantity": quantity} for code, quantity in items.items()],
        customer=customer_id,
        address=address,
        note=note,
        shipping_fee=priced.shipping_fee,
        idempotency_key=f"checkout:{token}",
        marketing=True,
        coupon_code=coupon_code,
    )
    if customer_id is not None:
        cart.remove(customer_id, list(items))
    return order


def order_for_token(token: str) -> Order | None:
    """The order a checkout token already placed, if any (a second submit of the page)."""
    if not token:
        return None
    return current_session().scalar(
        select(Order).where(Order.idempotency_key == f"checkout:{token}")
    )
