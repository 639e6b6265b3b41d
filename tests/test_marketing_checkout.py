"""Marketing at checkout: limited-time prices, full reductions and coupons, on both backends.

Every order here goes through ``orders.place(..., marketing=True)``, as the shop's checkout
does: the pricing, the coupon's use and the order are one transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from koudai_flask.errors import InvalidTransition, OutOfStock, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import (
    Coupon,
    CouponCustomerUse,
    CouponRedemption,
    LimitedPrice,
    Order,
    OrderDiscount,
    Promotion,
)
from koudai_flask.models.base import utcnow
from koudai_flask.services import cart, catalog, checkout, customers, inventory, order_clock, orders
from koudai_flask.services import marketing as mk
from koudai_flask.services.marketing import plugins as registry
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.services_only

ADDRESS = {"name": "李雷", "phone": "13800138000", "street": "文三路 100 号"}


def session() -> Any:
    return get_state().session


def add(row: Any) -> Any:
    session().add(row)
    session().commit()
    return row


def coupon(code: str = "SAVE10", **rules: Any) -> Coupon:
    values: dict[str, Any] = {"name": "Ten off", "kind": "fixed", "value": 1000, "used": 0}
    values.update(rules)
    return add(Coupon(code=code, **values))


def fresh(model: Any, row_id: int) -> Any:
    session().expire_all()
    return session().get(model, row_id)


def buy(sku: str = "SHIRT-W", quantity: int = 1, **kwargs: Any) -> Order:
    return orders.place(
        channel="web",
        lines=[{"sku": sku, "quantity": quantity}],
        address=ADDRESS,
        marketing=True,
        **kwargs,
    )


def count(model: Any) -> int:
    return int(session().scalar(select(func.count()).select_from(model)))


# -- limited-time prices ---------------------------------------------------------------------


def test_a_limited_price_is_charged_in_the_cart_and_the_order(app, shirt):
    now = utcnow()
    sku = inventory.get_sku(session(), "SHIRT-W")
    add(
        LimitedPrice(
            sku_id=sku.id,
            name="双十一",
            price=9900,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1),
        )
    )
    priced = cart.view({"SHIRT-W": 2, "SHIRT-B": 1})
    white = next(line for line in priced.lines if line.sku.code == "SHIRT-W")
    assert (white.list_price, white.unit_price, white.saving) == (12900, 9900, 6000)
    assert priced.subtotal == 2 * 9900 + 13900
    assert priced.saving == 6000

    order = buy(quantity=2)
    assert [(line.sku_code, line.unit_price) for line in order.lines] == [("SHIRT-W", 9900)]
    assert (order.subtotal, order.discount, order.total) == (19800, 0, 19800)
    discounts = mk.order_discounts(order.id)
    assert [(d.plugin, d.scope, d.code, d.amount, d.description) for d in discounts] == [
        ("limited_price", "line", "SHIRT-W", 6000, "双十一")
    ]


def test_a_limited_price_outside_its_window_or_inactive_is_ignored(app, shirt):
    now = utcnow()
    sku = inventory.get_sku(session(), "SHIRT-W")
    add(
        LimitedPrice(
            sku_id=sku.id,
            price=5000,
            starts_at=now + timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
        )
    )
    add(
        LimitedPrice(
            sku_id=sku.id,
            price=6000,
            starts_at=now - timedelta(hours=2),
            ends_at=now - timedelta(hours=1),
        )
    )
    add(
        LimitedPrice(
            sku_id=sku.id,
            price=7000,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1),
            active=False,
        )
    )
    add(
        LimitedPrice(
            sku_id=sku.id,
            price=11000,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1),
        )
    )
    add(
        LimitedPrice(
            sku_id=sku.id,
            price=10000,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1),
        )
    )
    order = buy()
    assert order.lines[0].unit_price == 10000  # the lowest running price
    assert order.total == 10000


def test_without_marketing_place_charges_the_catalog_price(app, shirt):
    now = utcnow()
    sku = inventory.get_sku(session(), "SHIRT-W")
    add(
        LimitedPrice(
            sku_id=sku.id,
            price=9900,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1),
        )
    )
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    assert (order.subtotal, order.discount, order.total) == (12900, 0, 12900)
    assert count(OrderDiscount) == 0
    with pytest.raises(ValidationError):
        orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}], coupon_code="X1")


# -- full reduction --------------------------------------------------------------------------


def test_full_reduction_takes_the_best_tier_of_the_best_promotion(app, shirt):
    add(
        Promotion(
            name="满减",
            tiers=[{"threshold": 20000, "off": 2000}, {"threshold": 40000, "off": 6000}],
        )
    )
    add(Promotion(name="店庆", tiers=[{"threshold": 25000, "off": 3000}]))
    add(Promotion(name="ended", tiers=[{"threshold": 100, "off": 90000}], active=False))
    assert buy(quantity=1).discount == 0  # 129.00 reaches no tier
    order = buy(quantity=2)  # 258.00: 20 off or 30 off -> 30
    assert (order.subtotal, order.discount, order.total) == (25800, 3000, 22800)
    order = buy(quantity=4)  # 516.00: 60 off
    assert order.discount == 6000
    assert [(d.plugin, d.scope, d.amount) for d in mk.order_discounts(order.id)] == [
        ("full_reduction", "order", 6000)
    ]
    assert mk.order_discounts(order.id)[0].description.startswith("满减: ")


# -- coupons ---------------------------------------------------------------------------------


def test_a_fixed_coupon_after_a_full_reduction(app, shirt):
    add(Promotion(name="满减", tiers=[{"threshold": 20000, "off": 2000}]))
    c = coupon(min_spend=20000, total_limit=5)
    priced = cart.view({"SHIRT-W": 2}, coupon_code=" save10 ")
    assert (priced.subtotal, priced.discount, priced.coupon_code) == (25800, 3000, "SAVE10")
    order = buy(quantity=2, coupon_code="save10")
    assert (order.subtotal, order.discount, order.total) == (25800, 3000, 22800 + 0)
    assert [(d.plugin, d.code, d.amount) for d in mk.order_discounts(order.id)] == [
        ("full_reduction", None, 2000),
        ("coupon", "SAVE10", 1000),
    ]
    assert fresh(Coupon, c.id).used == 1
    redemption = session().scalar(select(CouponRedemption))
    assert (redemption.order_id, redemption.amount, redemption.status) == (
        order.id,
        1000,
        "redeemed",
    )


def test_a_percent_coupon_is_taken_on_what_is_left_and_capped(app, shirt):
    coupon("PCT20", kind="percent", value=20, max_discount=3000)
    assert buy(coupon_code="PCT20").discount == 12900 * 20 // 100
    assert buy(quantity=3, coupon_code="PCT20").discount == 3000


def test_a_coupon_never_takes_more_than_the_goods(app, shirt):
    coupon("BIG", value=50000)
    order = buy(coupon_code="BIG", shipping_fee=1000)
    assert (order.subtotal, order.discount, order.shipping_fee, order.total) == (
        12900,
        12900,
        1000,
        1000,
    )


@pytest.mark.parametrize(
    ("rules", "customer", "reason"),
    [
        ({"active": False}, False, "unknown"),
        ({"starts_at": utcnow() + timedelta(days=1)}, False, "not_started"),
        ({"ends_at": utcnow() - timedelta(seconds=1)}, False, "expired"),
        ({"total_limit": 3, "used": 3}, False, "used_up"),
        ({"per_customer_limit": 1}, False, "sign_in"),
        ({"min_spend": 13000}, False, "min_spend"),
    ],
)
def test_a_coupon_that_cannot_be_used_places_nothing(app, shirt, rules, customer, reason):
    c = coupon(**rules)
    before = inventory.available("SHIRT-W")
    with pytest.raises(mk.CouponRefused) as refused:
        buy(coupon_code="SAVE10")
    assert refused.value.reason == reason
    assert refused.value.http_status == 422
    assert (count(Order), count(OrderDiscount), count(CouponRedemption)) == (0, 0, 0)
    assert inventory.available("SHIRT-W") == before
    assert fresh(Coupon, c.id).used == rules.get("used", 0)
    # The cart shows the reason and leaves the coupon out.
    priced = cart.view({"SHIRT-W": 1}, coupon_code="SAVE10")
    assert (priced.discount, priced.coupon_code, priced.quote.coupon_reason) == (0, None, reason)
    assert priced.coupon_error
    assert_ledger_consistent(session())


def test_an_unknown_code_is_refused(app, shirt):
    with pytest.raises(mk.CouponRefused) as refused:
        buy(coupon_code="NOPE")
    assert refused.value.reason == "unknown"
    assert count(Order) == 0


def test_the_per_customer_limit(app, shirt):
    c = coupon(per_customer_limit=2)
    alice = customers.for_user("alice")
    bob = customers.for_user("bob")
    buy(customer=alice.id, coupon_code="SAVE10")
    buy(customer=alice.id, coupon_code="SAVE10")
    with pytest.raises(mk.CouponRefused) as refused:
        buy(customer=alice.id, coupon_code="SAVE10")
    assert refused.value.reason == "customer_limit"
    buy(customer=bob.id, coupon_code="SAVE10")
    assert fresh(Coupon, c.id).used == 3
    uses = {u.customer_id: u.used for u in session().scalars(select(CouponCustomerUse))}
    assert uses == {alice.id: 2, bob.id: 1}


def test_the_same_checkout_twice_redeems_once(app, shirt):
    c = coupon(total_limit=1)
    first = buy(coupon_code="SAVE10", idempotency_key="checkout:abc")
    again = buy(coupon_code="SAVE10", idempotency_key="checkout:abc")
    assert again.number == first.number
    assert fresh(Coupon, c.id).used == 1
    assert count(CouponRedemption) == 1
    with pytest.raises(ValidationError):  # the same key asking for something else
        buy(coupon_code=None, idempotency_key="checkout:abc")


def test_out_of_stock_rolls_the_coupon_back(app, shirt):
    c = coupon(total_limit=1)
    with pytest.raises(OutOfStock):
        buy(quantity=11, coupon_code="SAVE10")
    assert fresh(Coupon, c.id).used == 0
    assert (count(Order), count(CouponRedemption), count(OrderDiscount)) == (0, 0, 0)


def test_a_cancelled_order_gives_its_use_back_once(app, shirt):
    c = coupon(total_limit=1, per_customer_limit=1)
    alice = customers.for_user("alice")
    order = buy(customer=alice.id, coupon_code="SAVE10")
    assert fresh(Coupon, c.id).used == 1
    orders.cancel(order.number, reason="changed my mind")
    assert fresh(Coupon, c.id).used == 0
    with pytest.raises(InvalidTransition):
        orders.cancel(order.number, reason="again")
    assert fresh(Coupon, c.id).used == 0
    redemption = session().scalar(select(CouponRedemption))
    assert redemption.status == "released" and redemption.released_at is not None
    assert session().scalar(select(CouponCustomerUse.used)) == 0
    # The use is free again, for the same buyer too.
    again = buy(customer=alice.id, coupon_code="SAVE10")
    assert again.discount == 1000
    assert fresh(Coupon, c.id).used == 1


def test_an_expired_reservation_gives_the_use_back(app, shirt):
    c = coupon(total_limit=1)
    order = buy(coupon_code="SAVE10")
    assert order_clock.expire_unpaid(utcnow() + timedelta(days=2)) == [order.number]
    assert fresh(Coupon, c.id).used == 0


def test_a_discounted_order_is_paid_for_its_total(app, shirt):
    coupon()
    order = buy(coupon_code="SAVE10")
    paid = orders.mark_paid(order.number, amount=11900, transaction_id="t-1", provider="offline")
    assert paid.status == "paid"


def test_checkout_places_with_the_coupon_and_the_shipping_fee_on_the_goods(app, shirt):
    app.config["KOUDAI_FREE_SHIPPING_OVER"] = 20000
    add(Promotion(name="满减", tiers=[{"threshold": 25000, "off": 6000}]))
    coupon()
    order = checkout.place_order(
        items={"SHIRT-W": 2}, address=ADDRESS, token="t" * 16, coupon_code="SAVE10"
    )
    # 258.00 of goods ship free even though 70.00 comes off.
    assert (order.subtotal, order.shipping_fee, order.discount, order.total) == (
        25800,
        0,
        7000,
        18800,
    )


# -- the plugin registry ---------------------------------------------------------------------


class HalfPricePlugin(mk.MarketingPlugin):
    stage = mk.LINE_PRICES

    def price_adjustments(self, context: mk.CartContext) -> list[mk.Adjustment]:
        return [
            mk.Adjustment(
                plugin="",
                scope=mk.LINE,
                amount=0,
                description="half",
                sku_code=line.sku_code,
                unit_price=line.unit_price // 2,
            )
            for line in context.lines
        ] + [mk.Adjustment(plugin="", scope=mk.ORDER, amount=10**9, description="too much")]


@pytest.fixture
def extra_plugins(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    found = {"half": f"{__name__}:HalfPricePlugin", "broken": "no_such_module:Plugin"}
    monkeypatch.setattr(registry, "_registered", lambda: {**found, **registry.BUILTIN_PLUGINS})
    registry._instance.cache_clear()
    yield found
    registry._instance.cache_clear()


def test_an_installed_plugin_prices_the_order_and_a_broken_one_is_logged(
    app, shirt, extra_plugins, caplog
):
    with caplog.at_level(logging.ERROR, logger="koudai_flask.marketing"):
        order = buy(quantity=2)
    assert order.lines[0].unit_price == 6450
    # An order discount stops at the goods: the order costs nothing, never less.
    assert (order.subtotal, order.discount, order.total) == (12900, 12900, 0)
    assert "marketing plugin 'broken' cannot be loaded" in caplog.text
    assert mk.plugin_names() == ["broken", "coupon", "full_reduction", "half", "limited_price"]


def test_config_chooses_the_plugins(app, shirt, extra_plugins):
    app.config["KOUDAI_MARKETING_PLUGINS"] = ["coupon"]
    add(Promotion(name="满减", tiers=[{"threshold": 100, "off": 50}]))
    coupon()
    order = buy(coupon_code="SAVE10")
    assert (order.lines[0].unit_price, order.discount) == (12900, 1000)
    app.config["KOUDAI_MARKETING_PLUGINS"] = ["full_reduction"]
    with pytest.raises(mk.CouponRefused) as refused:
        buy(coupon_code="SAVE10")
    assert refused.value.reason == "not_accepted"


def test_the_discount_total_survives_a_catalog_change(app, shirt):
    coupon()
    order = buy(coupon_code="SAVE10")
    catalog.update_sku("SHIRT-W", price=100)
    session().expire_all()
    stored = session().scalar(select(Order).where(Order.number == order.number))
    assert (stored.subtotal, stored.discount, stored.total) == (12900, 1000, 11900)
