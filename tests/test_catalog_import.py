"""Catalog import (商品上架) from a Taobao sandbox shop on loopback: products once, then updates."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.connectors.errors import TemporaryFailure
from koudai_flask.connectors.sandbox.taobao import SandboxItem, TaobaoSandbox
from koudai_flask.connectors.taobao.records import property_pairs
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.jobs import sync
from koudai_flask.jobs.catalog_import import (
    ImportReport,
    PictureFetcher,
    plain_text,
    progress,
    run_import,
    start_import,
)
from koudai_flask.models import (
    ChannelListing,
    Product,
    ProductImage,
    Sku,
    StockLevel,
    StockMovement,
)
from koudai_flask.services import catalog, channels, inventory, stock_sync, sync_log
from koudai_flask.services.catalog_import import ImportedItem, ImportedSku, import_item
from tests.sync_support import drain, rq_config
from tests.test_cli import invoke


@pytest.fixture
def sandbox() -> Iterator[TaobaoSandbox]:
    with TaobaoSandbox() as server:
        yield server


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def app(make_app: Any, database_url: str, media: Path) -> Iterator[Flask]:
    app = make_app(database_url, KOUDAI_MEDIA_FOLDER=str(media))
    with app.app_context():
        yield app


def link(sandbox: TaobaoSandbox, name: str = "tb") -> int:
    """A Taobao channel authorised on the sandbox shop, nothing bound yet."""
    grant = sandbox.issue_session()
    return channels.create(
        "taobao", name, settings=sandbox.settings_for_client(grant.access_token)
    ).id


def count(model: type, *where: Any) -> int:
    session = get_state().session
    session.expire_all()
    value = session.scalar(select(func.count()).select_from(model).where(*where))
    session.rollback()
    return int(value or 0)


def fen(price: str) -> int:
    return int(Decimal(price) * 100)


def code_of(item: SandboxItem, sku_id: int) -> str:
    outer = item.skus[sku_id].outer_id
    return outer or f"TB{item.num_iid}-{sku_id}"


def listing_of(channel_id: int, item: SandboxItem, sku_id: int) -> tuple[str, ChannelListing]:
    session = get_state().session
    row = session.execute(
        select(Sku.code, ChannelListing)
        .join(Sku, Sku.id == ChannelListing.sku_id)
        .where(
            ChannelListing.channel_id == channel_id,
            ChannelListing.external_item_id == str(item.num_iid),
            ChannelListing.external_sku_id == str(sku_id),
        )
    ).one()
    return row[0], row[1]


# -- the whole shop, three runs --------------------------------------------------------------


def test_a_200_item_shop_becomes_products_once_and_later_edits_update_only_those(
    app: Flask, sandbox: TaobaoSandbox, media: Path
) -> None:
    items = sandbox.seed_catalog(items=200, skus_per_item=3, seed=7)
    channel_id = link(sandbox)
    assert progress(channel_id)["state"] == "idle"

    assert start_import(channel_id) == "done"  # inline: the channel job runs now

    assert progress(channel_id) == {
        "state": "done",
        "done": 200,
        "total": 200,
        "created": 200,
        "updated": 0,
        "bound": 0,
        "unchanged": 0,
        "message": "200 of 200 item(s): 200 created, 0 updated, 0 bound, 0 unchanged",
    }
    assert count(Product) == 200
    assert count(Sku) == 600
    assert count(ChannelListing, ChannelListing.channel_id == channel_id) == 600
    assert count(ProductImage) == 400
    assert sandbox.calls["taobao.item.seller.get"] == 200
    # The bindings start in sync: the shop already shows our new on-hand, nothing is pushed.
    assert sandbox.calls["taobao.skus.quantity.update"] == 0
    assert stock_sync.dirty_channels() == []
    # Every SKU bound to its own Taobao SKU, coded by its outer_id or the generated code.
    bindings = get_state().session.execute(
        select(
            ChannelListing.external_item_id,
            ChannelListing.external_sku_id,
            Sku.code,
            ChannelListing.share,
            ChannelListing.buffer,
            ChannelListing.cap,
            StockLevel.on_hand - StockLevel.reserved,
        )
        .join(Sku, Sku.id == ChannelListing.sku_id)
        .join(StockLevel, StockLevel.sku_id == Sku.id)
        .where(ChannelListing.channel_id == channel_id)
    )
    assert sorted(tuple(row) for row in bindings) == sorted(
        (str(item.num_iid), str(sku_id), code_of(item, sku_id), Decimal(1), 0, None, sku.quantity)
        for item in items
        for sku_id, sku in item.skus.items()
    )
    assert count(StockMovement, StockMovement.source == "import:tb") == sum(
        1 for item in items for sku in item.skus.values() if sku.quantity
    )

    # A sampled item of each kind: attributes, prices, text and pictures exact.
    for item in (items[0], items[1]):
        session = get_state().session
        session.expire_all()
        code, _ = listing_of(channel_id, item, next(iter(item.skus)))
        sampled = session.scalar(select(Sku).where(Sku.code == code))
        assert sampled is not None
        product = sampled.product
        assert product.title == item.title
        assert product.description == plain_text(item.desc)
        assert product.description == item.desc.replace("</p><p>", "\n")[3:-4]
        assert product.options == ["颜色分类", "尺码"]
        assert sorted((s.code, s.attributes, s.price) for s in product.skus) == sorted(
            (code_of(item, sku_id), dict(property_pairs(sku.properties_name)), fen(sku.price))
            for sku_id, sku in item.skus.items()
        )
        assert [image.position for image in product.images] == [0, 1]
        served = [requests.get(url, timeout=5).content for url in item.item_imgs]
        assert [(media / image.path).read_bytes() for image in product.images] == served
    assert items[0].outer_id and not items[1].outer_id  # odd items carry merchant codes
    assert code_of(items[0], next(iter(items[0].skus))).startswith("KD7-00001-")

    # Right away again: every listing says "not modified since", nothing is fetched.
    report = run_import(channel_id)
    assert (report.created, report.updated, report.bound, report.unchanged) == (0, 0, 0, 200)
    assert sandbox.calls["taobao.item.seller.get"] == 200
    assert (count(Product), count(Sku), count(ProductImage)) == (200, 600, 400)

    # The seller edits three items on Taobao: a title, a SKU price, both.
    retitled, repriced, both = items[10], items[11], items[12]
    price_sku, both_sku = next(iter(repriced.skus)), list(both.skus)[2]
    sandbox.edit_item(retitled.num_iid, title="新款纯棉T恤 New cotton tee")
    sandbox.edit_item(repriced.num_iid, sku_prices={price_sku: "88.50"})
    sandbox.edit_item(both.num_iid, title="加厚卫衣 Warm hoodie", sku_prices={both_sku: "199.00"})

    report = run_import(channel_id)
    assert (report.created, report.updated, report.bound, report.unchanged) == (0, 3, 0, 197)
    assert sandbox.calls["taobao.item.seller.get"] == 203
    assert (count(Product), count(Sku), count(ProductImage)) == (200, 600, 400)
    session = get_state().session
    session.expire_all()
    price_row = session.scalar(select(Sku).where(Sku.code == code_of(repriced, price_sku)))
    assert price_row is not None and price_row.price == 8850
    both_row = session.scalar(select(Sku).where(Sku.code == code_of(both, both_sku)))
    assert both_row is not None and both_row.price == 19900
    assert both_row.product.title == "加厚卫衣 Warm hoodie"
    first = session.scalar(
        select(Sku).where(Sku.code == code_of(retitled, next(iter(retitled.skus))))
    )
    assert first is not None and first.product.title == "新款纯棉T恤 New cotton tee"
    assert progress(channel_id)["state"] == "done"
    assert progress(channel_id)["updated"] == 3


# -- matching ours ---------------------------------------------------------------------------


def test_an_item_whose_outer_id_is_our_sku_is_bound_not_duplicated(
    app: Flask, sandbox: TaobaoSandbox
) -> None:
    catalog.create_product(
        title="Oxford shirt",
        options=["color"],
        skus=[
            {"code": "SHIRT-W", "price": 12900, "attributes": {"color": "white"}, "stock": 10},
            {"code": "SHIRT-B", "price": 13900, "attributes": {"color": "blue"}, "stock": 10},
        ],
    )
    shirt = sandbox.add_item(
        "牛津纺衬衫 Oxford shirt",
        "129.00",
        outer_id="SHIRT",
        skus=[
            {
                "properties_name": "1627207:28320:颜色分类:白色",
                "quantity": 3,
                "outer_id": "SHIRT-W",
            },
            {
                "properties_name": "1627207:28335:颜色分类:绿色",
                "quantity": 4,
                "outer_id": "SHIRT-G",
            },
        ],
    )
    other = sandbox.add_item("帆布托特包 Canvas tote", "59.00", 30, outer_id="TOTE-1")
    channel_id = link(sandbox)

    report = run_import(channel_id)

    assert (report.created, report.updated, report.bound, report.unchanged) == (1, 0, 1, 0)
    assert count(Product) == 2  # our shirt (now with the green SKU) and the new tote
    white, green = (s.sku_id for s in shirt.skus.values())
    assert listing_of(channel_id, shirt, white)[0] == "SHIRT-W"
    assert listing_of(channel_id, shirt, green)[0] == "SHIRT-G"
    session = get_state().session
    green_row = session.scalar(select(Sku).where(Sku.code == "SHIRT-G"))
    assert green_row is not None and green_row.product.title == "Oxford shirt"
    assert green_row.attributes == {"color": "", "颜色分类": "绿色"}
    # Ours keeps our stock; the new SKU starts at Taobao's. Taobao shows 3 of our 10 white
    # shirts, so that listing is marked and the next push publishes ours.
    assert (inventory.available("SHIRT-W"), inventory.available("SHIRT-G")) == (10, 4)
    assert stock_sync.dirty_channels() == [channel_id]
    # An item without SKUs is one SKU coded by its outer_id, bound without a SKU id.
    tote = session.scalar(select(Sku).where(Sku.code == "TOTE-1"))
    assert tote is not None and tote.attributes == {} and tote.price == 5900
    assert inventory.available("TOTE-1") == 30
    listing = session.scalar(select(ChannelListing).where(ChannelListing.sku_id == tote.id))
    assert listing is not None
    assert (listing.external_item_id, listing.external_sku_id) == (str(other.num_iid), "")

    again = run_import(channel_id)
    assert (again.created, again.updated, again.bound, again.unchanged) == (0, 0, 0, 2)
    assert (count(Product), count(Sku)) == (2, 4)
    assert sync.run_channel_job(channel_id, "push_stock", []) == 1
    assert sandbox.quantity_of(shirt.num_iid, white) == 10
    assert stock_sync.dirty_channels() == []


def test_a_second_shop_with_the_same_items_binds_the_generated_codes(
    app: Flask, sandbox: TaobaoSandbox
) -> None:
    sandbox.seed_catalog(items=4, skus_per_item=2, seed=3)
    first, second = link(sandbox, "tb"), link(sandbox, "tb-copy")
    run_import(first)

    report = run_import(second)

    assert (report.created, report.bound) == (0, 4)
    assert (count(Product), count(Sku)) == (4, 8)
    assert count(ChannelListing, ChannelListing.channel_id == second) == 8


# -- failures --------------------------------------------------------------------------------


def test_a_run_cut_off_midway_resumes_without_creating_anything_twice(
    app: Flask, sandbox: TaobaoSandbox
) -> None:
    sandbox.seed_catalog(items=12, skus_per_item=2, seed=4)
    channel_id = link(sandbox)

    def cut(report: ImportReport) -> None:
        if report.done == 5:
            sandbox.fail_next(1, "isp", method="taobao.item.seller.get")

    with pytest.raises(TemporaryFailure, match="isp.top-remote-connection-timeout"):
        run_import(channel_id, on_progress=cut)

    state = progress(channel_id)
    assert (state["state"], state["done"], state["total"], state["created"]) == (
        "failed",
        5,
        12,
        5,
    )
    assert state["message"].startswith("TemporaryFailure: taobao taobao.item.seller.get")
    assert count(Product) == 5
    report = run_import(channel_id)
    assert (report.created, report.unchanged) == (7, 5)
    assert (count(Product), count(Sku), count(ProductImage)) == (12, 24, 24)


def test_bad_items_are_refused_whole(app: Flask, sandbox: TaobaoSandbox) -> None:
    link(sandbox)
    sku = ImportedSku(1, "A-1", (("颜色分类", "红色"),), 100, 1)
    good = ImportedItem(9, "Tee", "", 100, None, (sku,))
    with pytest.raises(ValidationError, match="item 9: skus"):
        import_item("tb", ImportedItem(9, "Tee", "", 100, None, ()))
    with pytest.raises(ValidationError, match="item 9: price"):
        import_item("tb", ImportedItem(9, "Tee", "", 100, None, (ImportedSku(1, "", (), -1, 0),)))
    with pytest.raises(ValidationError, match="picture 'x.png' is not an image"):
        import_item("tb", ImportedItem(9, "Tee", "", 100, None, (sku,), ((b"<html>", "x.png"),)))
    with pytest.raises(NotFound):
        import_item("nowhere", good)
    assert (count(Product), count(Sku), count(StockMovement)) == (0, 0, 0)
    assert import_item("tb", good).outcome == "created"


def test_pictures_gone_or_too_large_are_left_out(sandbox: TaobaoSandbox) -> None:
    item = sandbox.add_item("Tee", "10.00", 1, pictures=1)
    fetcher = PictureFetcher()
    try:
        picture = fetcher.fetch(item.pic_url)
        assert picture is not None and picture[0][:8] == b"\x89PNG\r\n\x1a\n"
        assert picture[1] == item.pic_url.rsplit("/", 1)[1]
        assert fetcher.fetch(f"{sandbox.url}/img/missing.png") is None
        assert fetcher.fetch("file:///etc/passwd") is None
        assert PictureFetcher(limit=100).fetch(item.pic_url) is None
    finally:
        fetcher.close()
    with socket.socket() as closed:  # a port nobody listens on any more
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(TemporaryFailure, match="ConnectionError"):
        PictureFetcher().fetch(f"http://127.0.0.1:{port}/img/a.png")


def test_a_taobao_description_becomes_plain_text() -> None:
    html = '<div>A &amp; B<br>C <script>x()</script></div><p>  </p><img src="a.jpg"><p>D  E</p>'
    assert plain_text(html) == "A & B\nC\nD E"


def test_only_taobao_channels_import(app: Flask) -> None:
    web_id = channels.info("web").id
    with pytest.raises(ValidationError, match="channel web is a web channel"):
        start_import(web_id)
    with pytest.raises(ValidationError, match="channel web is a web channel"):
        run_import(web_id)
    assert progress(web_id)["state"] == "idle"


# -- the command and the queue ---------------------------------------------------------------


def test_the_command_imports_with_counts_and_refuses_an_unknown_channel(
    app: Flask, sandbox: TaobaoSandbox
) -> None:
    sandbox.seed_catalog(items=4, skus_per_item=2, seed=5)
    link(sandbox)

    result = invoke(app, "import", "--channel", "tb")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "tb: 4 item(s): 4 created, 0 updated, 0 bound, 0 unchanged"
    )
    assert count(Product) == 4

    again = invoke(app, "import", "--channel", "tb")
    assert again.stdout.splitlines()[-1] == (
        "tb: 4 item(s): 0 created, 0 updated, 0 bound, 4 unchanged"
    )

    unknown = invoke(app, "import", "--channel", "nope")
    assert unknown.exit_code == 2
    assert unknown.stdout == ""
    assert unknown.stderr == "error: no channel named 'nope' (Taobao channels: tb)\n"

    web = invoke(app, "import", "--channel", "web")
    assert web.exit_code == 2
    assert web.stderr == (
        "error: channel web is a web channel: only Taobao catalogs can be imported\n"
    )


def test_on_rq_the_import_runs_on_the_channel_queue_in_batches(
    make_app: Any, database_url: str, redis_url: str, media: Path, sandbox: TaobaoSandbox
) -> None:
    app = make_app(database_url, KOUDAI_MEDIA_FOLDER=str(media), **rq_config(redis_url))
    sandbox.seed_catalog(items=15, skus_per_item=2, seed=6)
    with app.app_context():
        channel_id = link(sandbox)
        channels.update_settings("tb", {"import_batch": 4})
        assert start_import(channel_id) == "running"
        assert progress(channel_id) == ImportReport().as_progress("running", "waiting for a worker")
        assert count(Product) == 0
    drain(app)
    with app.app_context():
        assert progress(channel_id) == ImportReport(total=15, done=15, created=15).as_progress(
            "done", "15 of 15 item(s): 15 created, 0 updated, 0 bound, 0 unchanged"
        )
        assert (count(Product), count(Sku)) == (15, 30)
    # Four runs of 4, 4, 4 and 3 items, each listing the shop once and fetching its own.
    assert sandbox.calls["taobao.items.onsale.get"] == 4
    assert sandbox.calls["taobao.item.seller.get"] == 15


def test_inline_a_failed_import_is_a_dead_letter_with_its_reason(
    app: Flask, sandbox: TaobaoSandbox
) -> None:
    sandbox.seed_catalog(items=3, skus_per_item=1, seed=8)
    channel_id = link(sandbox)
    sandbox.fail_next(1, "isv", method="taobao.items.onsale.get")

    assert start_import(channel_id) == "failed"

    state = progress(channel_id)
    assert state["message"].startswith("PermanentFailure: taobao taobao.items.onsale.get")
    assert (state["done"], state["total"]) == (0, 0)
    letters = sync_log.dead_letters("tb")
    assert [(letter.job, letter.arguments) for letter in letters] == [("import_catalog", [])]
    assert count(Product) == 0

    sync.requeue(letters[0].id, by="test")
    assert progress(channel_id)["state"] == "done"
    assert count(Product) == 3
