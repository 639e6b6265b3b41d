"""A new channel with no change to the library: the example super-app package.

``examples/superapp_channel`` is installed in the test environment as its own distribution;
koudai finds its connector through the ``koudai_flask.connectors`` entry point only.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest
from flask import Flask
from koudai_superapp.sandbox import SuperAppSandbox

from koudai_flask.connectors.base import connector_class
from koudai_flask.errors import ValidationError
from koudai_flask.services import channels, inventory, orders


@pytest.fixture
def superapp() -> Iterator[SuperAppSandbox]:
    server = SuperAppSandbox()
    yield server
    server.stop()


def link_superapp(superapp: SuperAppSandbox, code: str = "SHIRT-W") -> str:
    listing = superapp.add_listing(code, 12900)
    channels.create("superapp", "mini", settings=superapp.settings_for_channel())
    channels.link("mini", code, external_item_id=listing.listing_id)
    return listing.listing_id


def test_the_connector_comes_from_the_packages_entry_point():
    found = {e.name: e.value for e in entry_points(group="koudai_flask.connectors")}
    assert found["superapp"] == "koudai_superapp.connector:SuperAppConnector"
    assert connector_class("superapp").__module__ == "koudai_superapp.connector"


def test_a_channel_without_its_secret_is_refused_and_not_created(app: Flask):
    with pytest.raises(ValidationError) as refused:
        channels.create("superapp", "mini", settings={"api_url": "http://127.0.0.1:1"})
    assert "app_id, app_secret" in str(refused.value)
    assert [c.name for c in channels.all_channels()] == ["web"]


def test_our_stock_is_published_to_the_mini_shop_and_follows_every_change(
    app: Flask, shirt, superapp
):
    listing_id = link_superapp(superapp)
    from koudai_flask.jobs.sync import schedule
    from koudai_flask.services import stock_sync

    stock_sync.mark_channel_dirty("mini")
    schedule(channels.info("mini").id, "push_stock")
    assert superapp.state.listings[listing_id].quantity == 10

    inventory.adjust("SHIRT-W", -3, reason="count")
    assert superapp.state.listings[listing_id].quantity == 7
    orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 2}])
    assert superapp.state.listings[listing_id].quantity == 5
    assert superapp.state.refused == 0


def test_a_wrong_secret_is_refused_by_the_super_app_and_nothing_is_published(
    app: Flask, shirt, superapp
):
    listing = superapp.add_listing("SHIRT-W", 12900)
    settings = {**superapp.settings_for_channel(), "app_secret": "not-the-secret"}
    channels.create("superapp", "mini", settings=settings)
    channels.link("mini", "SHIRT-W", external_item_id=listing.listing_id)
    from koudai_flask.jobs.sync import schedule
    from koudai_flask.services import stock_sync

    stock_sync.mark_channel_dirty("mini")
    schedule(channels.info("mini").id, "push_stock")
    assert superapp.state.refused >= 1
    assert listing.quantity == 0
    assert channels.info("mini").status == "auth_expired"


def test_the_super_app_sells_through_the_api_and_gets_the_shipment_back(
    app: Flask, shirt, superapp
):
    import requests

    from koudai_flask.connectors.sandbox.loopback import LoopbackServer
    from koudai_flask.models import Order
    from koudai_flask.services import api_keys, staff, stock_sync
    from koudai_flask.services.transaction import current_session

    listing_id = link_superapp(superapp)
    staff.grant("staff:owner", "owner", email="owner@shop.cn")
    key = api_keys.create(
        "staff:owner", "super-app", ["channels.manage", "orders.mark_paid"], channels=["mini"]
    )
    elsewhere = api_keys.create(
        "staff:owner", "web only", ["channels.manage", "orders.mark_paid"], channels=["web"]
    )
    stock_sync.mark_channel_dirty("mini")
    from koudai_flask.jobs.sync import schedule

    schedule(channels.info("mini").id, "push_stock")
    server = LoopbackServer(app)
    api = server.url + "/shop-api/v1"
    try:
        refused = superapp.sell(
            listing_id, 1, koudai_api=api, api_key=elsewhere.token, channel="mini"
        )
        assert refused.status_code == 404  # a key of another channel does not see this one
        assert inventory.available("SHIRT-W") == 10

        paid = superapp.sell(listing_id, 2, koudai_api=api, api_key=key.token, channel="mini")
        assert paid.status_code == 201, paid.text
        sale = list(superapp.state.orders.values())[-1]
        assert (paid.json()["status"], paid.json()["channel"]) == ("paid", "mini")
        assert paid.json()["external_id"] == sale.order_id
        # The shared ledger holds the two shirts, and the mini-shop shows what is left.
        assert inventory.available("SHIRT-W") == 8
        assert superapp.state.listings[listing_id].quantity == 8

        again = requests.post(  # the super-app retries its create call: the same order
            api + "/orders",
            json={
                "channel": "mini",
                "external_id": sale.order_id,
                "lines": [{"sku": "SHIRT-W", "quantity": 2, "unit_price": 12900}],
                "address": {
                    "name": "超级应用买家",
                    "phone": "13900139000",
                    "street": "滨江区网商路 699 号",
                },
            },
            headers={
                "Authorization": f"Bearer {key.token}",
                "Idempotency-Key": f"{sale.order_id}-retry",
            },
            timeout=10,
        )
        assert again.status_code == 201, again.text
        assert again.json()["number"] == sale.koudai_number
        session = current_session()
        session.expire_all()
        assert session.query(Order).filter_by(channel="mini").count() == 1
        session.rollback()
    finally:
        server.stop()

    orders.ship(sale.koudai_number, carrier="shunfeng", tracking_number="SF1234567890")
    assert sale.shipment == {"carrier": "shunfeng", "tracking_number": "SF1234567890"}
