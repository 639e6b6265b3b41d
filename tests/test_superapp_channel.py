"""A new channel with no change to the library: the example super-app package.

``examples/superapp_channel`` is installed in the test environment as its own distribution;
koudai finds its connector through the ``koudai_flask.connectors`` entry point only.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest
from flask import Flask

from koudai_flask.connectors.base import connector_class
from koudai_flask.errors import ValidationError
from koudai_flask.services import channels, inventory, orders
from koudai_superapp.sandbox import SuperAppSandbox


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
