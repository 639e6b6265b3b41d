"""Taobao TOP adapter: the official sign vector, the error mapping, every adapter call against
the TOP sandbox on a real loopback socket, OAuth, tokens at rest, and the sandbox's checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import stat
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.connectors.logistics.carriers import top_code
from koudai_flask.connectors.sandbox import cli as sandbox_cli_module
from koudai_flask.connectors.sandbox.cli import sandbox_cli
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.taobao import (
    DELTA,
    FULL,
    Item,
    Sku,
    TaobaoAdapter,
    TaobaoOAuth,
    TopClient,
    authorize_url,
)
from koudai_flask.connectors.taobao.client import classify_error, format_time
from koudai_flask.connectors.taobao.signing import sign, signing_string, verify
from koudai_flask.connectors.taobao.tokens import (
    decrypt_token,
    encrypt_token,
    open_token,
    seal_token,
)
from tests.taobao_support import ClientFactory, adapter, make_client, sandbox, session

__all__ = ["adapter", "make_client", "sandbox", "session"]  # the fixtures these tests use

# -- signatures (PROTOCOLS §1.4) -------------------------------------------------------------

OFFICIAL = {
    "app_key": "12345678",
    "fields": "num_iid,title,nick,price,num",
    "format": "json",
    "method": "taobao.item.seller.get",
    "num_iid": "11223344",
    "session": "test",
    "sign_method": "md5",
    "timestamp": "2016-01-01 12:00:00",
    "v": "2.0",
}
OFFICIAL_S = (
    "app_key12345678fieldsnum_iid,title,nick,price,numformatjsonmethodtaobao.item.seller.get"
    "num_iid11223344sessiontestsign_methodmd5timestamp2016-01-01 12:00:00v2.0"
)


def test_official_md5_vector() -> None:
    assert signing_string(OFFICIAL) == OFFICIAL_S
    assert sign(OFFICIAL, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"
    assert verify({**OFFICIAL, "sign": "66987cb115214e59e6ec978214934fb8"}, "helloworld")
    assert not verify({**OFFICIAL, "sign": "66987CB115214E59E6EC978214934FB9"}, "helloworld")


@pytest.mark.parametrize(
    ("method", "digest", "documented"),
    [
        ("hmac", hashlib.md5, "D56D7858309C31B6251083A874D48273"),
        (
            "hmac-sha256",
            hashlib.sha256,
            "04DB15AD0774D5CFCE2C837DE43E3FCEA9011ED74F3038FB6AB5F3C4CEA119E8",
        ),
    ],
)
def test_hmac_variants(method: str, digest: Any, documented: str) -> None:
    params = {**OFFICIAL, "sign_method": method}
    s = OFFICIAL_S.replace("sign_methodmd5", f"sign_method{method}")
    expected = hmac.new(b"helloworld", s.encode("utf-8"), digest).hexdigest().upper()
    assert sign(params, "helloworld", method) == expected == documented
    assert verify({**params, "sign": expected}, "helloworld")


def test_hmac_reproduces_rfc_vectors() -> None:
    assert sign({"Hi": " There"}, "\x0b" * 16, "hmac") == "9294727A3638BB1C13F48EF8158BFC9D"
    assert sign({"Hi": " There"}, "\x0b" * 20, "hmac-sha256") == (
        "B0344C61D8DB38535CA8AFCEAF0BF12B881DC200C9833DA726E9376C2E32CFF7"
    )


def test_signing_skips_sign_bytes_and_empty_values() -> None:
    params: dict[str, object] = {"b": "2", "a": "1", "sign": "X", "image": b"\x89PNG", "c": ""}
    assert signing_string(params) == "a1b2"
    with pytest.raises(ValueError, match="sign_method"):
        sign(params, "s", "sha1")


def test_client_sends_the_system_params_of_the_official_vector() -> None:
    client = TopClient(
        "http://127.0.0.1:1/router/rest",
        "12345678",
        "helloworld",
        session="test",
        clock=lambda: datetime(2016, 1, 1, 4, 0, tzinfo=UTC),  # 12:00 in GMT+8
    )
    form = client.signed_form(
        "taobao.item.seller.get", {"fields": "num_iid,title,nick,price,num", "num_iid": 11223344}
    )
    assert form == {**OFFICIAL, "sign": "66987CB115214E59E6EC978214934FB8"}
    assert "helloworld" not in repr(client) and "test" not in repr(client)
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2016, 1, 1))


# -- the sandbox and an authorized client ----------------------------------------------------


def shirt(sandbox: TaobaoSandbox) -> Any:
    return sandbox.add_item(
        "牛津纺衬衫",
        "129.00",
        outer_id="SHIRT",
        skus=[
            {
                "sku_id": 501,
                "properties": "1627207:28320",
                "properties_name": "颜色:白色",
                "quantity": 10,
                "outer_id": "SHIRT-W",
            },
            {
                "sku_id": 502,
                "properties": "1627207:28321",
                "properties_name": "颜色:蓝色",
                "quantity": 8,
                "outer_id": "SHIRT-B",
                "price": "139.00",
            },
        ],
    )


# -- error mapping (§1.5) --------------------------------------------------------------------


def test_rate_limit_carries_the_ban_seconds(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    sandbox.fail_next(1, "rate_limit")
    with pytest.raises(RateLimited) as caught:
        adapter.items_onsale()
    # "This ban will last for 5 more seconds": sleep N+1 (§1.5).
    assert caught.value.retry_after == 6.0
    assert "accesscontrol.limited-by-app-access-count" in caught.value.message
    assert adapter.items_onsale().total_results == 0  # the fault is spent


@pytest.mark.parametrize(
    ("error", "kind", "retry_after"),
    [
        (
            {
                "code": 7,
                "msg": "App Call Limited",
                "sub_msg": "This ban will last for 42 more seconds",
            },
            RateLimited,
            43.0,
        ),
        ({"code": 7, "msg": "App Call Limited"}, RateLimited, 60.0),
        ({"code": 27, "msg": "Invalid session", "sub_code": "session-expired"}, AuthExpired, None),
        ({"code": 15, "sub_code": "isv.invalid-sessionkey"}, AuthExpired, None),
        ({"code": 15, "sub_code": "isp.system-busy"}, TemporaryFailure, None),
        ({"code": 15, "sub_code": "isv.item-not-exist"}, PermanentFailure, None),
        ({"code": 25, "msg": "Invalid signature"}, PermanentFailure, None),
    ],
)
def test_classify_error(error: dict[str, Any], kind: type, retry_after: float | None) -> None:
    exc = classify_error("taobao.item.seller.get", error)
    assert type(exc) is kind
    if retry_after is not None:
        assert isinstance(exc, RateLimited) and exc.retry_after == retry_after


@pytest.mark.parametrize(
    ("fault", "kind", "text"),
    [
        ("session_expired", AuthExpired, "error 27 Invalid session (session-expired"),
        ("isp", TemporaryFailure, "(isp.top-remote-connection-timeout: 超时)"),
        ("isv", PermanentFailure, "(isv.invalid-parameter: 参数错误)"),
        ("5xx", TemporaryFailure, "HTTP 502"),
        ("bad_json", TemporaryFailure, "answer is not JSON"),
    ],
)
def test_faults_map_to_typed_errors(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter, fault: str, kind: type, text: str
) -> None:
    sandbox.fail_next(1, fault)
    with pytest.raises(kind) as caught:
        adapter.items_onsale()
    assert type(caught.value) is kind and text in caught.value.message
    assert adapter.items_onsale().total_results == 0
    assert sandbox.calls["taobao.items.onsale.get"] == 2


def test_timeout_and_refused_connection_are_temporary(
    sandbox: TaobaoSandbox, make_client: ClientFactory
) -> None:
    sandbox.fail_next(1, "timeout", seconds=1.0)
    with pytest.raises(TemporaryFailure, match="timed out after 0.2s"):
        TaobaoAdapter(make_client(timeout=0.2)).items_onsale()
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = TopClient(f"http://127.0.0.1:{port}/router/rest", "1", "s", timeout=1.0)
    with pytest.raises(TemporaryFailure, match="ConnectionError"):
        closed.call("taobao.items.onsale.get", fields="num_iid")
    closed.close()


def test_latency_beyond_the_timeout_is_temporary(
    sandbox: TaobaoSandbox, make_client: ClientFactory
) -> None:
    sandbox.latency(0.6)
    with pytest.raises(TemporaryFailure, match="timed out"):
        TaobaoAdapter(make_client(timeout=0.2)).items_onsale()
    sandbox.latency(0)


def test_expired_and_foreign_sessions_are_auth_expired(
    sandbox: TaobaoSandbox, session: str, make_client: ClientFactory
) -> None:
    with pytest.raises(AuthExpired, match="invalid-sessionkey"):
        TaobaoAdapter(make_client(session="6200nope")).items_onsale()
    sandbox.expire_session(session)
    with pytest.raises(AuthExpired, match="session-expired"):
        TaobaoAdapter(make_client()).items_onsale()


# -- items and stock (§1.6) ------------------------------------------------------------------


def test_items_onsale_pages(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    tote = sandbox.add_item("帆布包", "59.00", 30, outer_id="TOTE", num_iid=1001)
    sandbox.add_item("袜子", "25.50", 4, outer_id="SOCK", num_iid=1002)
    sandbox.add_item("帽子", "88.00", 0, outer_id="HAT", num_iid=1003)
    first = adapter.items_onsale(page_no=1, page_size=2)
    second = adapter.items_onsale(page_no=2, page_size=2)
    assert first.total_results == second.total_results == 3
    assert [(i.num_iid, i.title, i.num, i.price, i.outer_id) for i in first.items] == [
        (1001, "帆布包", 30, "59.00", "TOTE"),
        (1002, "袜子", 4, "25.50", "SOCK"),
    ]
    assert [i.num_iid for i in second.items] == [1003]
    assert first.items[0].approve_status == "onsale"
    assert first.items[0].modified == datetime.strptime(tote.modified, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=UTC
    ) - timedelta(hours=8)
    assert first.items[1].price_fen == 2550
    assert sandbox.calls["taobao.items.onsale.get"] == 2


def test_item_with_skus(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = shirt(sandbox).num_iid
    item = adapter.item(num_iid)
    assert (item.num_iid, item.title, item.outer_id, item.num, item.price) == (
        num_iid,
        "牛津纺衬衫",
        "SHIRT",
        18,
        "129.00",
    )
    assert (item.desc, item.pic_url) == ("<p>牛津纺衬衫</p>", item.item_imgs[0])
    assert [
        (s.sku_id, s.properties, s.properties_name, s.quantity, s.price, s.outer_id)
        for s in item.skus
    ] == [
        (501, "1627207:28320", "颜色:白色", 10, "129.00", "SHIRT-W"),
        (502, "1627207:28321", "颜色:蓝色", 8, "139.00", "SHIRT-B"),
    ]
    assert isinstance(item.skus[0], Sku) and item.skus[1].price_fen == 13900
    with pytest.raises(PermanentFailure, match="isv.item-not-exist"):
        adapter.item(999)


def test_item_quantity_full_then_delta(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    level = adapter.update_item_quantity(num_iid, 12, type=FULL)
    assert (level.num_iid, level.num, dict(level.skus)) == (num_iid, 12, {})
    assert adapter.update_item_quantity(num_iid, -5, type=DELTA).num == 7
    assert adapter.update_item_quantity(num_iid, 3, type=DELTA).num == 10
    assert sandbox.quantity_of(num_iid) == 10
    with pytest.raises(PermanentFailure, match="isv.item-quantity-item-update-error"):
        adapter.update_item_quantity(num_iid, -11, type=DELTA)
    assert sandbox.quantity_of(num_iid) == 10
    with pytest.raises(ValueError, match="cannot be negative"):
        adapter.update_item_quantity(num_iid, -1, type=FULL)
    assert sandbox.calls["taobao.item.quantity.update"] == 4


def test_sku_quantity_by_id_and_by_outer_id(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = shirt(sandbox).num_iid
    level = adapter.update_item_quantity(num_iid, 4, sku_id=501)
    assert (level.num, dict(level.skus)) == (12, {501: 4})
    level = adapter.update_item_quantity(num_iid, 2, outer_id="SHIRT-B", type=DELTA)
    assert (level.num, dict(level.skus)) == (14, {502: 10})
    assert (sandbox.quantity_of(num_iid, 501), sandbox.quantity_of(num_iid, 502)) == (4, 10)


def test_skus_quantity_update(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = shirt(sandbox).num_iid
    level = adapter.update_skus_quantity(num_iid, {501: 5, 502: 7})
    assert (level.num, dict(level.skus)) == (12, {501: 5, 502: 7})
    level = adapter.update_skus_quantity(num_iid, {501: -2, 502: 1}, type=DELTA)
    assert (level.num, dict(level.skus)) == (11, {501: 3, 502: 8})
    with pytest.raises(PermanentFailure):
        adapter.update_skus_quantity(num_iid, {501: -1, 502: -9}, type=DELTA)
    # All or nothing: the valid half of a refused batch is not applied.
    assert (sandbox.quantity_of(num_iid, 501), sandbox.quantity_of(num_iid, 502)) == (3, 8)


def test_skus_of_asks_40_items_a_call(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    items = sandbox.seed_catalog(items=85, skus_per_item=2, seed=1)
    plain = sandbox.add_item("帆布包", "59.00", 30).num_iid  # no SKUs: adds nothing
    ids = [i.num_iid for i in items]
    skus = adapter.skus_of([*ids, ids[0], plain, 999])  # a repeat and an unknown id
    assert sandbox.calls["taobao.item.skus.get"] == 3  # 87 distinct ids: 40 + 40 + 7
    expected = {
        (item.num_iid, sku.sku_id): (sku.quantity, sku.outer_id, sku.price, sku.properties_name)
        for item in items
        for sku in item.skus.values()
    }
    assert len(skus) == 170
    assert {
        (s.num_iid, s.sku_id): (s.quantity, s.outer_id, s.price, s.properties_name) for s in skus
    } == expected
    assert all(s.modified is not None for s in skus)
    assert adapter.skus_of([]) == []
    assert sandbox.calls["taobao.item.skus.get"] == 3


def test_sandbox_refuses_more_than_40_num_iids(
    sandbox: TaobaoSandbox, make_client: ClientFactory
) -> None:
    client = make_client()
    with pytest.raises(PermanentFailure, match="num_iids 最多 40 个"):
        client.call("taobao.item.skus.get", fields="sku_id", num_iids=list(range(1, 42)))
    with pytest.raises(PermanentFailure, match="error 41 Invalid arguments"):
        client.call("taobao.item.skus.get", fields="sku_id", num_iids="1,x")
    answer = client.call("taobao.item.skus.get", fields="sku_id,quantity", num_iids="1")
    assert set(answer) == {"request_id"}  # no SKUs: the wrapper is left out


def test_reading_10000_sku_quantities_takes_76_calls(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    sandbox.seed_catalog(items=2500, skus_per_item=4, seed=2, pictures=0)
    items = list(adapter.all_onsale(fields="num_iid,num,modified"))
    skus = adapter.skus_of(item.num_iid for item in items)
    # 2,500 items in pages of 200 = 13 calls; 40 items a skus.get call = 63 calls.
    assert (len(items), len(skus)) == (2500, 10000)
    assert sandbox.calls["taobao.items.onsale.get"] == 13
    assert sandbox.calls["taobao.item.skus.get"] == 63
    state = sandbox.state.items
    assert {s.sku_id: s.quantity for s in skus} == {
        sku.sku_id: sku.quantity for item in state.values() for sku in item.skus.values()
    }
    assert {i.num_iid: i.num for i in items} == {n: item.num for n, item in state.items()}


def test_all_onsale_stops_on_the_last_full_page(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    sandbox.seed_catalog(items=400, skus_per_item=0, seed=3, pictures=0)
    assert len(list(adapter.all_onsale())) == 400
    assert sandbox.calls["taobao.items.onsale.get"] == 2  # total_results reached: no 3rd call
    assert list(adapter.all_onsale(start_modified=datetime.now(UTC) + timedelta(days=1))) == []
    assert sandbox.calls["taobao.items.onsale.get"] == 3


def test_items_onsale_modified_window(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter, make_client: ClientFactory
) -> None:
    first_run = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    items = sandbox.seed_catalog(items=5, skus_per_item=1, seed=4, modified=first_run)
    later = first_run + timedelta(hours=1)
    sandbox.edit_item(items[1].num_iid, title="改过的标题", modified=later)
    sandbox.edit_item(items[3].num_iid, price="9.90", modified=later)
    changed = adapter.items_onsale(start_modified=first_run + timedelta(seconds=1))
    assert (changed.total_results, [i.num_iid for i in changed.items]) == (
        2,
        [items[1].num_iid, items[3].num_iid],
    )
    assert [i.title for i in changed.items][0] == "改过的标题"
    unchanged = adapter.items_onsale(start_modified=first_run, end_modified=first_run)
    assert [i.num_iid for i in unchanged.items] == [items[n].num_iid for n in (0, 2, 4)]
    with pytest.raises(ValueError, match="end_modified is before start_modified"):
        adapter.items_onsale(start_modified=later, end_modified=first_run)
    assert sandbox.calls["taobao.items.onsale.get"] == 2
    with pytest.raises(PermanentFailure, match="end_modified 不能早于 start_modified"):
        make_client().call(
            "taobao.items.onsale.get",
            fields="num_iid",
            start_modified=later,
            end_modified=first_run,
        )


def test_item_seller_get_has_what_a_catalog_import_needs(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    coded, plain = sandbox.seed_catalog(items=2, skus_per_item=3, seed=7)
    item = adapter.item(coded.num_iid)
    assert (item.num_iid, item.title, item.price, item.outer_id, item.cid) == (
        coded.num_iid,
        coded.title,
        coded.price,
        "KD7-00001",
        coded.cid,
    )
    # Seed 7 always makes the same catalogue: item 1 is this dress.
    assert item.title == "修身连衣裙 Slim Dress 00001"
    assert item.desc == "<p>修身连衣裙 Slim Dress 00001</p><p>修身连衣裙, 品牌 口袋小铺</p>"
    assert item.item_imgs == (
        f"{sandbox.url}/img/{coded.num_iid}-1.png",
        f"{sandbox.url}/img/{coded.num_iid}-2.png",
    )
    assert item.pic_url == item.item_imgs[0]
    assert item.props_name == (
        "20000:3275069:品牌:口袋小铺;20509:28313:尺码:XS;20509:28317:尺码:XL;"
        "1627207:28320:颜色分类:白色;1627207:28324:颜色分类:黄色;1627207:28341:颜色分类:黑色"
    )
    assert item.attributes[0] == ("品牌", "口袋小铺")
    assert item.num == sum(s.quantity for s in coded.skus.values())
    assert [
        (s.sku_id, s.num_iid, s.properties, s.properties_name, s.price, s.outer_id, s.quantity)
        for s in item.skus
    ] == [
        (
            sku.sku_id,
            coded.num_iid,
            sku.properties,
            sku.properties_name,
            sku.price,
            sku.outer_id,
            sku.quantity,
        )
        for sku in coded.skus.values()
    ]
    first = item.skus[0]
    assert re.fullmatch(r"1627207:\d+:颜色分类:[^;:]+;20509:\d+:尺码:[^;:]+", first.properties_name)
    colour, size = first.attributes
    assert (colour[0], size[0]) == ("颜色分类", "尺码")
    colour_codes = {
        "白色": "WH",
        "黑色": "BK",
        "红色": "RD",
        "蓝色": "BL",
        "绿色": "GN",
        "黄色": "YL",
    }
    assert first.outer_id == f"KD7-00001-{colour_codes[colour[1]]}-{size[1]}"
    assert {s.outer_id for s in adapter.item(plain.num_iid).skus} == {""}
    assert adapter.item(plain.num_iid).outer_id == ""


def test_records_read_positions_and_plain_property_names() -> None:
    item = Item.from_top(
        {
            "num_iid": 7,
            "item_imgs": {
                "item_img": [
                    {"url": "http://127.0.0.1/b.png", "position": 1},
                    {"url": "http://127.0.0.1/a.png", "position": 0},
                ]
            },
            "skus": {"sku": [{"sku_id": 70, "properties_name": "颜色:白色", "quantity": "3"}]},
        }
    )
    assert item.item_imgs == ("http://127.0.0.1/a.png", "http://127.0.0.1/b.png")
    [sku] = item.skus
    assert (sku.num_iid, sku.quantity, sku.attributes) == (7, 3, (("颜色", "白色"),))
    assert Sku(sku_id=1).num_iid == 0 and Sku(1, "p", "n", 2).quantity == 2  # old callers
    assert Sku.from_top(
        {"properties_name": "1627207:28326:颜色分类:红色;20509:28314:尺码:S"}
    ).attributes == (("颜色分类", "红色"), ("尺码", "S"))


# -- trades (§1.6) ---------------------------------------------------------------------------

WINDOW_START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def test_increment_window_over_one_day_is_refused_before_calling(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    with pytest.raises(ValueError, match="at most one day"):
        adapter.trades_increment(WINDOW_START, WINDOW_START + timedelta(days=1, seconds=1))
    assert sandbox.calls["taobao.trades.sold.increment.get"] == 0
    page = adapter.trades_increment(WINDOW_START, WINDOW_START + timedelta(days=1))
    assert (page.trades, page.has_next, page.total_results) == ((), False, None)


def test_increment_pages_with_has_next(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    tids = [
        sandbox.add_trade(
            [(num_iid, None, 1)], modified=WINDOW_START + timedelta(minutes=m), tid=9000 + m
        )["tid"]
        for m in range(5)
    ]
    sandbox.add_trade([(num_iid, None, 1)], modified=WINDOW_START + timedelta(hours=2), tid=9999)
    end = WINDOW_START + timedelta(minutes=30)
    pages = [adapter.trades_increment(WINDOW_START, end, page_no=n, page_size=2) for n in (1, 2, 3)]
    assert [p.has_next for p in pages] == [True, True, False]
    assert [t.tid for p in pages for t in p.trades] == list(reversed(tids))
    counted = adapter.trades_increment(WINDOW_START, end, page_size=2, use_has_next=False)
    assert (counted.total_results, counted.has_next) == (5, True)
    assert sandbox.quantity_of(num_iid) == 24


def test_trade_fullinfo(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = shirt(sandbox).num_iid
    created = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    sandbox.add_trade(
        [(num_iid, 502, 2)], buyer_nick="买家一号", post_fee="10.00", modified=created, tid=777
    )
    trade = adapter.trade(777)
    assert (trade.tid, trade.status, trade.payment, trade.total_fee, trade.post_fee) == (
        777,
        "WAIT_SELLER_SEND_GOODS",
        "288.00",
        "278.00",
        "10.00",
    )
    assert (trade.buyer_nick, trade.created, trade.modified, trade.pay_time) == (
        "买家一号",
        created,
        created,
        created,
    )
    assert trade.payment_fen == 28800
    [order] = trade.orders
    assert (
        order.num_iid,
        order.sku_id,
        order.outer_iid,
        order.outer_sku_id,
        order.num,
        order.price,
        order.payment,
        order.status,
        order.refund_status,
    ) == (
        num_iid,
        "502",
        "SHIRT",
        "SHIRT-B",
        2,
        "139.00",
        "278.00",
        "WAIT_SELLER_SEND_GOODS",
        "NO_REFUND",
    )
    assert sandbox.quantity_of(num_iid, 502) == 6
    sandbox.close_trade(777)
    assert adapter.trade(777).status == "TRADE_CLOSED"
    assert sandbox.quantity_of(num_iid, 502) == 8
    with pytest.raises(PermanentFailure, match="isv.trade-not-exist"):
        adapter.trade(778)


def test_offline_send(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    tid = sandbox.add_trade([(num_iid, None, 1)])["tid"]
    with pytest.raises(PermanentFailure, match="isv.logistics-company-not-exist"):
        adapter.offline_send(tid, "YT0001", "yuantong")  # Kuaidi100's code, not TOP's
    assert sandbox.shipment_of(tid) is None
    assert adapter.offline_send(tid, "YT0001", top_code("yuantong")) is True
    assert sandbox.shipment_of(tid) == ("YTO", "YT0001")
    assert adapter.trade(tid).status == "WAIT_BUYER_CONFIRM_GOODS"
    with pytest.raises(PermanentFailure, match="isv.logistics-offline-service-error"):
        adapter.offline_send(tid, "YT0002", "YTO")
    assert sandbox.shipment_of(tid) == ("YTO", "YT0001")


# -- TMC (§1.8) ------------------------------------------------------------------------------


def test_tmc_redelivers_until_confirmed(sandbox: TaobaoSandbox, adapter: TaobaoAdapter) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    tid = sandbox.add_trade([(num_iid, None, 2)], buyer_nick="买家", tid=4242)["tid"]
    first = adapter.tmc_consume()
    assert [m.topic for m in first] == [
        "taobao_trade_TradeCreate",
        "taobao_item_ItemStockChanged",
        "taobao_trade_TradeBuyerPay",
    ]
    assert dict(first[2].content) == {
        "tid": tid,
        "oid": first[2].content["oid"],
        "buyer_nick": "买家",
        "seller_nick": "sandbox_koudai_shop",
        "payment": "118.00",
        "type": "guarantee_trade",
    }
    assert (first[0].user_id, first[0].user_nick) == (2200000000001, "sandbox_koudai_shop")
    assert adapter.tmc_consume() == []  # in flight: hidden until the visibility timeout
    sandbox.advance(29)
    assert adapter.tmc_consume() == []  # 29 s < the 30 s visibility timeout
    sandbox.advance(2)
    again = adapter.tmc_consume()
    assert [m.id for m in again] == [m.id for m in first]
    assert adapter.tmc_confirm([first[0].id, first[1].id]) is True
    sandbox.advance(31)
    assert [m.id for m in adapter.tmc_consume()] == [first[2].id]
    assert adapter.tmc_confirm([first[2].id]) is True
    sandbox.advance(31)
    assert adapter.tmc_consume() == []
    assert adapter.tmc_consume(group_name="other")[0].id == first[0].id  # groups are separate
    with pytest.raises(ValueError, match="10..200"):
        adapter.tmc_consume(quantity=5)


# -- OAuth (§1.7) and tokens at rest --------------------------------------------------------


def test_oauth_code_exchange_and_refresh(sandbox: TaobaoSandbox) -> None:
    redirect_uri = "https://shop.example/koudai/taobao/callback"
    url = authorize_url(sandbox.app_key, redirect_uri, "st-1", base=sandbox.oauth_base)
    assert url == (
        f"{sandbox.url}/authorize?response_type=code&client_id={sandbox.app_key}"
        "&redirect_uri=https%3A%2F%2Fshop.example%2Fkoudai%2Ftaobao%2Fcallback&state=st-1&view=web"
    )
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "授权 Authorize" in page.text
    form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
    granted = requests.post(f"{sandbox.url}/authorize", data=form, allow_redirects=False, timeout=5)
    location = urlsplit(granted.headers["Location"])
    query = parse_qs(location.query)
    assert (granted.status_code, location.path, query["state"]) == (
        302,
        "/koudai/taobao/callback",
        ["st-1"],
    )
    oauth = TaobaoOAuth(sandbox.app_key, sandbox.app_secret, base=sandbox.oauth_base, timeout=5)
    token = oauth.exchange_code(query["code"][0], redirect_uri)
    assert (
        token.taobao_user_id,
        token.taobao_user_nick,
        token.expires_in,
        token.re_expires_in,
    ) == ("2200000000001", "sandbox_koudai_shop", 86400, 2592000)
    assert token.access_token not in repr(token)
    with pytest.raises(AuthExpired, match="invalid_grant"):
        oauth.exchange_code(query["code"][0], redirect_uri)  # a code is single-use

    def onsale(access_token: str) -> int:
        client = TopClient(
            sandbox.gateway_url,
            sandbox.app_key,
            sandbox.app_secret,
            session=access_token,
            timeout=5,
        )
        try:
            return TaobaoAdapter(client).items_onsale().total_results
        finally:
            client.close()

    assert onsale(token.access_token) == 0
    renewed = oauth.refresh(token.refresh_token)
    assert renewed.access_token != token.access_token
    assert onsale(renewed.access_token) == 0
    with pytest.raises(AuthExpired, match="session"):
        onsale(token.access_token)
    with pytest.raises(AuthExpired, match="invalid_grant"):
        oauth.refresh(token.refresh_token)
    wrong = TaobaoOAuth(sandbox.app_key, "not-the-secret", base=sandbox.oauth_base, timeout=5)
    with pytest.raises(PermanentFailure, match="invalid_client"):
        wrong.refresh(renewed.refresh_token)
    oauth.http.close()
    wrong.http.close()


def test_tokens_at_rest(sandbox: TaobaoSandbox) -> None:
    oauth = TaobaoOAuth(sandbox.app_key, sandbox.app_secret, base=sandbox.oauth_base)
    grant = sandbox.issue_session()
    token = oauth.refresh(grant.refresh_token)
    oauth.http.close()
    sealed = seal_token("key-one", token)
    text = json.dumps(sealed)
    assert token.access_token not in text and token.refresh_token not in text
    assert sealed["taobao_user_nick"] == "sandbox_koudai_shop"
    assert open_token("key-one", sealed) == token
    cipher = encrypt_token("key-one", "6200abc")
    assert cipher != "6200abc" and decrypt_token("key-one", cipher) == "6200abc"
    with pytest.raises(AuthExpired, match="cannot be decrypted"):
        decrypt_token("key-two", cipher)
    with pytest.raises(AuthExpired):
        open_token("key-two", sealed)


# -- the sandbox's own checks (§8.1) ---------------------------------------------------------


def test_sandbox_refuses_bad_sign_and_stale_timestamp(
    sandbox: TaobaoSandbox, make_client: ClientFactory
) -> None:
    client = make_client()
    form = client.signed_form("taobao.items.onsale.get", {"fields": "num_iid"})
    answer = requests.post(sandbox.gateway_url, data={**form, "sign": "0" * 32}, timeout=5)
    body = answer.json()
    assert answer.status_code == 200 and set(body) == {"error_response"}
    assert {k: v for k, v in body["error_response"].items() if k != "request_id"} == {
        "code": 25,
        "msg": "Invalid signature",
    }
    stale = make_client(clock=lambda: datetime.now(UTC) - timedelta(minutes=11))
    with pytest.raises(PermanentFailure, match="error 31 Invalid timestamp"):
        stale.call("taobao.items.onsale.get", fields="num_iid")
    with pytest.raises(PermanentFailure, match="error 29"):
        TopClient(sandbox.gateway_url, "nope", "x").call("taobao.items.onsale.get", fields="a")


@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
def test_sandbox_accepts_each_sign_method(
    sandbox: TaobaoSandbox, make_client: ClientFactory, sign_method: str
) -> None:
    sandbox.add_item("帆布包", "59.00", 30)
    assert TaobaoAdapter(make_client(sign_method=sign_method)).items_onsale().total_results == 1


def test_sandbox_merges_query_and_form_and_takes_epoch_ms(
    sandbox: TaobaoSandbox, make_client: ClientFactory
) -> None:
    # The official SDK's layout: system params in the query, app params in the body (§1.2).
    form = make_client().signed_form("taobao.items.onsale.get", {"fields": "num_iid"})
    form["timestamp"] = str(int(datetime.now(UTC).timestamp() * 1000))
    form["sign"] = sign(form, sandbox.app_secret, "md5")
    query = {k: v for k, v in form.items() if k != "fields"}
    answer = requests.post(sandbox.gateway_url, params=query, data={"fields": "num_iid"}, timeout=5)
    assert answer.json()["items_onsale_get_response"]["total_results"] == 0
    assert (
        requests.get(sandbox.gateway_url, params=form, timeout=5).json()[
            "items_onsale_get_response"
        ]["total_results"]
        == 0
    )


def test_cli_serves_and_keeps_the_secret_off_screen(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Flask("taobao_cli_test", instance_path=str(tmp_path / "inst"))
    folder = tmp_path / "inst" / "koudai-sandbox" / "taobao"
    seen: list[int] = []

    def serve_once() -> None:
        settings = json.loads((folder / "koudai_taobao.json").read_text(encoding="utf-8"))
        client = TopClient(
            settings["gateway_url"],
            settings["app_key"],
            settings["app_secret"],
            session=settings["session"],
            timeout=5,
        )
        seen.append(TaobaoAdapter(client).items_onsale().total_results)
        client.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(sandbox_cli_module, "_wait_for_ctrl_c", serve_once)
    result = app.test_cli_runner().invoke(sandbox_cli, ["taobao", "--seed"])
    assert (result.exit_code, seen) == (0, [3])
    stored = json.loads((folder / "sandbox_app.json").read_text(encoding="utf-8"))
    assert f"  app_key     {stored['app_key']}" in result.output.splitlines()
    assert stored["secret"] not in result.output
    assert result.output.splitlines()[-1] == "Taobao sandbox stopped."
    for name in ("sandbox_app.json", "koudai_taobao.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
