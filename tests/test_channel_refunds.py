"""A Taobao buyer's refund, mirrored on our order: the sandbox over loopback, real syncs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.connectors.base import RemoteOrder, RemoteOrderLine
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.taobao.client import format_time
from koudai_flask.connectors.taobao.connector import TaobaoConnector
from koudai_flask.connectors.taobao.records import Trade
from koudai_flask.errors import InvalidTransition, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.jobs import sync
from koudai_flask.models import Customer, Notification, Order, OrderEvent, Refund, StockMovement
from koudai_flask.services import backoffice, inventory, order_states, orders, staff
from tests.sync_support import LinkedShop, link_shop, seed_shirts
from tests.test_admin import PASSWORD, login

# Trade times are whole seconds; steps stamped a minute apart from an hour ahead never tie with
# one the sandbox stamps with the clock (a shipment), so no change is taken for one seen.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


@pytest.fixture
def app(make_app: Any, database_url: str) -> Iterator[Flask]:
    """The shop texts its buyers (SMS to the log), so a message that should not go would."""
    app = make_app(database_url, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        yield app


@pytest.fixture
def sandbox() -> Iterator[TaobaoSandbox]:
    with TaobaoSandbox() as server:
        yield server


@pytest.fixture
def shop(app: Flask, sandbox: TaobaoSandbox) -> LinkedShop:
    seed_shirts(stock=10)
    return link_shop(app, sandbox)


def at(minutes: int) -> datetime:
    """A trade's modified time: each step a minute after the last, as on Taobao."""
    return T0 + timedelta(minutes=minutes)


def _order(tid: int) -> Order:
    session = get_state().session
    session.expire_all()
    order = session.scalar(
        select(Order).where(Order.channel == "tb", Order.external_id == str(tid))
    )
    assert order is not None
    return order


def _count(model: type, *where: object) -> int:
    return get_state().session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _paid_trade(sandbox: TaobaoSandbox, shop: LinkedShop, *lines: tuple[str, int]) -> int:
    trade = sandbox.add_trade(
        [(shop.item.num_iid, shop.sku_id(code), num) for code, num in lines],
        paid=True,
        modified=at(0),
    )
    sync.sync_tick()
    assert _order(trade["tid"]).status == "paid"
    return int(trade["tid"])


def test_a_refund_asked_on_taobao_stops_shipping_until_the_seller_refuses_it(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid = _paid_trade(sandbox, shop, ("SHIRT-W", 2))
    number = _order(tid).number

    sandbox.ask_refund(tid, modified=at(1))
    sync.sync_tick()
    order = _order(tid)
    assert order.status == "refunding"
    request = order_states.refund_request(get_state().session, order)
    assert request is not None and request.actor == "channel:tb"
    with pytest.raises(InvalidTransition):  # the seller may not ship what is being refunded
        orders.ship(number, carrier="yuantong", tracking_number="YT1000000001")
    assert inventory.available("SHIRT-W") == 8  # still held for the buyer

    sandbox.close_refund(tid, refused=True, modified=at(2))
    sync.sync_tick()
    assert _order(tid).status == "paid"
    assert _count(Refund) == 0
    orders.ship(number, carrier="yuantong", tracking_number="YT1000000001")
    assert _order(tid).status == "shipped"


def test_a_trade_refunded_before_shipping_ends_refunded_with_its_stock_back_once(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid = _paid_trade(sandbox, shop, ("SHIRT-B", 3))
    assert inventory.available("SHIRT-B") == 7

    sandbox.ask_refund(tid, modified=at(1))
    sandbox.agree_refund(tid, modified=at(2))  # both seen in one sync: asked, then refunded
    sync.sync_tick()
    order = _order(tid)
    assert order.status == "refunded"
    assert order.refunded_amount == order.paid_amount == order.total == 3 * 12900  # Taobao's price
    assert inventory.available("SHIRT-B") == 10
    assert _count(Refund) == 1

    # Seen again (the poll and a late message): nothing more is written.
    events = _count(OrderEvent)
    movements = _count(StockMovement)
    sync.run_channel_job(_channel_id(), "import_orders", [])
    sync.sync_tick()
    assert (_count(Refund), _count(OrderEvent), _count(StockMovement)) == (1, events, movements)
    assert inventory.available("SHIRT-B") == 10


def test_a_shipped_trade_refunded_keeps_its_stock_out(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid = _paid_trade(sandbox, shop, ("SHIRT-W", 1))
    orders.ship(_order(tid).number, carrier="yuantong", tracking_number="YT1000000002")
    sync.sync_tick()
    on_hand = _on_hand("SHIRT-W")
    assert on_hand == 9

    sandbox.ask_refund(tid, returning=True, modified=at(5))
    sync.sync_tick()
    assert _order(tid).status == "refunding"
    sandbox.agree_refund(tid, modified=at(6))
    sync.sync_tick()
    order = _order(tid)
    assert order.status == "refunded" and order.refunded_amount == 12900
    # Whether the parcel came back is the seller's to say (a stock adjustment), not Taobao's.
    assert _on_hand("SHIRT-W") == on_hand


def test_one_line_refunded_is_a_partial_refund_of_its_payment_once(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid = _paid_trade(sandbox, shop, ("SHIRT-W", 1), ("SHIRT-B", 2))
    trade = sandbox.state.trades[tid]
    blue = next(o for o in trade["orders"]["order"] if o["outer_sku_id"] == "SHIRT-B")

    sandbox.ask_refund(tid, blue["oid"], modified=at(1))
    sync.sync_tick()
    assert _order(tid).status == "refunding"
    sandbox.agree_refund(tid, blue["oid"], modified=at(2))
    sync.sync_tick()
    order = _order(tid)
    assert order.status == "paid"  # the request is over; the white shirt still ships
    assert order.events[-1].note == "the items asked for were refunded"  # settled
    assert order.refunded_amount == 2 * 12900
    refund = get_state().session.scalar(select(Refund))
    assert refund is not None and refund.idempotency_key == f"channel:tb:{tid}:refund:{blue['oid']}"

    assert inventory.available("SHIRT-B") == 10  # the refunded line's hold went back
    assert [line.refunded_quantity for line in order.lines] == [0, 2]

    sync.run_channel_job(_channel_id(), "import_orders", [])
    assert _count(Refund) == 1 and _order(tid).refunded_amount == 2 * 12900
    orders.ship(order.number, carrier="yuantong", tracking_number="YT1000000003")
    assert _order(tid).status == "shipped"  # the white shirt was all there was left to send


def test_a_trade_paid_and_refunded_between_two_syncs_is_cancelled_here(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    trade = sandbox.add_trade(
        [(shop.item.num_iid, shop.sku_id("SHIRT-W"), 2)], paid=False, modified=at(0)
    )
    tid = trade["tid"]
    sync.sync_tick()
    assert _order(tid).status == "pending_payment"
    sandbox.pay_trade(tid, modified=at(1))
    sandbox.ask_refund(tid, modified=at(2))
    sandbox.agree_refund(tid, modified=at(3))
    sync.sync_tick()
    order = _order(tid)
    assert order.status == "cancelled" and order.paid_amount == 0  # no money came in here
    assert inventory.available("SHIRT-W") == 10


def test_a_trade_first_seen_refunded_is_not_placed(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    trade = sandbox.add_trade(
        [(shop.item.num_iid, shop.sku_id("SHIRT-W"), 1)], paid=True, modified=at(0)
    )
    sandbox.ask_refund(trade["tid"], modified=at(1))
    sandbox.agree_refund(trade["tid"], modified=at(2))
    sync.sync_tick()
    assert _count(Order) == 0
    assert inventory.available("SHIRT-W") == 10


def test_a_refund_staff_asked_for_is_not_undone_by_the_sync(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid = _paid_trade(sandbox, shop, ("SHIRT-W", 1))
    orders.request_refund(_order(tid).number, reason="damaged in the warehouse", actor="staff:1")
    with sandbox.state.lock:  # the trade changes on Taobao for another reason
        sandbox.state.trades[tid]["modified"] = format_time(at(10))
    sandbox.publish("taobao_trade_TradeChanged", {"tid": tid})
    sync.sync_tick()
    assert _binding_modified(tid) == at(10)  # the change was read
    assert _order(tid).status == "refunding"


def test_the_back_office_sends_staff_to_taobao_for_its_refunds(
    app: Flask, sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid = _paid_trade(sandbox, shop, ("SHIRT-W", 1))
    number = _order(tid).number
    staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
    client = login(app, "owner")
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="refunds-on-channel"' in page and "在 tb 付款" in page
    assert 'id="refund-form"' not in page
    with pytest.raises(ValidationError) as refused:
        backoffice.refund("staff:owner@shop.cn", number, amount=None, reason="asked by phone")
    assert refused.value.reason == "refund_on_channel"
    assert _count(Refund) == 0 and _order(tid).status == "paid"

    sandbox.ask_refund(tid, modified=at(1))
    sync.sync_tick()
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="refund-on-channel"' in page and 'id="decline-refund-form"' not in page
    events = _count(OrderEvent)
    with pytest.raises(ValidationError) as refused:
        backoffice.decline_refund("staff:owner@shop.cn", number, reason="it was fine")
    assert refused.value.reason == "refund_on_channel"
    assert _order(tid).status == "refunding" and _count(OrderEvent) == events


def test_a_request_closed_on_taobao_sends_the_buyer_no_message_of_ours(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid = _paid_trade(sandbox, shop, ("SHIRT-W", 1))
    order = _order(tid)
    customer = get_state().session.get(Customer, order.customer_id)
    assert customer is not None
    customer.phone = "13800138000"  # a buyer the shop could text
    get_state().session.commit()
    sandbox.ask_refund(tid, modified=at(1))
    sync.sync_tick()
    sandbox.close_refund(tid, modified=at(2))
    sync.sync_tick()
    assert _order(tid).status == "paid"
    assert _count(Notification, Notification.event == "refund_declined") == 0


def test_taobao_refund_states_map_to_ours() -> None:
    line = {"oid": 11, "num_iid": 1, "num": 1, "price": "10.00", "payment": "9.50"}
    trade = {
        "tid": 7,
        "status": "WAIT_SELLER_SEND_GOODS",
        "payment": "9.50",
        "modified": "2026-11-20 08:00:00",
        "orders": {
            "order": [
                {**line, "refund_status": status, "oid": 11 + i}
                for i, status in enumerate(
                    (
                        "NO_REFUND",
                        "WAIT_SELLER_AGREE",
                        "WAIT_BUYER_RETURN_GOODS",
                        "WAIT_SELLER_CONFIRM_GOODS",
                        "SELLER_REFUSE_BUYER",
                        "CLOSED",
                        "SUCCESS",
                    )
                )
            ]
        },
    }
    remote = TaobaoConnector.map_trade(Trade.from_top(trade))
    assert [line.refund for line in remote.lines] == [
        "none",
        "asked",
        "asked",
        "asked",
        "none",
        "none",
        "refunded",
    ]
    assert remote.refund_asked
    assert remote.lines[0].paid == 950 and remote.lines[0].external_line_id == "11"
    closed = TaobaoConnector.map_trade(Trade.from_top({**trade, "status": "TRADE_CLOSED"}))
    assert closed.status == "refunded"
    unpaid = TaobaoConnector.map_trade(
        Trade.from_top({**trade, "status": "TRADE_CLOSED_BY_TAOBAO"})
    )
    assert unpaid.status == "cancelled"


def test_a_refund_message_asks_for_its_trade() -> None:
    for topic in ("taobao_refund_RefundCreated", "taobao_refund_RefundSuccess"):
        message = TaobaoConnector._message(5, topic, {"tid": 42, "oid": 43, "refund_id": 9})
        assert (message.topic, message.content) == ("trade", {"external_id": "42"})


def test_no_refund_asked_without_lines() -> None:
    remote = RemoteOrder("1", "paid", "WAIT_SELLER_SEND_GOODS", T0, (), 0)
    assert not remote.refund_asked
    asked = RemoteOrderLine("1", "", 1, 100, refund="asked")
    assert RemoteOrder("1", "paid", "x", T0, (asked,), 100).refund_asked


def _binding_modified(tid: int) -> datetime | None:
    from koudai_flask.models import ChannelOrder

    session = get_state().session
    session.expire_all()
    modified = session.scalar(
        select(ChannelOrder.remote_modified).where(ChannelOrder.external_id == str(tid))
    )
    return None if modified is None else modified.replace(tzinfo=modified.tzinfo or UTC)


def _channel_id() -> int:
    from koudai_flask.services import channels

    return channels.info("tb").id


def _on_hand(code: str) -> int:
    from koudai_flask.models import Sku, StockLevel

    session = get_state().session
    session.expire_all()
    return (
        session.scalar(
            select(func.sum(StockLevel.on_hand))
            .join(Sku, Sku.id == StockLevel.sku_id)
            .where(Sku.code == code)
        )
        or 0
    )


def test_the_api_does_not_record_a_synced_order_s_refund_twice(
    app: Flask, sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    from tests.api_support import API, make_key

    tid = _paid_trade(sandbox, shop, ("SHIRT-W", 1))
    number = _order(tid).number
    staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
    headers = make_key(app, ["orders.refund"], owner="staff:owner@shop.cn")
    answer = app.test_client().post(f"{API}/orders/{number}/refunds", json={}, headers=headers)
    assert answer.status_code == 422
    assert "refund it there" in answer.get_json()["message"]
    assert _count(Refund) == 0 and _order(tid).status == "paid"
