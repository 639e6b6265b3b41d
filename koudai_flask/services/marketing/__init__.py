"""Marketing: limited-time prices, full reductions (满减) and coupons, as checkout plugins.

:func:`quote` prices a cart through the enabled plugins (``KOUDAI_MARKETING_PLUGINS``);
the cart and checkout pages show it, and ``orders.place(..., marketing=True)`` prices the
order the same way inside its transaction, writes the order's discount lines and redeems
what the plugins took (:func:`apply_to_order`). Cancelling the order gives it back
(:func:`release_order`, called in ``orders.cancel``'s transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from koudai_flask.config import config_value
from koudai_flask.models import Order, OrderDiscount, Sku
from koudai_flask.models.base import utcnow
from koudai_flask.services.marketing.plugins import (
    COUPONS,
    ENTRY_POINT_GROUP,
    LINE,
    LINE_PRICES,
    ORDER,
    ORDER_DISCOUNTS,
    Adjustment,
    CartContext,
    CouponRefused,
    MarketingPlugin,
    PricingLine,
    Quote,
    enabled_plugins,
    get_plugin,
    plugin_names,
    refresh_registry,
    run,
)
from koudai_flask.services.transaction import current_session

if TYPE_CHECKING:
    from koudai_flask.services.marketing.pricing import SpecialPrice

_DISCOUNT = cast(Table, OrderDiscount.__table__)
MAX_CODE_LENGTH = 40


def normalise_code(code: str | None) -> str | None:
    """A coupon code as stored: trimmed, upper case; None when nothing was typed."""
    if code is None:
        return None
    cleaned = "".join(code.split()).upper()
    return cleaned[:MAX_CODE_LENGTH] or None


def quote_lines(
    session: Session,
    lines: Sequence[PricingLine],
    *,
    customer_id: int | None = None,
    coupon_code: str | None = None,
    now: datetime | None = None,
    strict: bool = False,
) -> Quote:
    """Price ``lines`` through the enabled plugins.

    With ``strict`` (placing an order) a coupon that cannot be used raises
    ``CouponRefused``; otherwise (showing the cart) the quote says why in ``coupon_error``
    and leaves the coupon out.
    """
    code = normalise_code(coupon_code)
    context = CartContext(
        session=session,
        lines=tuple(lines),
        customer_id=customer_id,
        coupon_code=code,
        now=now or utcnow(),
    )
    plugins = enabled_plugins(config_value("MARKETING_PLUGINS"))
    final, kept, refused = run(plugins, context, strict=strict)
    return Quote(
        lines=final.lines,
        adjustments=tuple(kept),
        coupon_code=code if refused is None else None,
        coupon_error=refused.message if refused is not None else None,
        coupon_reason=refused.reason if refused is not None else None,
        customer_id=customer_id,
        context=final,
    )


def apply_to_order(session: Session, order_id: int, quote: Quote) -> None:
    """Write ``quote``'s discount lines for the order and let each plugin redeem its part.

    Runs inside the placing transaction: a plugin that refuses (a coupon used up by a
    concurrent checkout) raises, and the whole order is rolled back with its stock holds.
    """
    if not quote.adjustments:
        return
    session.connection().execute(
        insert(_DISCOUNT),
        [
            {
                "order_id": order_id,
                "plugin": a.plugin,
                "scope": a.scope,
                "code": a.code if a.code is not None else a.sku_code,
                "description": a.description[:200],
                "amount": a.amount,
            }
            for a in quote.adjustments
        ],
    )
    assert quote.context is not None
    by_plugin: dict[str, list[Adjustment]] = {}
    for adjustment in quote.adjustments:
        by_plugin.setdefault(adjustment.plugin, []).append(adjustment)
    for name, adjustments in by_plugin.items():
        plugin = get_plugin(name)
        if plugin is not None:
            plugin.redeem(session, order_id, adjustments, quote.context)


def release_order(session: Session, order_id: int) -> None:
    """Give back what the order's plugins took; call inside the cancelling transaction."""
    names = session.scalars(
        select(OrderDiscount.plugin).where(OrderDiscount.order_id == order_id).distinct()
    ).all()
    for name in names:
        plugin = get_plugin(name)
        if plugin is not None:
            plugin.release(session, order_id)


def order_discounts(order_id: int) -> list[OrderDiscount]:
    """The order's discount lines, order-level ones last (as the summary lists them)."""
    rows = current_session().scalars(
        select(OrderDiscount).where(OrderDiscount.order_id == order_id).order_by(OrderDiscount.id)
    )
    return sorted(rows, key=lambda d: d.scope == ORDER)


def discounts_of(order: Order) -> list[OrderDiscount]:
    """``order_discounts`` for a template: ``koudai_order_discounts(order)``."""
    return order_discounts(order.id)


def special_prices_for(skus: Iterable[Sku]) -> dict[int, SpecialPrice]:
    """The running limited-time price of each SKU that has one, by SKU id: for templates
    (``koudai_special_prices(skus)``), to strike the catalog price through."""
    from koudai_flask.services.marketing.pricing import special_prices

    return special_prices(current_session(), [sku.id for sku in skus])


__all__ = [
    "COUPONS",
    "ENTRY_POINT_GROUP",
    "LINE",
    "LINE_PRICES",
    "ORDER",
    "ORDER_DISCOUNTS",
    "Adjustment",
    "CartContext",
    "CouponRefused",
    "MarketingPlugin",
    "PricingLine",
    "Quote",
    "apply_to_order",
    "discounts_of",
    "enabled_plugins",
    "normalise_code",
    "order_discounts",
    "plugin_names",
    "quote_lines",
    "refresh_registry",
    "release_order",
    "special_prices_for",
]
