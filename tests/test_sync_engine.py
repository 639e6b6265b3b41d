"""The sync engine against the Taobao sandbox over loopback: stock out, trades in, shipments."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.taobao.client import ban_seconds
from koudai_flask.extension import get_state
from koudai_flask.jobs import sync
from koudai_flask.models import ChannelListing, Order
from koudai_flask.services import channels, inventory, orders, stock_sync, sync_log
from tests.sync_support import assert_no_drift, drain, link_shop, rq_config, seed_shirts, work


@pytest.fixture
def sandbox() -> Iterator[TaobaoSandbox]:
    with TaobaoSandbox() as server:
        yield server


@pytest.fixture
def other_sandbox() -> Iterator[TaobaoSandbox]:
    with TaobaoSandbox() as server:
        yield server


def _order(number: str) -> Order:
    session = get_state().session
    order = session.scalar(select(Order).where(Order.number == number))
    assert order is not None
    return order


# -- stock out -------------------------------------------------------------------------------


def test_a_web_sale_updates_every_linked_channel_by_its_rule(
    app: Flask, sandbox: TaobaoSandbox, other_sandbox: TaobaoSandbox
) -> None:
    seed_shirts(stock=10)
    full = link_shop(app, sandbox, "tb-full")
    half = link_shop(app, other_sandbox, "tb-half", share=0.5, buffer=1)
    assert (full.quantity("SHIRT-W"), half.quantity("SHIRT-W")) == (10, 4)  # (10-1)*0.5

    orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 3}])

    assert full.quantity("SHIRT-W") == 7
    assert half.quantity("SHIRT-W") == 3  # floor((7 - 1) * 0.5)
    assert (full.quantity("SHIRT-B"), half.quantity("SHIRT-B")) == (10, 4)
    assert stock_sync.dirty_channels() == []


def test_our_own_echo_is_ignored_and_a_foreign_change_is_overwritten(
    app: Flask, sandbox: TaobaoSandbox
) -> None:
    seed_shirts(stock=10)
    shop = link_shop(app, sandbox)
    channel_id = channels.info("tb").id
    pushes = sandbox.calls["taobao.skus.quantity.update"]

    # The TMC now holds ItemStockChanged for our own push: an echo, nothing to do.
    assert sync.run_channel_job(channel_id, "poll_messages", []) > 0
    assert sandbox.calls["taobao.skus.quantity.update"] == pushes
    assert stock_sync.dirty_channels() == []

    # A seller edit on Taobao is not ours: we are the truth, so ours is published again.
    sandbox.set_quantity(shop.item.num_iid, 99, shop.sku_id("SHIRT-B"))
    sync.run_channel_job(channel_id, "poll_messages", [])
    assert shop.quantity("SHIRT-B") == 10
    assert sandbox.calls["taobao.skus.quantity.update"] == pushes + 1


# -- trades in -------------------------------------------------------------------------------


def test_a_paid_taobao_trade_holds_our_stock_and_updates_the_other_channels(
    app: Flask, sandbox: TaobaoSandbox, other_sandbox: TaobaoSandbox
) -> None:
    seed_shirts(stock=10)
    taobao = link_shop(app, sandbox, "tb")
    other = link_shop(app, other_sandbox, "tb-2")

    trade = sandbox.add_trade([(taobao.item.num_iid, taobao.sku_id("SHIRT-W"), 2)], paid=True)
    assert sync.sync_tick() >= 1

    order = get_state().session.scalar(
        select(Order).where(Order.channel == "tb", Order.external_id == str(trade["tid"]))
    )
    assert order is not None and order.status == "paid"
    assert order.total == 2 * 12900
    assert inventory.available("SHIRT-W") == 8
    assert other.quantity("SHIRT-W") == 8
    assert taobao.quantity("SHIRT-W") == 8


def test_a_closed_trade_releases_our_stock_once(app: Flask, sandbox: TaobaoSandbox) -> None:
    seed_shirts(stock=10)
    shop = link_shop(app, sandbox)
    trade = sandbox.add_trade([(shop.item.num_iid, shop.sku_id("SHIRT-B"), 4)], paid=False)
    sandbox.duplicate_next(10)
    sync.sync_tick()
    assert inventory.available("SHIRT-B") == 6
    number = get_state().session.scalar(
        select(Order.number).where(Order.external_id == str(trade["tid"]))
    )
    assert number is not None and _order(number).status == "pending_payment"

    sandbox.close_trade(trade["tid"])
    sandbox.duplicate_next(10)
    sync.sync_tick()
    sync.sync_tick()
    assert _order(number).status == "cancelled"
    assert inventory.available("SHIRT-B") == 10
    # The same trade seen again by the increment poll changes nothing.
    sync.run_channel_job(channels.info("tb").id, "import_orders", [])
    assert inventory.available("SHIRT-B") == 10
    assert len(get_state().session.scalars(select(Order)).all()) == 1


def test_a_shipment_of_a_taobao_order_is_sent_back_with_the_top_company_code(
    app: Flask, sandbox: TaobaoSandbox
) -> None:
    seed_shirts(stock=10)
    shop = link_shop(app, sandbox)
    trade = sandbox.add_trade([(shop.item.num_iid, shop.sku_id("SHIRT-W"), 1)], paid=True)
    sync.sync_tick()
    number = get_state().session.scalar(
        select(Order.number).where(Order.external_id == str(trade["tid"]))
    )
    assert number is not None
    orders.ship(number, carrier="yuantong", tracking_number="YT1234567890")
    assert sandbox.shipment_of(trade["tid"]) == ("YTO", "YT1234567890")


# -- RQ: queues, coalescing, failures --------------------------------------------------------


@pytest.fixture
def rq_app(make_app, database_url: str, redis_url: str) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = make_app(database_url, **rq_config(redis_url))
    with app.app_context():
        yield app


def test_a_burst_of_sales_becomes_one_push_of_the_latest_quantity(
    rq_app: Flask, sandbox: TaobaoSandbox
) -> None:
    seed_shirts(stock=50)
    shop = link_shop(rq_app, sandbox)
    drain(rq_app)
    before = sandbox.calls["taobao.skus.quantity.update"]
    for _ in range(20):
        orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
    from koudai_flask.jobs.queue import get_queue

    # Each sale's channel.push_due event ran at dispatch, not as a job of its own, and all
    # but the first found a push already waiting; the sales' other events have no subscriber.
    assert len(get_queue()) == 0
    assert len(sync.channel_queue(channels.info("tb").id)) == 1
    drain(rq_app)
    assert shop.quantity("SHIRT-W") == 30
    assert sandbox.calls["taobao.skus.quantity.update"] == before + 1


def test_a_rate_limit_is_waited_out_and_another_channel_is_not_held_up(
    rq_app: Flask, sandbox: TaobaoSandbox, other_sandbox: TaobaoSandbox
) -> None:
    seed_shirts(stock=10)
    slow = link_shop(rq_app, sandbox, "tb-slow")
    fast = link_shop(rq_app, other_sandbox, "tb-fast")
    drain(rq_app)
    sandbox.fail_next(1, "rate_limit", 1, method="taobao.skus.quantity.update")
    orders.place(channel="web", lines=[{"sku": "SHIRT-B", "quantity": 2}])

    before = time.time()
    work(rq_app, "tb-slow", "tb-fast")
    after = time.time()
    # The throttled channel's push waits in the scheduled registry; the other went out.
    assert fast.quantity("SHIRT-B") == 8
    assert slow.quantity("SHIRT-B") == 10
    scheduled = sync.channel_queue(channels.info("tb-slow").id).scheduled_job_registry
    assert scheduled.count == 1
    # It waits what TOP asked (the client's reading of "N more seconds"), counted from the
    # failure, which happened between before and after; RQ keeps whole seconds.
    asked = ban_seconds("This ban will last for 1 more seconds")
    due = scheduled.get_scheduled_time(scheduled.get_job_ids()[0]).timestamp()
    assert before + asked - 1 <= due <= after + asked
    drain(rq_app)
    assert slow.quantity("SHIRT-B") == 8
    assert channels.info("tb-slow").status == "ok"
    assert_no_drift(rq_app, "tb-slow")
    assert_no_drift(rq_app, "tb-fast")


def test_server_errors_back_off_and_become_a_dead_letter_that_can_be_requeued(
    make_app, database_url: str, redis_url: str, sandbox: TaobaoSandbox
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(database_url, **rq_config(redis_url, KOUDAI_SYNC_MAX_ATTEMPTS=3))
    with app.app_context():
        seed_shirts(stock=10)
        shop = link_shop(app, sandbox)
        drain(app)
        sandbox.fail_next(3, "5xx", method="taobao.skus.quantity.update")
        orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}])
        drain(app)
        assert shop.quantity("SHIRT-W") == 10
        letters = sync_log.dead_letters("tb")
        assert [(d.job, d.attempts, d.error_kind) for d in letters] == [
            ("push_stock", 3, "TemporaryFailure")
        ]
        assert channels.info("tb").status == "failing"
        sync.requeue(letters[0].id, by="test")
        drain(app)
        assert shop.quantity("SHIRT-W") == 9
        assert sync_log.dead_letters("tb") == []
        assert channels.info("tb").status == "ok"


def test_an_expired_session_is_renewed_with_the_refresh_token(
    rq_app: Flask, sandbox: TaobaoSandbox
) -> None:
    seed_shirts(stock=10)
    shop = link_shop(rq_app, sandbox)
    drain(rq_app)
    sealed_before = channels.info("tb").settings["access_token"]
    sandbox.fail_next(1, "session_expired", method="taobao.skus.quantity.update")
    orders.place(channel="web", lines=[{"sku": "SHIRT-B", "quantity": 3}])
    drain(rq_app)
    assert shop.quantity("SHIRT-B") == 7
    assert channels.info("tb").settings["access_token"] != sealed_before
    assert sync_log.dead_letters("tb") == []
    assert_no_drift(rq_app)


def test_listings_marked_in_the_same_transaction_survive_a_lost_job(
    rq_app: Flask, sandbox: TaobaoSandbox
) -> None:
    seed_shirts(stock=10)
    shop = link_shop(rq_app, sandbox)
    drain(rq_app)
    orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 4}])
    from koudai_flask.jobs.queue import redis_connection

    redis_connection().flushdb()  # the push job (and its coalescing flag) are gone
    session = get_state().session
    dirty = session.scalars(
        select(ChannelListing.id).where(ChannelListing.dirty_since.is_not(None))
    ).all()
    assert len(dirty) == 1
    session.rollback()
    # The periodic tick sweeps what is still marked.
    assert sync.sync_tick() >= 1
    drain(rq_app)
    assert shop.quantity("SHIRT-W") == 6
    assert stock_sync.dirty_channels() == []
