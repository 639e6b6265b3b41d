"""The marketing plugin interface that checkout consults, and the registry of plugins.

A plugin looks at a cart (:class:`CartContext`) and proposes :class:`Adjustment` s: a lower
unit price for a line (``scope="line"``, a limited-time price) or an amount off the order
(``scope="order"``, a promotion, a coupon). Plugins run in ``stage`` order, each seeing the
cart as the earlier ones left it, so a coupon's minimum spend is measured on the goods after
special prices and its percentage on what is left after a full reduction.

When the order is placed, each plugin whose adjustments it kept gets ``redeem`` inside the
placing transaction (a coupon takes one of its uses there, or refuses and nothing is
written); when the order is cancelled, ``release`` in the cancelling transaction. Both run
exactly once per order because the order's own state change is a conditional UPDATE.

Third-party plugins register a :class:`MarketingPlugin` subclass under the entry-point
group ``koudai_flask.marketing``; one that cannot be loaded is logged and left out.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from typing import ClassVar

from sqlalchemy.orm import Session

from koudai_flask.errors import ValidationError

log = logging.getLogger("koudai_flask.marketing")

ENTRY_POINT_GROUP = "koudai_flask.marketing"

LINE = "line"  # a lower unit price for one SKU's line
ORDER = "order"  # an amount off the whole order

# Stages: line prices first, then order discounts, then coupons.
LINE_PRICES = 10
ORDER_DISCOUNTS = 20
COUPONS = 30


class CouponRefused(ValidationError):
    """A coupon code that cannot be used for this cart; ``reason`` says why in one word.

    Reasons: ``unknown``, ``not_started``, ``expired``, ``used_up``, ``sign_in``,
    ``customer_limit``, ``min_spend``, ``not_accepted``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, {"coupon_code": [message]}, reason=reason)


@dataclass(frozen=True)
class PricingLine:
    """One SKU of the cart: its catalog price and its price after line adjustments so far."""

    sku_id: int
    sku_code: str
    quantity: int
    list_price: int
    unit_price: int

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class CartContext:
    """What a plugin sees: the lines, who buys, the coupon typed, and the discount so far."""

    session: Session
    lines: tuple[PricingLine, ...]
    customer_id: int | None
    coupon_code: str | None
    now: datetime
    discount: int = 0  # the order-level discount earlier plugins granted

    @property
    def subtotal(self) -> int:
        """The goods at their current unit prices (after limited-time prices)."""
        return sum(line.line_total for line in self.lines)

    @property
    def remaining(self) -> int:
        """What is left to discount: the subtotal less the order discounts so far."""
        return self.subtotal - self.discount


@dataclass(frozen=True)
class Adjustment:
    """One saving a plugin proposes; ``amount`` is in fen over the whole line or order."""

    plugin: str
    scope: str
    amount: int
    description: str
    code: str | None = None  # the coupon code, for a coupon
    sku_code: str | None = None  # the line, for scope "line"
    unit_price: int | None = None  # the new unit price, for scope "line"
    reference: int | None = None  # the plugin's own row (a coupon's id)


@dataclass(frozen=True)
class Quote:
    """A cart priced by every plugin: its lines at their final prices and its savings."""

    lines: tuple[PricingLine, ...]
    adjustments: tuple[Adjustment, ...] = ()
    coupon_code: str | None = None
    coupon_error: str | None = None
    coupon_reason: str | None = None
    customer_id: int | None = None
    # The cart as the last plugin left it: what ``redeem`` is given when the order is placed.
    context: CartContext | None = field(default=None, compare=False, repr=False)

    @property
    def subtotal(self) -> int:
        return sum(line.line_total for line in self.lines)

    @property
    def list_subtotal(self) -> int:
        return sum(line.list_price * line.quantity for line in self.lines)

    @property
    def discount(self) -> int:
        """The order-level discount: what comes off the subtotal."""
        return sum(a.amount for a in self.adjustments if a.scope == ORDER)

    @property
    def line_savings(self) -> int:
        return sum(a.amount for a in self.adjustments if a.scope == LINE)

    @property
    def saving(self) -> int:
        """Everything the buyer saves against catalog prices."""
        return self.discount + self.line_savings

    def unit_price(self, sku_code: str) -> int:
        return next(line.unit_price for line in self.lines if line.sku_code == sku_code)

    def order_adjustments(self) -> list[Adjustment]:
        return [a for a in self.adjustments if a.scope == ORDER]


class MarketingPlugin:
    """A marketing rule checkout consults. Subclasses set ``name`` and ``stage``."""

    name: ClassVar[str] = ""
    stage: ClassVar[int] = ORDER_DISCOUNTS

    def price_adjustments(self, context: CartContext) -> list[Adjustment]:
        """The savings this plugin grants ``context``'s cart; may raise ``CouponRefused``."""
        return []

    def redeem(
        self,
        session: Session,
        order_id: int,
        adjustments: Sequence[Adjustment],
        context: CartContext,
    ) -> None:
        """Take what the order used (inside the placing transaction), or raise to refuse."""

    def release(self, session: Session, order_id: int) -> None:
        """Give back what ``order_id`` took (inside the cancelling transaction)."""


# -- the registry ----------------------------------------------------------------------------

BUILTIN_PLUGINS: dict[str, str] = {
    "limited_price": "koudai_flask.services.marketing.pricing:LimitedPricePlugin",
    "full_reduction": "koudai_flask.services.marketing.promotions:FullReductionPlugin",
    "coupon": "koudai_flask.services.marketing.coupons:CouponPlugin",
}


def _load(path: str) -> type[MarketingPlugin]:
    module, _, name = path.partition(":")
    loaded = getattr(importlib.import_module(module), name)
    if not (isinstance(loaded, type) and issubclass(loaded, MarketingPlugin)):
        raise TypeError(f"{path} is not a koudai_flask marketing plugin class")
    return loaded


@cache
def _registered() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN_PLUGINS}


@cache
def _instance(name: str) -> MarketingPlugin | None:
    path = _registered().get(name)
    if path is None:
        return None
    try:
        plugin = _load(path)()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop checkout
        log.error("marketing plugin %r cannot be loaded: %s", name, exc)
        return None
    if plugin.name != name:
        plugin.name = name  # type: ignore[misc]
    return plugin


def plugin_names() -> list[str]:
    """Every registered plugin: built in, or installed under the entry-point group."""
    return sorted(_registered())


def enabled_plugins(names: Sequence[str] | None) -> list[MarketingPlugin]:
    """The loadable plugins among ``names`` (None: all registered), in stage order."""
    chosen = plugin_names() if names is None else list(names)
    plugins = [p for p in (_instance(name) for name in chosen) if p is not None]
    return sorted(plugins, key=lambda p: (p.stage, p.name))


def get_plugin(name: str) -> MarketingPlugin | None:
    return _instance(name)


def refresh_registry() -> None:
    """Forget the cached entry points and instances (after installing a plugin package)."""
    _registered.cache_clear()
    _instance.cache_clear()


# -- pricing a cart --------------------------------------------------------------------------


def run(
    plugins: Sequence[MarketingPlugin], context: CartContext, *, strict: bool
) -> tuple[CartContext, list[Adjustment], CouponRefused | None]:
    """Apply ``plugins`` in order; returns the final context, the adjustments kept and the
    coupon refusal when ``strict`` is False (with ``strict`` it is raised)."""
    kept: list[Adjustment] = []
    refused: CouponRefused | None = None
    for plugin in plugins:
        try:
            proposed = plugin.price_adjustments(context)
        except CouponRefused as exc:
            if strict:
                raise
            refused = exc
            continue
        for adjustment in proposed:
            context, accepted = _apply(context, replace(adjustment, plugin=plugin.name))
            if accepted is not None:
                kept.append(accepted)
    if context.coupon_code and not any(a.code == context.coupon_code for a in kept):
        if refused is None:
            refused = CouponRefused("not_accepted", _not_accepted())
        if strict:
            raise refused
    return context, kept, refused


def _not_accepted() -> str:
    from koudai_flask.i18n import gettext as _k

    return _k("This coupon cannot be used for this order.")


def _apply(context: CartContext, adjustment: Adjustment) -> tuple[CartContext, Adjustment | None]:
    """Fold one adjustment into the context, keeping every figure whole and in range."""
    if adjustment.scope == LINE:
        index = next(
            (i for i, line in enumerate(context.lines) if line.sku_code == adjustment.sku_code),
            None,
        )
        price = adjustment.unit_price
        if index is None or price is None or isinstance(price, bool):
            return context, None
        line = context.lines[index]
        if not (0 <= int(price) < line.unit_price):
            return context, None
        amount = (line.unit_price - int(price)) * line.quantity
        lines = list(context.lines)
        lines[index] = replace(line, unit_price=int(price))
        return replace(context, lines=tuple(lines)), replace(
            adjustment, amount=amount, unit_price=int(price)
        )
    if adjustment.scope != ORDER or isinstance(adjustment.amount, bool):
        return context, None
    # An order never costs less than nothing: the discount stops at the subtotal.
    amount = min(int(adjustment.amount), context.remaining)
    if amount <= 0:
        return context, None
    return replace(context, discount=context.discount + amount), replace(adjustment, amount=amount)
