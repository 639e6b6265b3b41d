"""ERPs in the sync engine: a real trytond and the Jushuitan sandbox, both over loopback.

An ERP stocktake reaches every channel; our paid orders go to the ERP once; a shipment made
in the ERP ships our order and, for a Taobao order, is pushed to Taobao with TOP's company
code; the ERP's expired token is renewed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from koudai_flask.connectors.erp.tryton import TrytonClient
from koudai_flask.connectors.sandbox.jushuitan import JushuitanSandbox
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.extension import get_state
from koudai_flask.jobs import sync
from koudai_flask.models import ChannelOrder, Order
from koudai_flask.services import catalog, channels, inventory, orders
from tests.sync_support import link_shop
from tests.tryton_server import TrytonServer

pytestmark = pytest.mark.services_only


@pytest.fixture
def sandbox() -> Iterator[TaobaoSandbox]:
    with TaobaoSandbox() as server:
        yield server


@pytest.fixture
def jushuitan() -> Iterator[JushuitanSandbox]:
    with JushuitanSandbox() as server:
        yield server


def _shirts(suffix: str) -> tuple[str, str]:
    """Two SKUs with codes unique to this test (the Tryton database is shared)."""
    white, blue = f"SHIRT-W-{suffix}", f"SHIRT-B-{suffix}"
    catalog.create_product(
        title="Oxford shirt",
        options=["color"],
        skus=[
            {"code": white, "price": 12900, "attributes": {"color": "white"}, "stock": 10},
            {"code": blue, "price": 13900, "attributes": {"color": "blue"}, "stock": 10},
        ],
    )
    return white, blue


def _link_taobao(app: Flask, sandbox: TaobaoSandbox, white: str, blue: str) -> tuple[int, int]:
    """A Taobao item bound to our two SKUs; returns its (num_iid, sku id of ``white``)."""
    shop = link_shop(app, sandbox, "tb", codes=(white, blue))
    return shop.item.num_iid, shop.sku_id(white)


def test_tryton_round_trip_stock_in_order_out_shipment_back_to_taobao(
    app: Flask, running_tryton: TrytonServer, sandbox: TaobaoSandbox
) -> None:
    suffix = uuid.uuid4().hex[:6].upper()
    white, blue = _shirts(suffix)
    erp = TrytonClient(
        running_tryton.url,
        running_tryton.database,
        running_tryton.username,
        running_tryton.password,
    )
    warehouse = erp.warehouses()[0].id
    for code in (white, blue):
        erp.ensure_product(code, f"Oxford shirt {code}")
    channels.create(
        "tryton",
        "erp",
        settings={
            "url": running_tryton.url,
            "database": running_tryton.database,
            "username": running_tryton.username,
            "password": running_tryton.password,
            "carrier": "shunfeng",
        },
    )
    for code in (white, blue):
        channels.link("erp", code, external_item_id=code)
    num_iid, white_sku_id = _link_taobao(app, sandbox, white, blue)
    erp_id = channels.info("erp").id

    # Stock in: a stocktake in Tryton becomes our on-hand and reaches Taobao.
    erp.set_stock(white, 42, warehouse)
    erp.set_stock(blue, 7, warehouse)
    sync.run_channel_job(erp_id, "pull_stock", [])
    assert (inventory.available(white), inventory.available(blue)) == (42, 7)
    assert sandbox.quantity_of(num_iid, white_sku_id) == 42

    # Order out: a paid Taobao trade becomes our paid order, which goes to Tryton as a sale.
    trade = sandbox.add_trade([(num_iid, white_sku_id, 3)], paid=True)
    sync.sync_tick()
    session = get_state().session
    order = session.scalar(select(Order).where(Order.external_id == str(trade["tid"])))
    assert order is not None and order.status == "paid"
    binding = session.scalar(
        select(ChannelOrder).where(
            ChannelOrder.channel_id == erp_id, ChannelOrder.order_id == order.id
        )
    )
    assert binding is not None and binding.direction == "export"
    model, _, sale_id = binding.external_id.partition(":")
    assert model == "sale.sale"
    number = order.number
    session.rollback()

    # Shipment back: the warehouse ships it in Tryton with a waybill; we ship ours, and the
    # Taobao trade gets TOP's code for SF.
    (sale,) = erp.model("sale.sale", "read", [int(sale_id)], ["shipments", "reference"])
    assert sale["reference"] == number
    (shipment_id,) = sale["shipments"]
    erp.model("stock.shipment.out", "write", [shipment_id], {"reference": "SF2026112500001"})
    for button in ("assign_try", "pick", "pack", "ship", "do"):
        erp.model("stock.shipment.out", button, [shipment_id])
    sync.sync_tick()
    shipped = session.scalar(select(Order).where(Order.number == number))
    assert shipped is not None and shipped.status == "shipped"
    assert [(s.carrier, s.tracking_number) for s in shipped.shipments] == [
        ("shunfeng", "SF2026112500001")
    ]
    assert sandbox.shipment_of(trade["tid"]) == ("SF", "SF2026112500001")
    # Tryton counted the units out; our ledger committed them: the two agree.
    assert erp.stock_levels(warehouse, [white]) == {white: 39}
    assert inventory.available(white) == 39
    erp.http.close()


def test_jushuitan_stocktake_order_upload_shipment_and_token_renewal(
    app: Flask, jushuitan: JushuitanSandbox, sandbox: TaobaoSandbox
) -> None:
    white, blue = _shirts("J")
    channels.create("jushuitan", "jst", settings=jushuitan.settings_for_client())
    for code in (white, blue):
        channels.link("jst", code, external_item_id=code, external_sku_id=code)
    num_iid, white_sku_id = _link_taobao(app, sandbox, white, blue)
    jst_id = channels.info("jst").id

    jushuitan.set_stock(white, 25)
    jushuitan.set_stock(blue, 4)
    jushuitan.expire_token()  # the first call meets an expired token and renews it
    sync.run_channel_job(jst_id, "pull_stock", [])
    assert (inventory.available(white), inventory.available(blue)) == (25, 4)
    assert sandbox.quantity_of(num_iid, white_sku_id) == 25
    assert channels.info("jst").settings["access_token"] == jushuitan.access_token

    order = orders.place(channel="web", lines=[{"sku": white, "quantity": 2}])
    orders.mark_paid(order.number, amount=order.total, transaction_id="wx-1", provider="wechat")
    uploaded = jushuitan.orders()
    assert [(o["so_id"], o["items"][0]["sku_id"], o["items"][0]["qty"]) for o in uploaded] == [
        (order.number, white, 2)
    ]
    sync.run_channel_job(jst_id, "push_order", [order.number])  # again: nothing new
    assert len(jushuitan.orders()) == 1

    jushuitan.ship(order.number, "YTO", "YT9876543210")
    sync.run_channel_job(jst_id, "pull_shipments", [])
    shipped = get_state().session.scalar(select(Order).where(Order.number == order.number))
    assert shipped is not None and shipped.status == "shipped"
    assert [(s.carrier, s.tracking_number) for s in shipped.shipments] == [
        ("yuantong", "YT9876543210")
    ]
