"""Carts: a signed-in buyer's in the database, a guest's as a plain dict the view keeps.

Both are ``{sku_code: quantity}`` to the rest of the code; :func:`view` prices one against
the catalog, the ledger and the marketing plugins (limited-time prices, full reductions, a
coupon), with a stock message per line and the savings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql

from koudai_flask.config import config_value
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import CartLine, Sku, StockLevel
from koudai_flask.models.base import utcnow
from koudai_flask.services import freight, inventory, marketing
from koudai_flask.services.transaction import current_session, unit_of_work, upsert_dialect

MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLineView:
    sku: Sku
    quantity: int
    available: int
    special_price: int | None = None  # a limited-time price below the catalog's

    @property
    def unit_price(self) -> int:
        return self.sku.price if self.special_price is None else self.special_price

    @property
    def list_price(self) -> int:
        return self.sku.price

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity

    @property
    def saving(self) -> int:
        return (self.list_price - self.unit_price) * self.quantity

    @property
    def on_sale(self) -> bool:
        return self.sku.active and self.sku.product.status == "active"

    @property
    def problem(self) -> str | None:
        """Why this line cannot be bought as it is: "unavailable", "sold_out", "short"."""
        if not self.on_sale:
            return "unavailable"
        if self.available <= 0:
            return "sold_out"
        if self.quantity > self.available:
            return "short"
        return None


@dataclass(frozen=True)
class CartView:
    lines: list[CartLineView]
    subtotal: int
    shipping_fee: int
    quote: marketing.Quote | None = None
    undeliverable: tuple[str, ...] = ()  # titles of goods not sent to the address's province
    province: str | None = None  # the province the shipping fee is for; None: not known yet
    by_province: bool = False  # the fee or the delivery depends on the province

    @property
    def discount(self) -> int:
        """The order-level discount (full reduction, coupon) off the subtotal."""
        return self.quote.discount if self.quote is not None else 0

    @property
    def discounts(self) -> list[marketing.Adjustment]:
        return self.quote.order_adjustments() if self.quote is not None else []

    @property
    def saving(self) -> int:
        """Everything saved against catalog prices: special prices and discounts."""
        return self.discount + sum(line.saving for line in self.lines)

    @property
    def coupon_code(self) -> str | None:
        return self.quote.coupon_code if self.quote is not None else None

    @property
    def coupon_error(self) -> str | None:
        return self.quote.coupon_error if self.quote is not None else None

    @property
    def total(self) -> int:
        return self.subtotal + self.shipping_fee - self.discount

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def purchasable(self) -> bool:
        return bool(self.lines) and all(line.problem is None for line in self.lines)

    def items(self) -> dict[str, int]:
        return {line.sku.code: line.quantity for line in self.lines}


def view(
    items: dict[str, int],
    *,
    customer_id: int | None = None,
    coupon_code: str | None = None,
    province: str | None = None,
) -> CartView:
    """Price ``items`` against today's catalog, stock and marketing; unknown SKUs are dropped.

    A coupon that cannot be used is left out, with the reason in ``coupon_error``. The
    shipping fee is worked out on the goods after special prices, before order discounts,
    for ``province`` (``freight.province_of`` of the address; None: each shipping
    template's default figures); goods not delivered there are in ``undeliverable``.
    """
    session = current_session()
    if not items:
        return CartView(lines=[], subtotal=0, shipping_fee=0)
    skus = {s.code: s for s in session.scalars(select(Sku).where(Sku.code.in_(items)))}
    location = inventory.get_location(session)
    levels = {
        level.sku_id: level.available
        for level in session.scalars(
            select(StockLevel).where(
                StockLevel.sku_id.in_([s.id for s in skus.values()]),
                StockLevel.location_id == location.id,
            )
        )
    }
    lines = [
        CartLineView(sku=skus[code], quantity=quantity, available=levels.get(skus[code].id, 0))
        for code, quantity in items.items()
        if code in skus
    ]
    on_sale = [line for line in lines if line.problem != "unavailable"]
    quote = None
    if on_sale and config_value("MARKETING_PLUGINS") != []:
        quote = marketing.quote_lines(
            session,
            [
                marketing.PricingLine(
                    sku_id=line.sku.id,
                    sku_code=line.sku.code,
                    quantity=line.quantity,
                    list_price=line.sku.price,
                    unit_price=line.sku.price,
                )
                for line in on_sale
            ],
            customer_id=customer_id,
            coupon_code=coupon_code,
        )
        prices = {line.sku_code: line.unit_price for line in quote.lines}
        lines = [
            replace(line, special_price=prices[line.sku.code])
            if prices.get(line.sku.code, line.sku.price) < line.sku.price
            else line
            for line in lines
        ]
    bought = [line for line in lines if line.problem != "unavailable"]
    subtotal = sum(line.line_total for line in bought)
    shipping = freight.quote(
        [freight.Goods(line.sku.id, line.quantity, line.line_total) for line in bought], province
    )
    return CartView(
        lines=lines,
        subtotal=subtotal,
        shipping_fee=shipping.fee,
        quote=quote,
        undeliverable=shipping.undeliverable,
        province=province,
        by_province=shipping.by_province,
    )


def check_line(sku_code: str, quantity: int) -> Sku:
    """The SKU to put in a cart, or a ValidationError/NotFound saying why not."""
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not (0 <= quantity <= MAX_QUANTITY)
    ):
        raise ValidationError(f"quantity must be between 0 and {MAX_QUANTITY}")
    sku = inventory.get_sku(current_session(), sku_code)
    if quantity and (not sku.active or sku.product.status != "active"):
        raise ValidationError(f"{sku.product.title} is not on sale", reason="not_on_sale")
    return sku


def add_to(items: dict[str, int], sku_code: str, quantity: int) -> dict[str, int]:
    """A new guest cart with ``quantity`` more of ``sku_code``."""
    check_line(sku_code, quantity)
    merged = dict(items)
    merged[sku_code] = min(MAX_QUANTITY, merged.get(sku_code, 0) + quantity)
    return merged


def with_quantity(items: dict[str, int], sku_code: str, quantity: int) -> dict[str, int]:
    """A new guest cart where ``sku_code`` has ``quantity`` (0 removes it)."""
    check_line(sku_code, quantity)
    changed = dict(items)
    if quantity == 0:
        changed.pop(sku_code, None)
    else:
        changed[sku_code] = quantity
    return changed


# -- a signed-in buyer's cart ----------------------------------------------------------------


def stored(customer_id: int) -> dict[str, int]:
    rows = current_session().execute(
        select(Sku.code, CartLine.quantity)
        .join(Sku, Sku.id == CartLine.sku_id)
        .where(CartLine.customer_id == customer_id)
        .order_by(CartLine.id)
    )
    return {code: quantity for code, quantity in rows}


def _line(customer_id: int, sku: Sku) -> CartLine | None:
    return current_session().scalar(
        select(CartLine).where(CartLine.customer_id == customer_id, CartLine.sku_id == sku.id)
    )


def add(customer_id: int, sku_code: str, quantity: int) -> dict[str, int]:
    """Add ``quantity`` of a SKU to the buyer's stored cart (at most ``MAX_QUANTITY``).

    On PostgreSQL and SQLite one upsert adds it: two adds at once (a double tap on "add to
    cart") both count, and neither fails on the line the other just made.
    """
    if quantity <= 0:
        raise ValidationError("quantity must be at least 1")
    with unit_of_work() as session:
        sku = check_line(sku_code, quantity)
        module = upsert_dialect(session)
        if module is not None:
            # PostgreSQL's least(); SQLite's min() of two values is the same scalar function.
            smaller = func.least if module is postgresql else func.min
            statement = module.insert(CartLine).values(
                customer_id=customer_id, sku_id=sku.id, quantity=min(quantity, MAX_QUANTITY)
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=[CartLine.customer_id, CartLine.sku_id],
                    set_={
                        "quantity": smaller(
                            CartLine.quantity + statement.excluded.quantity, MAX_QUANTITY
                        ),
                        "updated_at": utcnow(),
                    },
                )
            )
        else:
            line = _line(customer_id, sku)
            if line is None:
                session.add(CartLine(customer_id=customer_id, sku_id=sku.id, quantity=quantity))
            else:
                line.quantity = min(MAX_QUANTITY, line.quantity + quantity)
            session.flush()
    return stored(customer_id)


def set_quantity(customer_id: int, sku_code: str, quantity: int) -> dict[str, int]:
    with unit_of_work() as session:
        sku = check_line(sku_code, quantity)
        line = _line(customer_id, sku)
        if quantity == 0:
            if line is not None:
                session.delete(line)
        elif line is None:
            session.add(CartLine(customer_id=customer_id, sku_id=sku.id, quantity=quantity))
        else:
            line.quantity = quantity
        session.flush()
    return stored(customer_id)


def merge(customer_id: int, items: dict[str, int]) -> dict[str, int]:
    """Fold a guest cart into the buyer's cart on login; unknown SKUs are skipped."""
    with unit_of_work():
        for code, quantity in items.items():
            try:
                add(customer_id, code, quantity)
            except (NotFound, ValidationError):
                continue
    return stored(customer_id)


def remove(customer_id: int, sku_codes: list[str]) -> None:
    with unit_of_work() as session:
        ids = select(Sku.id).where(Sku.code.in_(sku_codes))
        session.execute(
            delete(CartLine).where(CartLine.customer_id == customer_id, CartLine.sku_id.in_(ids))
        )
