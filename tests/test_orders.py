"""The order engine: the whole transition table, idempotency and bad input."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from koudai_flask.errors import InvalidTransition, NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import (
    Order,
    OrderEvent,
    OutboxEvent,
    Payment,
    Product,
    Refund,
    Reservation,
    Shipment,
    StockLevel,
    StockMovement,
)
from koudai_flask.models.base import utcnow
from koudai_flask.schemas import load
from koudai_flask.schemas.orders import PlaceOrderInput
from koudai_flask.services import catalog, channels, inventory, order_clock, order_input, orders
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.services_only

# DESIGN.md's table, written out here so a wrong table in the code fails the test.
EXPECTED = {
    ("pending_payment", "pay"): "paid",
    ("pending_payment", "cancel"): "cancelled",
    ("paid", "ship"): "shipped",
    ("shipped", "deliver"): "delivered",
    ("delivered", "complete"): "completed",
    ("paid", "request_refund"): "refunding",
    ("shipped", "request_refund"): "refunding",
    ("delivered", "request_refund"): "refunding",
    ("refunding", "refund"): "refunded",
    # Back to where the request came from: paid, on the path PATHS takes to refunding.
    ("refunding", "decline_refund"): "paid",
}
STATES = [
    "pending_payment",
    "paid",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
    "refunding",
    "refunded",
]
ACTIONS = [
    "pay",
    "cancel",
    "ship",
    "deliver",
    "complete",
    "request_refund",
    "refund",
    "decline_refund",
]


def act(order: Order, action: str) -> Order:
    number = order.number
    if action == "pay":
        return orders.mark_paid(
            number, amount=order.total, transaction_id=uuid.uuid4().hex, provider="offline"
        )
    if action == "cancel":
        return orders.cancel(number, reason="buyer changed mind")
    if action == "ship":
        return orders.ship(number, carrier="shunfeng", tracking_number=uuid.uuid4().hex[:12])
    if action == "deliver":
        return orders.deliver(number)
    if action == "complete":
        return orders.complete(number)
    if action == "request_refund":
        return orders.request_refund(number, reason="damaged")
    if action == "refund":
        return orders.refund(number, reason="damaged")
    if action == "decline_refund":
        return orders.decline_refund(number, reason="the photos show no damage")
    raise AssertionError(action)


PATHS = {
    "pending_payment": [],
    "paid": ["pay"],
    "shipped": ["pay", "ship"],
    "delivered": ["pay", "ship", "deliver"],
    "completed": ["pay", "ship", "deliver", "complete"],
    "cancelled": ["cancel"],
    "refunding": ["pay", "request_refund"],
    "refunded": ["pay", "request_refund", "refund"],
}


def order_in(state: str, sku: str = "SHIRT-W", quantity: int = 2) -> Order:
    order = orders.place(channel="web", lines=[{"sku": sku, "quantity": quantity}])
    for action in PATHS[state]:
        order = act(order, action)
    assert order.status == state
    return order


def world(app) -> dict[str, Any]:
    """Everything an order action could change, for 'changed nothing' assertions."""
    session = get_state(app).session
    session.expire_all()

    def count(model: Any) -> int:
        return session.scalar(select(func.count()).select_from(model))

    return {
        "statuses": session.execute(select(Order.number, Order.status).order_by(Order.id)).all(),
        "levels": session.execute(
            select(StockLevel.sku_id, StockLevel.on_hand, StockLevel.reserved).order_by(
                StockLevel.id
            )
        ).all(),
        "reservations": session.execute(
            select(Reservation.id, Reservation.status).order_by(Reservation.id)
        ).all(),
        **{
            model.__name__: count(model)
            for model in (OrderEvent, OutboxEvent, Payment, Refund, Shipment, StockMovement)
        },
    }


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_transition_table(app, shirt, state, action):
    order = order_in(state)
    target = EXPECTED.get((state, action))
    if target is None:
        before = world(app)
        with pytest.raises(InvalidTransition) as info:
            act(order, action)
        assert (info.value.status, info.value.action) == (state, action)
        assert world(app) == before
        return
    events_before = world(app)["OrderEvent"]
    moved = act(order, action)
    assert moved.status == target
    session = get_state(app).session
    last = session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id.desc())
    ).first()
    assert (last.from_status, last.to_status) == (state, target)
    assert world(app)["OrderEvent"] == events_before + 1
    assert_ledger_consistent(session)


@pytest.mark.parametrize("state", ["paid", "shipped", "delivered"])
def test_a_declined_refund_goes_back_where_it_was_requested(app, shirt, state):
    order = order_in(state)
    orders.request_refund(order.number, reason="changed my mind")
    before = world(app)
    with pytest.raises(ValidationError):
        orders.decline_refund(order.number, reason="   ")
    assert world(app) == before
    declined = orders.decline_refund(order.number, reason="the parcel is on its way")
    assert declined.status == state
    session = get_state(app).session
    last = session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id.desc())
    ).first()
    assert (last.from_status, last.to_status, last.note) == (
        "refunding",
        state,
        "the parcel is on its way",
    )
    # Announced as what it is, not as a second payment or shipment.
    topic = session.scalars(select(OutboxEvent.topic).order_by(OutboxEvent.id.desc())).first()
    assert topic == "order.refund_declined"
    # The buyer may ask again, and the seller may then refund.
    orders.request_refund(order.number, reason="still want the money back")
    assert orders.refund(order.number, reason="agreed").status == "refunded"
    assert_ledger_consistent(session)


@pytest.mark.parametrize(("state", "steps"), [("shipped", 2), ("delivered", 1)])
def test_the_buyer_confirms_receipt(app, shirt, state, steps):
    order = order_in(state)
    events = world(app)["OrderEvent"]
    done = orders.confirm_received(order.number)
    assert done.status == "completed"
    assert world(app)["OrderEvent"] == events + steps
    assert all(shipment.status == "delivered" for shipment in done.shipments)


@pytest.mark.parametrize("state", ["pending_payment", "paid", "refunding", "completed"])
def test_receipt_cannot_be_confirmed_before_shipping_or_twice(app, shirt, state):
    order = order_in(state)
    before = world(app)
    with pytest.raises(InvalidTransition):
        orders.confirm_received(order.number)
    assert world(app) == before


def test_stock_follows_the_order(app, shirt):
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 3}])
    assert inventory.available("SHIRT-W") == 7
    act(order, "pay")
    assert inventory.available("SHIRT-W") == 7
    act(order, "ship")
    level = get_state(app).session.scalar(select(StockLevel).where(StockLevel.sku_id == 1))
    get_state(app).session.refresh(level)
    assert (level.on_hand, level.reserved) == (7, 0)
    cancelled = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 5}])
    assert inventory.available("SHIRT-W") == 2
    orders.cancel(cancelled.number, reason="test")
    assert inventory.available("SHIRT-W") == 7
    refunded = order_in("refunded", quantity=4)
    assert refunded.status == "refunded"
    assert inventory.available("SHIRT-W") == 7  # paid but unshipped stock went back
    assert_ledger_consistent(get_state(app).session)


def test_partial_refund_records_a_refund_and_keeps_the_state(app, shirt):
    order = order_in("shipped")
    orders.refund(order.number, amount=1000, reason="late", idempotency_key="r1")
    orders.refund(order.number, amount=1000, reason="late", idempotency_key="r1")
    session = get_state(app).session
    session.refresh(order)
    assert order.status == "shipped"
    assert order.refunded_amount == 1000
    with pytest.raises(InvalidTransition):
        orders.refund(order.number, reason="all of it")  # full refund needs request_refund
    act(order, "request_refund")
    done = orders.refund(order.number)
    assert done.status == "refunded"
    assert done.refunded_amount == order.total
    with pytest.raises(ValidationError):
        orders.refund(order_in("paid").number, amount=10**9)


def test_place_with_the_same_key_is_one_order(app, shirt):
    lines = [{"sku": "SHIRT-W", "quantity": 2}, {"sku": "SHIRT-B", "quantity": 1}]
    first = orders.place(channel="web", lines=lines, idempotency_key="checkout-1")
    again = orders.place(channel="web", lines=lines, idempotency_key="checkout-1")
    assert first.number == again.number
    session = get_state(app).session
    assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert inventory.available("SHIRT-W") == 8
    assert inventory.available("SHIRT-B") == 9
    assert first.total == 2 * 12900 + 13900
    with pytest.raises(ValidationError, match="different content"):
        orders.place(
            channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}], idempotency_key="checkout-1"
        )


def test_channel_external_id_is_unique(app, shirt):
    channels.create("taobao", "tb-shop", settings={})
    lines = [{"sku": "SHIRT-B", "quantity": 1, "unit_price": 9900}]
    first = orders.place(channel="tb-shop", lines=lines, external_id="tid-123")
    again = orders.place(channel="tb-shop", lines=lines, external_id="tid-123")
    assert first.number == again.number
    assert first.total == 9900
    assert inventory.available("SHIRT-B") == 9


def test_mark_paid_replayed_100_times_is_one_payment(app, shirt):
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    for _ in range(100):
        paid = orders.mark_paid(
            order.number, amount=12900, transaction_id="wx-1", provider="wechatpay"
        )
        assert paid.status == "paid"
    session = get_state(app).session
    assert session.scalar(select(func.count()).select_from(Payment)) == 1
    assert (
        session.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.to_status == "paid")
        )
        == 1
    )
    act(order, "ship")
    assert (
        orders.mark_paid(
            order.number, amount=12900, transaction_id="wx-1", provider="wechatpay"
        ).status
        == "shipped"
    )


def test_mark_paid_with_the_wrong_amount_changes_nothing(app, shirt):
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    before = world(app)
    with pytest.raises(ValidationError, match="does not match"):
        orders.mark_paid(order.number, amount=1, transaction_id="wx-2", provider="wechatpay")
    assert world(app) == before


@pytest.mark.parametrize(
    ("amount", "transaction_id", "provider", "message"),
    [
        (0, "wx-3", "wechatpay", "positive integer of fen"),
        (-12900, "wx-3", "wechatpay", "positive integer of fen"),
        (True, "wx-3", "wechatpay", "positive integer of fen"),
        (129.0, "wx-3", "wechatpay", "positive integer of fen"),
        ("12900", "wx-3", "wechatpay", "positive integer of fen"),
        (12900, "", "wechatpay", "transaction_id and provider are required"),
        (12900, "wx-3", "", "transaction_id and provider are required"),
    ],
)
def test_mark_paid_refuses_bad_input_and_changes_nothing(
    app, shirt, amount, transaction_id, provider, message
):
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    before = world(app)
    with pytest.raises(ValidationError, match=message):
        orders.mark_paid(
            order.number, amount=amount, transaction_id=transaction_id, provider=provider
        )
    assert world(app) == before


def test_one_transaction_cannot_pay_a_second_order(app, shirt):
    first = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    second = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    orders.mark_paid(first.number, amount=12900, transaction_id="wx-7", provider="wechatpay")
    before = world(app)
    with pytest.raises(ValidationError, match=f"wx-7 already paid order {first.number}"):
        orders.mark_paid(second.number, amount=12900, transaction_id="wx-7", provider="wechatpay")
    assert world(app) == before
    # The same id from another provider is another payment.
    paid = orders.mark_paid(second.number, amount=12900, transaction_id="wx-7", provider="alipay")
    assert paid.status == "paid"


def test_a_key_replayed_on_another_channel_is_refused_not_placed_twice(app, shirt):
    lines = [{"sku": "SHIRT-W", "quantity": 1}]
    first = orders.place(channel="web", lines=lines, idempotency_key="checkout-9")
    before = world(app)
    for channel in ("nowhere", "web"):
        with pytest.raises(ValidationError, match=f"already used by order {first.number}"):
            orders.place(
                channel=channel,
                lines=[{"sku": "SHIRT-W", "quantity": 2}],
                idempotency_key="checkout-9",
            )
    assert world(app) == before


def test_expired_reservation_releases_its_stock_exactly_once(app, shirt):
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 4}])
    paid = orders.place(channel="web", lines=[{"sku": "SHIRT-B", "quantity": 1}])
    act(paid, "pay")
    later = utcnow() + timedelta(seconds=1801)
    assert order_clock.expire_unpaid(utcnow()) == []
    assert order_clock.expire_unpaid(later) == [order.number]
    assert order_clock.expire_unpaid(later) == []
    assert inventory.available("SHIRT-W") == 10
    assert inventory.available("SHIRT-B") == 9  # paid stock is never expired
    session = get_state(app).session
    assert (
        session.scalar(
            select(func.count()).select_from(StockMovement).where(StockMovement.reason == "expiry")
        )
        == 1
    )
    assert_ledger_consistent(session)


BAD_LINES = [
    ([{"sku": "NOPE", "quantity": 1}], NotFound),
    ([{"sku": "SHIRT-W", "quantity": 0}], ValidationError),
    ([{"sku": "SHIRT-W", "quantity": -2}], ValidationError),
    ([{"sku": "SHIRT-W", "quantity": "2"}], ValidationError),
    ([{"sku": "SHIRT-W", "quantity": 11}], Exception),  # OutOfStock
    ([{"sku": "SHIRT-W", "quantity": 1}, {"sku": "SHIRT-B", "quantity": 11}], Exception),
    ([{"sku": "SHIRT-W", "quantity": 1, "unit_price": 1}], ValidationError),  # web sets prices
    ([], ValidationError),
]


@pytest.mark.parametrize(("lines", "error"), BAD_LINES)
def test_bad_order_input_writes_nothing(app, shirt, lines, error):
    before = world(app)
    with pytest.raises(error) as info:
        orders.place(channel="web", lines=lines)
    assert info.type.__module__ == "koudai_flask.errors"
    assert world(app) == before


def test_unknown_channel_writes_nothing(app, shirt):
    before = world(app)
    with pytest.raises(NotFound, match="unknown channel"):
        orders.place(channel="nowhere", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    assert world(app) == before


@pytest.mark.parametrize(
    "sku",
    [
        {"code": "X-1", "price": -1},
        {"code": "X-1", "price": 1.5},
        {"code": "bad code!", "price": 100},
        {"code": "SHIRT-W", "price": 100},  # taken
    ],
)
def test_bad_product_input_writes_nothing(app, shirt, sku):
    session = get_state(app).session
    before = session.scalar(select(func.count()).select_from(Product))
    with pytest.raises(ValidationError):
        catalog.create_product(title="Bad", skus=[sku])
    assert session.scalar(select(func.count()).select_from(Product)) == before


def test_archived_products_cannot_be_ordered(app, shirt):
    catalog.archive_product(shirt.id)
    with pytest.raises(ValidationError, match="not on sale"):
        orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])


# -- the input of place: the hand check gives marshmallow's data, or leaves it the call ------

_text = st.one_of(
    st.text(max_size=3),
    st.sampled_from(["", "x" * 40, "x" * 41, "x" * 64, "x" * 65, "x" * 500, "x" * 501]),
    st.sampled_from(["13800000000", "+86 138-0000", "13800000000\n", "1380", "abc123456"]),
)
_number = st.one_of(
    st.integers(-2, 3),
    st.sampled_from([9998, 9999, 10000, 10**12]),
    st.booleans(),
    st.just(1.0),
    st.just("2"),
)
_scalar = st.one_of(_text, _number, st.none(), st.binary(max_size=2))
_line = st.dictionaries(
    st.sampled_from(["sku", "quantity", "unit_price", "price"]), _scalar, max_size=4
) | st.fixed_dictionaries({"sku": _text, "quantity": _number}, optional={"unit_price": _number})
_address = (
    st.none()
    | st.dictionaries(
        st.sampled_from(
            ["name", "phone", "province", "city", "district", "street", "postcode", "zip"]
        ),
        _scalar,
        max_size=8,
    )
    | st.fixed_dictionaries(
        {"name": _text, "phone": _text, "street": _text},
        optional={"province": _text, "city": _text, "district": _text, "postcode": _text},
    )
)
_place_input = st.fixed_dictionaries(
    {
        "lines": st.lists(_line, max_size=3) | st.tuples(_line) | _scalar,
        "address": _address,
        "shipping_fee": _number,
        "external_id": st.none() | _text,
        "note": _text | st.none(),
    }
)


def _loaded(load_input: Any, values: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "data", load_input(values)
    except ValidationError as exc:
        return "error", (str(exc), exc.messages)


@settings(max_examples=300, deadline=None)
@given(values=_place_input)
def test_place_input_is_loaded_as_the_schema_loads_it(values):
    by_schema = _loaded(lambda v: load(PlaceOrderInput(), v, "order"), values)
    assert _loaded(order_input.load_place_input, values) == by_schema


@pytest.mark.parametrize(
    "values",
    [
        {"lines": [{"sku": "SHIRT-W", "quantity": 1}], "address": None},
        {
            "lines": [{"sku": "SHIRT-W", "quantity": 2}, {"sku": "SHIRT-B", "quantity": 9999}],
            "address": {"name": "Li Lei", "phone": "+86 138-0000-0000", "street": "1 Road"},
            "shipping_fee": 800,
            "external_id": "TB-1",
            "note": "ring twice",
        },
        {"lines": [{"sku": "SHIRT-W", "quantity": 1, "unit_price": 0}], "address": None},
    ],
)
def test_plain_input_is_checked_by_hand_with_the_schema_s_defaults(values):
    values = {"shipping_fee": 0, "external_id": None, "note": ""} | values
    by_hand = order_input.plain_input(values)
    assert by_hand is not None  # the common input does not go through Schema.load
    assert by_hand == load(PlaceOrderInput(), values, "order")
