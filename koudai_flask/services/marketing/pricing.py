"""Limited-time prices (限时折扣): a SKU's special price between two times.

The product page shows the catalog price struck through beside the special one; the cart
and checkout charge the special price (a line adjustment). When two windows of one SKU
overlap, the lower price wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import LimitedPrice, Sku
from koudai_flask.models.base import utcnow
from koudai_flask.services import inventory
from koudai_flask.services.marketing.common import (
    MAX_FEN,
    audit,
    check_name,
    check_window,
    require_manager,
    switch,
    whole,
)
from koudai_flask.services.marketing.plugins import (
    LINE,
    LINE_PRICES,
    Adjustment,
    CartContext,
    MarketingPlugin,
)
from koudai_flask.services.transaction import current_session, unit_of_work


class SpecialPrice(NamedTuple):
    price: int
    ends_at: datetime
    name: str


def special_prices(
    session: Session, sku_ids: Iterable[int], now: datetime | None = None
) -> dict[int, SpecialPrice]:
    """The running special price of each of ``sku_ids`` that has one (the lowest)."""
    ids = list(sku_ids)
    if not ids:
        return {}
    now = now or utcnow()
    rows = session.execute(
        select(LimitedPrice.sku_id, LimitedPrice.price, LimitedPrice.ends_at, LimitedPrice.name)
        .where(
            LimitedPrice.sku_id.in_(ids),
            LimitedPrice.active.is_(True),
            LimitedPrice.starts_at <= now,
            LimitedPrice.ends_at > now,
        )
        .order_by(LimitedPrice.price.desc(), LimitedPrice.id)
    )
    # Highest first, so the lowest price of a SKU is written last and wins.
    return {sku_id: SpecialPrice(price, ends_at, name) for sku_id, price, ends_at, name in rows}


class LimitedPricePlugin(MarketingPlugin):
    name = "limited_price"
    stage = LINE_PRICES

    def price_adjustments(self, context: CartContext) -> list[Adjustment]:
        found = special_prices(
            context.session, (line.sku_id for line in context.lines), context.now
        )
        adjustments = []
        for line in context.lines:
            special = found.get(line.sku_id)
            if special is None or special.price >= line.unit_price:
                continue
            adjustments.append(
                Adjustment(
                    plugin=self.name,
                    scope=LINE,
                    amount=(line.unit_price - special.price) * line.quantity,
                    description=special.name or _k("Limited-time price"),
                    sku_code=line.sku_code,
                    unit_price=special.price,
                )
            )
        return adjustments


# -- the back office -------------------------------------------------------------------------


def _snapshot(row: LimitedPrice) -> dict[str, Any]:
    return {
        "sku_id": row.sku_id,
        "name": row.name,
        "price": row.price,
        "starts_at": row.starts_at.isoformat(),
        "ends_at": row.ends_at.isoformat(),
        "active": row.active,
    }


def get_limited_price(price_id: int) -> LimitedPrice:
    row = current_session().get(LimitedPrice, price_id)
    if row is None:
        raise NotFound(f"unknown limited-time price {price_id}")
    return row


def save_limited_price(
    user_id: str | int,
    price_id: int | None,
    *,
    sku_code: str,
    price: int,
    starts_at: datetime,
    ends_at: datetime,
    name: str = "",
) -> LimitedPrice:
    """Create (``price_id`` None) or change a limited-time price; below the catalog price."""
    with unit_of_work() as session:
        require_manager(user_id)
        check_window(starts_at, ends_at, required=True)
        checked_name = check_name(name, required=False)
        sku: Sku = inventory.get_sku(session, sku_code)
        amount = whole(price, "price", minimum=0, maximum=MAX_FEN)
        if amount >= sku.price:
            message = _k("The special price must be below the SKU's price.")
            raise ValidationError(message, {"price": [message]})
        row = LimitedPrice(active=True) if price_id is None else get_limited_price(price_id)
        before = None if price_id is None else _snapshot(row)
        row.sku_id = sku.id
        row.name = checked_name
        row.price = amount
        row.starts_at = starts_at
        row.ends_at = ends_at
        session.add(row)
        session.flush()
        action = "marketing.price_create" if before is None else "marketing.price_update"
        audit(user_id, action, "limited_price", row.id, before, _snapshot(row))
        return row


def set_limited_price_active(user_id: str | int, price_id: int, active: bool) -> LimitedPrice:
    with unit_of_work():
        require_manager(user_id)
        row = get_limited_price(price_id)
        switch(
            user_id,
            row,
            active,
            action="marketing.price_active",
            kind="limited_price",
            snapshot=_snapshot,
        )
        return row


def limited_prices() -> list[tuple[LimitedPrice, Sku]]:
    rows = current_session().execute(
        select(LimitedPrice, Sku)
        .join(Sku, Sku.id == LimitedPrice.sku_id)
        .order_by(LimitedPrice.id.desc())
    )
    return [(row, sku) for row, sku in rows]
