"""The Taobao TOP sandbox as a stand-in a sync engine is tested against: generated catalogue,
pictures it serves, TMC messages for every stock and trade change, duplicated and shuffled
deliveries, fault switches, and the seller's stock page with its buy and set-stock forms."""

from __future__ import annotations

import struct
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox, TopError
from koudai_flask.connectors.sandbox.taobao.images import png_bytes
from koudai_flask.connectors.sandbox.taobao.state import TmcEntry, shuffled
from koudai_flask.connectors.taobao import TaobaoAdapter
from koudai_flask.connectors.taobao.client import parse_time
from tests.taobao_support import ClientFactory, adapter, make_client, sandbox, session

__all__ = ["adapter", "make_client", "sandbox", "session"]  # the fixtures these tests use

STOCK = "taobao_item_ItemStockChanged"
NICK = "sandbox_koudai_shop"


def shirt(sandbox: TaobaoSandbox) -> int:
    return sandbox.add_item(
        "牛津纺衬衫",
        "129.00",
        outer_id="SHIRT",
        num_iid=8001,
        skus=[
            {"sku_id": 501, "properties_name": "1627207:28320:颜色分类:白色", "quantity": 10},
            {"sku_id": 502, "properties_name": "1627207:28338:颜色分类:蓝色", "quantity": 8},
        ],
    ).num_iid


def stock_change(num_iid: int, increment: int, num: int, sku: tuple[int, int] | None = None) -> Any:
    content: dict[str, Any] = {"num_iid": num_iid, "nick": NICK}
    if sku is not None:
        content.update(sku_id=sku[0], sku_num=sku[1])
    content.update(num=num, increment=increment)
    content["changed_fields"] = "num,sku_num" if sku is not None else "num"
    return (STOCK, content)


# -- the generated catalogue -----------------------------------------------------------------


def facts(items: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            i.num_iid,
            i.title,
            i.price,
            i.num,
            i.outer_id,
            i.cid,
            i.props_name,
            i.modified,
            [path(u) for u in i.item_imgs],
            [
                (s.sku_id, s.properties_name, s.quantity, s.price, s.outer_id)
                for s in i.skus.values()
            ],
        )
        for i in items
    ]


def path(url: str) -> str:
    return urlsplit(url).path


def test_seed_catalog_is_deterministic_and_mixed(sandbox: TaobaoSandbox) -> None:
    moment = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    items = sandbox.seed_catalog(items=200, skus_per_item=3, seed=5, modified=moment)
    other = TaobaoSandbox()
    try:
        assert facts(other.seed_catalog(200, 3, seed=5, modified=moment)) == facts(items)
        assert (
            facts(other.seed_catalog(200, 3, seed=6, modified=moment))[0][1:] != facts(items)[0][1:]
        )
    finally:
        other.stop()
    assert [i.num_iid for i in items] == list(range(100_005_000_001, 100_005_000_201))
    first = items[0]
    assert list(first.skus) == [first.num_iid * 100 + k for k in (1, 2, 3)]
    assert first.num == sum(s.quantity for s in first.skus.values())
    assert first.modified == "2026-03-01 08:00:00"  # GMT+8
    # Odd items carry outer ids on the item and every SKU; even ones none at all.
    coded = [i for i in items if i.outer_id]
    assert [i.num_iid % 2 for i in coded] == [1] * 100
    assert all(s.outer_id.startswith(i.outer_id + "-") for i in coded for s in i.skus.values())
    assert {s.outer_id for i in items if not i.outer_id for s in i.skus.values()} == {""}
    skus = [s for i in items for s in i.skus.values()]
    assert len(skus) == 600
    assert all(len({s.properties for s in i.skus.values()}) == 3 for i in items)  # distinct
    assert Counter(s.quantity == 0 for s in skus)[True] == 63  # some SKUs are sold out
    assert len({i.title for i in items}) == 200 and len({i.price for i in items}) > 50
    assert sum(len(i.item_imgs) for i in items) == 400
    assert sandbox.published() == []  # seeding is the shop as it was: no messages


def test_seed_catalog_refuses_bad_arguments(sandbox: TaobaoSandbox) -> None:
    sandbox.seed_catalog(items=2, seed=1)
    with pytest.raises(ValueError, match="seed 1 was already used"):
        sandbox.seed_catalog(items=2, seed=1)
    with pytest.raises(ValueError, match=r"skus_per_item is 0\.\.36"):
        sandbox.seed_catalog(items=1, skus_per_item=37, seed=2)
    with pytest.raises(ValueError, match="items"):
        sandbox.seed_catalog(items=-1, seed=2)
    assert len(sandbox.state.items) == 2
    no_skus = sandbox.seed_catalog(items=3, skus_per_item=0, seed=2)
    assert [i.skus for i in no_skus] == [{}, {}, {}]


def test_edit_item_moves_modified_forward(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    moment = datetime.now(UTC) + timedelta(hours=1)  # later than "now": the edit must pass it
    item = sandbox.seed_catalog(items=1, skus_per_item=2, seed=9, modified=moment)[0]
    before = parse_time(item.modified)
    sku_id = next(iter(item.skus))
    edited = sandbox.edit_item(
        item.num_iid,
        title="新标题 New title",
        price="88.50",
        desc="<p>新</p>",
        sku_prices={sku_id: "90.00"},
        sku_outer_ids={sku_id: "NEW-1"},
    )
    assert parse_time(edited.modified) == before + timedelta(seconds=1)
    seen = adapter.item(item.num_iid)
    assert (seen.title, seen.price, seen.desc, seen.modified) == (
        "新标题 New title",
        "88.50",
        "<p>新</p>",
        before + timedelta(seconds=1),
    )
    assert (seen.skus[0].price, seen.skus[0].outer_id, seen.skus[0].modified) == (
        "90.00",
        "NEW-1",
        before + timedelta(seconds=1),
    )
    # Bad values change nothing at all.
    for bad in ({"price": "12.345"}, {"sku_prices": {1: "9.00"}}, {"approve_status": "gone"}):
        with pytest.raises(ValueError):
            sandbox.edit_item(item.num_iid, title="不该生效", **bad)
    with pytest.raises(TopError, match="isv.item-not-exist"):
        sandbox.edit_item(404, title="x")
    assert adapter.item(item.num_iid).title == "新标题 New title"
    old_pictures = seen.item_imgs
    sandbox.edit_item(item.num_iid, pictures=1, approve_status="instock")
    assert adapter.items_onsale().total_results == 0  # delisted
    new_pictures = adapter.item(item.num_iid).item_imgs
    assert len(new_pictures) == 1 and new_pictures[0] not in old_pictures
    assert requests.get(new_pictures[0], timeout=5).status_code == 200
    assert sandbox.published() == []


# -- pictures --------------------------------------------------------------------------------


def test_pictures_are_served_by_the_sandbox(sandbox: TaobaoSandbox) -> None:
    items = sandbox.seed_catalog(items=3, skus_per_item=1, seed=3, pictures=2)
    urls = [url for item in items for url in item.item_imgs]
    assert len(urls) == 6 and all(u.startswith(f"{sandbox.url}/img/") for u in urls)
    bodies = []
    for url in urls:
        answer = requests.get(url, timeout=5)
        assert (answer.status_code, answer.headers["Content-Type"]) == (200, "image/png")
        assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", answer.content[16:24]) == (48, 48)  # IHDR width, height
        bodies.append(answer.content)
    assert len(set(bodies)) == 6  # each picture is its own
    assert bodies[0] == png_bytes(path(urls[0]).removeprefix("/img/").removesuffix(".png"))
    assert requests.get(f"{sandbox.url}/img/unknown-1.png", timeout=5).status_code == 404
    assert requests.get(f"{sandbox.url}/img/..%2Fx.png", timeout=5).status_code == 404
    with pytest.raises(ValueError, match="picture name"):
        png_bytes("../etc")


# -- TMC: every stock change, every trade step -----------------------------------------------


def test_every_stock_change_publishes_item_stock_changed(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    tote = sandbox.add_item("帆布包", "59.00", 30, num_iid=7001).num_iid
    num_iid = shirt(sandbox)
    sandbox.set_quantity(tote, 25)  # the seller, in Taobao's back office
    sandbox.set_quantity(tote, 25)  # no change: no message
    adapter.update_item_quantity(tote, 20)  # our own push: TOP publishes it too
    adapter.update_item_quantity(num_iid, 3, sku_id=501, type=2)
    adapter.update_skus_quantity(num_iid, {501: 4, 502: 8})  # 502 unchanged
    with pytest.raises(PermanentFailure):
        adapter.update_skus_quantity(num_iid, {501: 1, 502: -1})  # refused whole
    assert sandbox.published() == [
        stock_change(tote, -5, 25),
        stock_change(tote, -5, 20),
        stock_change(num_iid, 3, 21, (501, 13)),
        stock_change(num_iid, -9, 12, (501, 4)),
    ]
    consumed = adapter.tmc_consume()
    assert [(m.topic, dict(m.content)) for m in consumed] == sandbox.published()


def test_trade_steps_publish_their_messages(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = shirt(sandbox)
    trade = sandbox.add_trade([(num_iid, 502, 2)], paid=False, buyer_nick="买家", tid=9100)
    assert (trade["status"], sandbox.quantity_of(num_iid, 502)) == ("WAIT_BUYER_PAY", 6)
    sandbox.pay_trade(9100)
    assert adapter.offline_send(9100, "SF1234", "SF") is True
    sandbox.finish_trade(9100)
    with pytest.raises(TopError, match="isv.trade-status-error"):
        sandbox.close_trade(9100)  # a finished trade stays finished
    content = {
        "tid": 9100,
        "oid": trade["orders"]["order"][0]["oid"],
        "buyer_nick": "买家",
        "seller_nick": NICK,
        "payment": "258.00",
        "type": "guarantee_trade",
    }
    expected = [
        ("taobao_trade_TradeCreate", content),
        stock_change(num_iid, -2, 16, (502, 6)),
        ("taobao_trade_TradeBuyerPay", content),
        ("taobao_trade_TradeSellerShip", content),
        ("taobao_trade_TradeSuccess", content),
    ]
    assert [(m.topic, dict(m.content)) for m in adapter.tmc_consume()] == expected
    finished = adapter.trade(9100)
    assert (finished.status, finished.pay_time is not None) == ("TRADE_FINISHED", True)
    assert finished.orders[0].sku_properties_name == "颜色分类:蓝色"


def test_closing_gives_the_stock_back(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = shirt(sandbox)
    unpaid = sandbox.add_trade([(num_iid, 501, 3)], paid=False, tid=9200)["tid"]
    paid = sandbox.add_trade([(num_iid, 501, 1), (num_iid, 502, 1)], tid=9201)["tid"]
    assert (sandbox.quantity_of(num_iid, 501), sandbox.quantity_of(num_iid, 502)) == (6, 7)
    first = len(sandbox.published())
    sandbox.close_trade(unpaid)
    sandbox.close_trade(paid)
    sandbox.close_trade(paid)  # again: nothing more
    assert (sandbox.quantity_of(num_iid, 501), sandbox.quantity_of(num_iid, 502)) == (10, 8)
    assert [(t, c.get("tid"), c.get("increment")) for t, c in sandbox.published()[first:]] == [
        ("taobao_trade_TradeClose", 9200, None),
        (STOCK, None, 3),
        ("taobao_trade_TradeClose", 9201, None),
        (STOCK, None, 1),
        (STOCK, None, 1),
    ]
    assert adapter.trade(unpaid).status == "TRADE_CLOSED_BY_TAOBAO"
    assert adapter.trade(paid).status == "TRADE_CLOSED"


def test_a_trade_is_all_or_nothing(sandbox: TaobaoSandbox) -> None:
    num_iid = shirt(sandbox)
    for lines, problem in [
        ([(num_iid, 501, 2), (num_iid, 502, 9)], "isv.item-quantity-not-enough"),
        ([(num_iid, 501, 6), (num_iid, 501, 5)], "isv.item-quantity-not-enough"),
        ([(num_iid, 501, 1), (num_iid, None, 1)], "isv.item-sku-not-exist"),
        ([(num_iid, 501, 1), (404, None, 1)], "isv.item-not-exist"),
        ([(num_iid, 501, 0)], "isv.invalid-parameter"),
        ([], "isv.invalid-parameter"),
    ]:
        with pytest.raises(TopError) as caught:
            sandbox.add_trade(lines)
        assert caught.value.sub_code == problem
    assert (sandbox.quantity_of(num_iid, 501), sandbox.quantity_of(num_iid, 502)) == (10, 8)
    assert (sandbox.state.trades, sandbox.published()) == ({}, [])


# -- TMC: duplicated, shuffled, redelivered ----------------------------------------------------


def test_duplicate_next_delivers_messages_twice(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    ids = [sandbox.publish("taobao_trade_TradeChanged", {"tid": n}).id for n in range(12)]
    sandbox.duplicate_next(2)
    batch = adapter.tmc_consume(quantity=10)
    # The first two come twice, each copy right after it; the batch stays within quantity.
    assert [m.id for m in batch] == [ids[0], ids[0], ids[1], ids[1], *ids[2:8]]
    assert batch[0] == batch[1]
    assert [m.id for m in adapter.tmc_consume()] == ids[8:]  # no more copies
    assert adapter.tmc_confirm(ids) is True
    sandbox.advance(31)
    assert adapter.tmc_consume() == []


def test_shuffle_next_changes_the_order_of_one_batch(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    ids = [sandbox.publish("taobao_trade_TradeChanged", {"tid": n}).id for n in range(6)]
    sandbox.shuffle_next(seed=1)
    sandbox.duplicate_next(1)
    batch = [m.id for m in adapter.tmc_consume()]
    assert batch != [ids[0], *ids] and sorted(batch) == sorted([ids[0], *ids])
    sandbox.advance(31)
    assert [m.id for m in adapter.tmc_consume()] == ids  # the next batch is in order again


def test_shuffled_is_never_the_delivery_order() -> None:
    entries = [TmcEntry(n, "t", "{}", "", "k") for n in (1, 2)]
    for seed in range(20):
        assert [e.id for e in shuffled(entries, seed)] == [2, 1]
    same = [TmcEntry(1, "t", "{}", "", "k")] * 2  # a duplicated pair cannot change order
    assert shuffled(same, 0) == same


def test_unconfirmed_messages_come_back_after_the_visibility_timeout(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    sandbox.set_quantity(num_iid, 29)
    sandbox.set_quantity(num_iid, 28)
    first = adapter.tmc_consume()
    assert [m.content["num"] for m in first] == [29, 28]
    adapter.tmc_confirm([first[1].id])
    assert adapter.tmc_consume() == []
    sandbox.advance(30)  # exactly the timeout: due again
    assert [m.id for m in adapter.tmc_consume()] == [first[0].id]


# -- fault switches --------------------------------------------------------------------------


def test_ban_refuses_every_call_until_it_ends(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    sandbox.fail_next(1, "ban", seconds=20)
    for _ in range(3):
        with pytest.raises(RateLimited, match="This ban will last for 20 more seconds") as caught:
            adapter.items_onsale()
        assert caught.value.retry_after == 21.0
    sandbox.advance(10)
    with pytest.raises(RateLimited, match="last for 10 more seconds"):
        adapter.tmc_consume()
    sandbox.advance(10)
    assert adapter.items_onsale().total_results == 0
    assert sandbox.calls["taobao.items.onsale.get"] == 4


def test_rate_limit_takes_its_own_seconds_and_targets_a_method(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    sandbox.fail_next(1, "rate_limit", seconds=42, method="taobao.item.quantity.update")
    sandbox.fail_next(1, "5xx", method="taobao.item.quantity.update")
    assert adapter.items_onsale().total_results == 1  # other methods pass
    with pytest.raises(RateLimited) as caught:
        adapter.update_item_quantity(num_iid, 5)
    assert caught.value.retry_after == 43.0
    with pytest.raises(TemporaryFailure, match="HTTP 502"):
        adapter.update_item_quantity(num_iid, 5)
    assert sandbox.quantity_of(num_iid) == 30  # refused calls changed nothing
    assert adapter.update_item_quantity(num_iid, 5).num == 5


@pytest.mark.parametrize(
    ("kind", "error", "text"),
    [
        ("session_expired", AuthExpired, "error 27 Invalid session (session-expired"),
        ("isp", TemporaryFailure, "isp.top-remote-connection-timeout"),
        ("bad_json", TemporaryFailure, "answer is not JSON"),
    ],
)
def test_fault_kinds_on_a_stock_push(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter, kind: str, error: type, text: str
) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    sandbox.fail_next(1, kind, method="taobao.item.quantity.update")
    with pytest.raises(error, match=text.replace("(", r"\(")):
        adapter.update_item_quantity(num_iid, 5)
    assert (sandbox.quantity_of(num_iid), sandbox.published()) == (30, [])


def test_slow_answers_and_timeouts(sandbox: TaobaoSandbox, make_client: ClientFactory) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    impatient = TaobaoAdapter(make_client(timeout=0.2))
    patient = TaobaoAdapter(make_client(timeout=5.0))
    sandbox.fail_next(1, "slow", seconds=0.6)
    with pytest.raises(TemporaryFailure, match="timed out after 0.2s"):
        impatient.items_onsale()
    sandbox.fail_next(1, "slow", seconds=0.3)
    assert patient.items_onsale().total_results == 1  # slow, but a full answer
    # A timed-out update may still land: the gateway runs it after the caller gave up.
    sandbox.fail_next(1, "timeout", seconds=0.6)
    with pytest.raises(TemporaryFailure, match="timed out"):
        impatient.update_item_quantity(num_iid, 7)
    deadline = time.monotonic() + 10
    while sandbox.quantity_of(num_iid) != 7 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.published() == [stock_change(num_iid, -23, 7)]


def test_fail_next_refuses_unknown_kinds(sandbox: TaobaoSandbox) -> None:
    with pytest.raises(ValueError, match="fault kind is one of"):
        sandbox.fail_next(1, "gremlins")
    with pytest.raises(ValueError, match="n >= 0"):
        sandbox.fail_next(-1, "5xx")
    with pytest.raises(ValueError, match="duplicate_next"):
        sandbox.duplicate_next(-1)
    assert sandbox.state.faults == []


# -- the stock page ----------------------------------------------------------------------------


def test_stock_page_and_its_json(sandbox: TaobaoSandbox) -> None:
    tote, shirt_item, _ = sandbox.seed_demo()
    page = requests.get(sandbox.url + "/", timeout=5)
    assert page.status_code == 200
    assert "帆布托特包 Canvas tote" in page.text and "蓝色" in page.text
    assert f'data-stock="{tote.num_iid}:">30</span>' in page.text
    blue = next(s for s in shirt_item.skus.values() if s.outer_id == "SHIRT-B")
    assert f'data-stock="{shirt_item.num_iid}:{blue.sku_id}">8</span>' in page.text
    assert f'<b data-stock="{shirt_item.num_iid}">18</b>' in page.text  # the item's total
    assert f'<img src="{shirt_item.pic_url}"' in page.text
    assert (
        'fetch(url, {cache: "no-store"})' in page.text and "setInterval(refresh, 1000)" in page.text
    )
    assert page.text.count('action="/sandbox/buy"') == 5  # one per SKU, one for the plain item
    assert page.text.count('action="/sandbox/set-quantity"') == 5
    feed = requests.get(sandbox.url + "/sandbox/stock.json", timeout=5).json()
    assert feed["trades"] == []
    assert feed["items"][0] == {"num_iid": tote.num_iid, "num": 30, "skus": []}
    assert feed["items"][1] == {
        "num_iid": shirt_item.num_iid,
        "num": 18,
        "skus": [{"sku_id": s.sku_id, "quantity": s.quantity} for s in shirt_item.skus.values()],
    }


def test_buy_on_the_stock_page_makes_a_paid_trade(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    _, shirt_item, _ = sandbox.seed_demo()
    blue = next(s for s in shirt_item.skus.values() if s.outer_id == "SHIRT-B")
    form = {"num_iid": shirt_item.num_iid, "sku_id": blue.sku_id, "num": 2, "page": 1}
    answer = requests.post(
        f"{sandbox.url}/sandbox/buy", data=form, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 303
    [trade] = sandbox.state.trades.values()
    done = parse_qs(urlsplit(answer.headers["Location"]).query)["done"][0]
    assert done == f"已下单并付款 · trade {trade['tid']} created and paid (¥258.00)"
    assert sandbox.quantity_of(shirt_item.num_iid, blue.sku_id) == 6
    assert [m.topic for m in adapter.tmc_consume()] == [
        "taobao_trade_TradeCreate",
        STOCK,
        "taobao_trade_TradeBuyerPay",
    ]
    assert adapter.trade(trade["tid"]).status == "WAIT_SELLER_SEND_GOODS"
    after = requests.get(sandbox.url + answer.headers["Location"], timeout=5)
    assert done in after.text and f"<td>{trade['tid']}</td>" in after.text
    assert f'data-stock="{shirt_item.num_iid}:{blue.sku_id}">6</span>' in after.text
    feed = requests.get(sandbox.url + "/sandbox/stock.json", timeout=5).json()
    assert feed["trades"] == [
        {
            "tid": trade["tid"],
            "status": "WAIT_SELLER_SEND_GOODS",
            "payment": "258.00",
            "buyer_nick": "sandbox_buyer",
            "refund": "NO_REFUND",
            "actions": ["ask"],
        }
    ]


def test_the_stock_page_plays_a_refund_asked_and_agreed(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    _, shirt_item, _ = sandbox.seed_demo()
    blue = next(s for s in shirt_item.skus.values() if s.outer_id == "SHIRT-B")
    trade = sandbox.add_trade([(shirt_item.num_iid, blue.sku_id, 2)], paid=True)
    adapter.tmc_consume()  # what the purchase published

    def press(action: str) -> requests.Response:
        form = {"tid": trade["tid"], "action": action, "page": 1}
        return requests.post(
            f"{sandbox.url}/sandbox/refund", data=form, allow_redirects=False, timeout=5
        )

    page = requests.get(sandbox.url, timeout=5).text
    assert 'value="ask">买家申请退款 Ask refund</button>' in page
    assert press("agree").status_code == 400  # nothing asked yet
    assert press("ask").status_code == 303
    feed = requests.get(sandbox.url + "/sandbox/stock.json", timeout=5).json()
    assert (feed["trades"][0]["refund"], feed["trades"][0]["actions"]) == (
        "WAIT_SELLER_AGREE",
        ["agree", "refuse"],
    )
    assert press("agree").status_code == 303
    assert adapter.trade(trade["tid"]).status == "TRADE_CLOSED"
    assert [m.topic for m in adapter.tmc_consume()] == [
        "taobao_refund_RefundCreated",
        "taobao_refund_RefundSuccess",
        "taobao_trade_TradeClose",
        STOCK,  # the unshipped shirts went back
    ]
    assert sandbox.quantity_of(shirt_item.num_iid, blue.sku_id) == 8
    assert press("sell").status_code == 400


def test_set_quantity_on_the_stock_page(sandbox: TaobaoSandbox) -> None:
    tote, _, _ = sandbox.seed_demo()
    form = {"num_iid": tote.num_iid, "sku_id": "", "quantity": 12}
    answer = requests.post(
        f"{sandbox.url}/sandbox/set-quantity", data=form, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 303
    assert sandbox.quantity_of(tote.num_iid) == 12
    assert sandbox.published() == [stock_change(tote.num_iid, -18, 12)]


@pytest.mark.parametrize(
    ("route", "form", "message"),
    [
        ("buy", {"num": "0"}, "num 必须在 1–999 之间"),
        ("buy", {"num": "两"}, "num 必须是整数"),
        ("buy", {"num": "41"}, "库存不足 (剩 40 件)"),
        ("buy", {"sku_id": "99"}, "SKU 99 不属于商品"),
        ("buy", {"num_iid": "404", "sku_id": ""}, "商品 404 不存在"),
        ("set-quantity", {"quantity": "-1"}, "quantity 必须在 0–999999 之间"),
        ("set-quantity", {"quantity": ""}, "quantity 必须是整数"),
    ],
)
def test_stock_page_forms_refuse_bad_input(
    sandbox: TaobaoSandbox, route: str, form: dict[str, str], message: str
) -> None:
    _, _, socks = sandbox.seed_demo()
    medium = next(s for s in socks.skus.values() if s.outer_id == "SOCK-M")
    data = {
        "num_iid": str(socks.num_iid),
        "sku_id": str(medium.sku_id),
        "num": "1",
        "quantity": "5",
    }
    answer = requests.post(f"{sandbox.url}/sandbox/{route}", data={**data, **form}, timeout=5)
    assert answer.status_code == 400 and message in answer.text
    assert sandbox.quantity_of(socks.num_iid, medium.sku_id) == 40
    assert (sandbox.state.trades, sandbox.published()) == ({}, [])
