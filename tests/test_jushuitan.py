"""Jushuitan open platform v2: the derived sign vector, the request as sent on the wire, the
error mapping, inventory paging, order upload, logistics and carriers, against the sandbox on
a real loopback socket, and the ``flask koudai sandbox jushuitan`` command."""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from flask import Flask

from koudai_flask.connectors.erp.jushuitan import (
    CARRIER_TO_LC_ID,
    LC_ID_TO_CARRIER,
    InventoryRow,
    JushuitanClient,
    JushuitanOrder,
    JushuitanToken,
    OrderItem,
    OrderPay,
    UnknownCarrier,
    carrier_for_lc_id,
    classify_error,
    lc_id_for_carrier,
    sign,
    verify,
)
from koudai_flask.connectors.erp.jushuitan.signing import signing_string
from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.connectors.logistics import carriers
from koudai_flask.connectors.sandbox import cli as sandbox_cli_module
from koudai_flask.connectors.sandbox.cli import sandbox_cli
from koudai_flask.connectors.sandbox.jushuitan import JushuitanSandbox

INVENTORY = "/open/inventory/query"
UPLOAD = "/open/jushuitan/orders/upload"
LOGISTIC = "/open/logistic/query"
REFRESH = "/openWeb/auth/refreshToken"

# -- the derived vector (PROTOCOLS §6.1) -----------------------------------------------------

# The platform's public sandbox credentials, as published in its SDKs' READMEs.
VECTOR_SECRET = "99c4cef262f34ca882975a7064de0b87"
VECTOR = {
    "app_key": "b0b7d1db226d4216a3d58df9ffa2dde5",
    "access_token": "b7e3b1e24e174593af8ca5c397e53dad",
    "timestamp": "1700000000",
    "charset": "utf-8",
    "version": "2",
    "biz": '{"sku_ids":"SKU-1","page_index":1,"page_size":50}',
}
VECTOR_SIGN = "debbe2d8e6da08ef862b4732d897db95"


def test_derived_vector() -> None:
    assert signing_string(VECTOR) == (
        "access_tokenb7e3b1e24e174593af8ca5c397e53dadapp_keyb0b7d1db226d4216a3d58df9ffa2dde5"
        'biz{"sku_ids":"SKU-1","page_index":1,"page_size":50}charsetutf-8'
        "timestamp1700000000version2"
    )
    assert sign(VECTOR, VECTOR_SECRET) == VECTOR_SIGN
    assert sign({**VECTOR, "sign": "anything"}, VECTOR_SECRET) == VECTOR_SIGN
    assert verify({**VECTOR, "sign": VECTOR_SIGN.upper()}, VECTOR_SECRET)
    assert not verify({**VECTOR, "sign": VECTOR_SIGN}, "0" + VECTOR_SECRET[1:])
    assert not verify({**VECTOR, "timestamp": "1700000001", "sign": VECTOR_SIGN}, VECTOR_SECRET)


def test_client_form_reproduces_the_derived_vector() -> None:
    client = JushuitanClient(
        "http://127.0.0.1:1",
        VECTOR["app_key"],
        VECTOR_SECRET,
        VECTOR["access_token"],
        refresh_token="r-secret-token",
        clock=lambda: 1700000000.7,
    )
    form = client.signed_form({"sku_ids": "SKU-1", "page_index": 1, "page_size": 50})
    assert form == {**VECTOR, "sign": VECTOR_SIGN}
    client.close()


def test_repr_hides_the_secret_and_tokens() -> None:
    client = JushuitanClient(
        "http://127.0.0.1:1", "key-1", "s3cret", "a-tok", refresh_token="r-tok"
    )
    assert repr(client) == "JushuitanClient('http://127.0.0.1:1', app_key='key-1')"
    token = JushuitanToken("a-tok", "r-tok", 2592000)
    assert repr(token) == "JushuitanToken(expires_in=2592000, scope='all')"
    with JushuitanSandbox() as sandbox:
        shown = repr(sandbox)
        assert sandbox.app_secret not in shown and sandbox.access_token not in shown
    client.close()


# -- the sandbox and a client ----------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[JushuitanSandbox]:
    server = JushuitanSandbox()
    yield server
    server.stop()


ClientFactory = Callable[..., JushuitanClient]


@pytest.fixture
def make_client(sandbox: JushuitanSandbox) -> Iterator[ClientFactory]:
    clients: list[JushuitanClient] = []

    def make(**options: Any) -> JushuitanClient:
        settings: dict[str, Any] = {
            "access_token": sandbox.access_token,
            "refresh_token": sandbox.refresh_token,
            "app_secret": sandbox.app_secret,
            "timeout": 5.0,
            **options,
        }
        client = JushuitanClient(
            sandbox.url,
            sandbox.app_key,
            settings.pop("app_secret"),
            settings.pop("access_token"),
            **settings,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> JushuitanClient:
    return make_client()


def test_request_as_sent_on_the_wire(sandbox: JushuitanSandbox, client: JushuitanClient) -> None:
    sent: list[requests.PreparedRequest] = []
    client.http.hooks["response"].append(lambda response, **kwargs: sent.append(response.request))
    sandbox.set_stock("袜子-M", 7)
    rows = list(client.query_inventory(sku_ids=["袜子-M"], page_size=50))
    assert [(row.sku_id, row.qty) for row in rows] == [("袜子-M", 7)]
    (request,) = sent
    assert (request.method, request.url) == ("POST", sandbox.url + INVENTORY)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded;charset=UTF-8"
    assert isinstance(request.body, bytes)
    form = dict(parse_qsl(request.body.decode("ascii"), strict_parsing=True))
    assert sorted(form) == [
        "access_token",
        "app_key",
        "biz",
        "charset",
        "sign",
        "timestamp",
        "version",
    ]
    assert (form["charset"], form["version"], form["app_key"]) == ("utf-8", "2", sandbox.app_key)
    assert abs(int(form["timestamp"]) - time.time()) < 60
    # Chinese stays as is inside the compact JSON, and the sign covers those exact bytes.
    assert form["biz"] == ('{"sku_ids":"袜子-M","page_size":50,"has_lock_qty":true,"page_index":1}')
    assert form["sign"] == sign(form, sandbox.app_secret)
    assert sandbox.calls == {INVENTORY: 1}


def test_tampered_sign_and_stale_timestamp_are_refused(
    sandbox: JushuitanSandbox, client: JushuitanClient, make_client: ClientFactory
) -> None:
    form = client.signed_form({"sku_ids": "A", "page_size": 10})
    form["biz"] = '{"sku_ids":"B","page_size":10}'  # changed after signing
    answer = requests.post(sandbox.url + INVENTORY, data=form, timeout=5)
    assert (answer.status_code, answer.json()) == (
        200,
        {"code": 10, "msg": "验证失败！无效签名", "data": None},
    )
    with pytest.raises(PermanentFailure) as caught:
        make_client(app_secret="0" * 32).call(INVENTORY, {"sku_ids": "A"})
    assert type(caught.value) is PermanentFailure
    assert caught.value.message == f"jushuitan {INVENTORY}: code 10 验证失败！无效签名"
    stale = make_client(clock=lambda: time.time() - 11 * 60)
    with pytest.raises(PermanentFailure, match="code 140"):
        stale.call(INVENTORY, {"sku_ids": "A"})
    assert sandbox.calls == {INVENTORY: 3}


def test_sandbox_checks_the_common_parameters(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    form = client.signed_form({"sku_ids": "A"})
    assert requests.get(sandbox.url + INVENTORY, params=form, timeout=5).status_code == 405
    wrong_key = {**form, "app_key": "nope"}
    assert requests.post(sandbox.url + INVENTORY, data=wrong_key, timeout=5).json()["code"] == 10
    old_version = {**form, "version": "1"}
    old_version["sign"] = sign(old_version, sandbox.app_secret)
    refused = requests.post(sandbox.url + INVENTORY, data=old_version, timeout=5).json()
    assert refused == {"code": 120, "msg": "version 只能是 2", "data": None}
    not_json = {**form, "biz": "{sku_ids"}
    not_json["sign"] = sign(not_json, sandbox.app_secret)
    assert requests.post(sandbox.url + INVENTORY, data=not_json, timeout=5).json()["code"] == 120


# -- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "msg", "kind", "wait"),
    [
        (199, "调用频次超过限制!请稍后再试", RateLimited, 1.0),
        (200, "调用频次超过限制", RateLimited, 60.0),
        (199, "调用过于频繁，请3秒后再试", RateLimited, 3.0),
        (200, "limited, retry in 2.5 seconds", RateLimited, 2.5),
        (100, "验证失败！无效的access_token或access_token已过期", AuthExpired, None),
        (150, "服务商应用禁止刷新access_token,需商户重新授权", AuthExpired, None),
        (10, "验证失败！无效签名", PermanentFailure, None),
        (140, "验证失败！无效的timestamp", PermanentFailure, None),
        (190, "验证失败！无API权限", PermanentFailure, None),
    ],
)
def test_classify_error(code: int, msg: str, kind: type, wait: float | None) -> None:
    error = classify_error("/open/x", code, msg)
    assert type(error) is kind
    assert error.message == f"jushuitan /open/x: code {code} {msg}"
    assert getattr(error, "retry_after", None) == wait


def test_rate_limit_is_rate_limited_with_retry_after(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    sandbox.set_stock("A", 1)
    sandbox.fail_next(1, "rate_limit")
    with pytest.raises(RateLimited) as caught:
        list(client.query_inventory(sku_ids=["A"]))
    assert caught.value.retry_after == 1.0
    assert caught.value.message == f"jushuitan {INVENTORY}: code 199 调用频次超过限制!请稍后再试"
    assert [row.qty for row in client.query_inventory(sku_ids=["A"])] == [1]
    assert sandbox.calls == {INVENTORY: 2}


def test_server_error_is_temporary(sandbox: JushuitanSandbox, client: JushuitanClient) -> None:
    sandbox.fail_next(1, "server_error")
    with pytest.raises(TemporaryFailure) as caught:
        client.call(INVENTORY, {"sku_ids": "A"})
    assert caught.value.message == f"jushuitan {INVENTORY}: HTTP 500"
    assert client.call(INVENTORY, {"sku_ids": "A"})["inventorys"] == []


def test_timeouts_and_refused_connections_are_temporary(
    sandbox: JushuitanSandbox, make_client: ClientFactory
) -> None:
    sandbox.fail_next(1, "timeout", seconds=1.0)
    with pytest.raises(TemporaryFailure) as caught:
        make_client(timeout=0.2).call(INVENTORY, {"sku_ids": "A"})
    assert caught.value.message == f"jushuitan {INVENTORY}: timed out after 0.2s"
    sandbox.latency(0.6)
    with pytest.raises(TemporaryFailure, match="timed out"):
        make_client(timeout=0.2).call(INVENTORY, {"sku_ids": "A"})
    sandbox.latency(0)
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = JushuitanClient(f"http://127.0.0.1:{port}", "k", "s", "t", timeout=1.0)
    with pytest.raises(TemporaryFailure, match="ConnectionError"):
        closed.call(INVENTORY, {"sku_ids": "A"})
    closed.close()
    with pytest.raises(ValueError, match="fault kind"):
        sandbox.fail_next(1, "5xx")


def test_expired_token_then_refresh_then_success(
    sandbox: JushuitanSandbox, client: JushuitanClient, make_client: ClientFactory
) -> None:
    sandbox.set_stock("A", 4)
    old_access, old_refresh = sandbox.access_token, sandbox.refresh_token
    sandbox.expire_token()
    with pytest.raises(AuthExpired) as caught:
        list(client.query_inventory(sku_ids=["A"]))
    assert caught.value.message == (
        f"jushuitan {INVENTORY}: code 100 验证失败！无效的access_token或access_token已过期"
    )
    token = client.refresh()
    assert (token.expires_in, token.scope) == (2592000, "all")
    assert token.access_token == client.access_token == sandbox.access_token != old_access
    assert token.refresh_token == client.refresh_token == sandbox.refresh_token != old_refresh
    assert [row.qty for row in client.query_inventory(sku_ids=["A"])] == [4]
    # The old refresh token was spent: a second refresh with it is refused.
    with pytest.raises(AuthExpired, match="code 100"):
        make_client(access_token=old_access, refresh_token=old_refresh).refresh()
    assert sandbox.calls == {INVENTORY: 2, REFRESH: 2}


def test_injected_token_expiry_and_refresh_without_a_refresh_token(
    sandbox: JushuitanSandbox, client: JushuitanClient, make_client: ClientFactory
) -> None:
    sandbox.fail_next(1, "token_expired")
    with pytest.raises(AuthExpired, match="code 100"):
        client.call(INVENTORY, {"sku_ids": "A"})
    assert client.call(INVENTORY, {"sku_ids": "A"})["has_next"] is False
    with pytest.raises(AuthExpired, match="authorize again"):
        make_client(refresh_token=None).refresh()
    assert sandbox.calls == {INVENTORY: 2}


# -- inventory -------------------------------------------------------------------------------


@pytest.fixture
def many_skus(sandbox: JushuitanSandbox) -> list[str]:
    skus = [f"SKU-{n:03d}" for n in range(250)]
    for n, sku in enumerate(skus):
        sandbox.set_stock(sku, n, n % 3, i_id=f"STYLE-{n // 10}")
    return skus


@pytest.mark.parametrize(("page_size", "calls"), [(100, 3), (30, 10)])
def test_inventory_by_250_sku_ids_pages_in_chunks_of_100(
    sandbox: JushuitanSandbox,
    client: JushuitanClient,
    many_skus: list[str],
    page_size: int,
    calls: int,
) -> None:
    rows = list(client.query_inventory(sku_ids=many_skus + many_skus[:5], page_size=page_size))
    assert len(rows) == 250
    assert sorted(row.sku_id for row in rows) == many_skus
    assert sum(row.qty for row in rows) == sum(range(250))
    assert sandbox.calls == {INVENTORY: calls}


@pytest.mark.parametrize(("page_size", "calls"), [(100, 3), (30, 9)])
def test_inventory_by_modified_window_pages_with_has_next(
    sandbox: JushuitanSandbox,
    client: JushuitanClient,
    many_skus: list[str],
    page_size: int,
    calls: int,
) -> None:
    now = datetime.now(UTC)
    rows = list(
        client.query_inventory(
            modified_begin=now - timedelta(minutes=5),
            modified_end=now + timedelta(minutes=5),
            page_size=page_size,
        )
    )
    assert len(rows) == 250 and len({row.sku_id for row in rows}) == 250
    assert sandbox.calls == {INVENTORY: calls}


def test_inventory_row_fields_and_the_available_rule(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    moment = datetime(2026, 3, 1, 4, 0, 0, tzinfo=UTC)  # 12:00 in China
    sandbox.set_stock(
        "TEE-L",
        20,
        5,
        pick_lock=3,
        virtual_qty=7,
        lock_qty=2,
        i_id="TEE",
        name="T恤",
        modified=moment,
    )
    sandbox.set_stock("OLD", 1, modified=moment - timedelta(days=1))
    (row,) = client.query_inventory(
        modified_begin=moment - timedelta(hours=1), modified_end=moment + timedelta(hours=1)
    )
    assert row == InventoryRow(
        sku_id="TEE-L",
        i_id="TEE",
        qty=20,
        order_lock=5,
        pick_lock=3,
        virtual_qty=7,
        lock_qty=2,
        name="T恤",
        modified=moment,
    )
    assert row.available == 12  # 20 - 5 - 3: virtual and locked stock left out
    with pytest.raises(TypeError, match="colour"):
        sandbox.set_stock("TEE-L", 99, colour="red")
    assert sandbox.stock_of("TEE-L").qty == 20


def test_inventory_refuses_bad_arguments_before_any_call(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    now = datetime.now(UTC)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"sku_ids": ["A"], "page_size": 101}, "page_size"),
        ({}, "needs sku_ids or a modified window"),
        ({"sku_ids": ["A,B"]}, "comma"),
        ({"modified_begin": now}, "go together"),
        ({"modified_begin": now - timedelta(days=8), "modified_end": now}, "7 days"),
        ({"modified_begin": now, "modified_end": now - timedelta(seconds=1)}, "before"),
        ({"modified_begin": datetime(2026, 1, 1), "modified_end": datetime(2026, 1, 2)}, "aware"),
    ]
    for arguments, message in bad:
        with pytest.raises(ValueError, match=message):
            client.query_inventory(**arguments)
    assert list(client.query_inventory(sku_ids=[])) == []
    assert sandbox.calls == {}


# -- orders ----------------------------------------------------------------------------------

ORDER_DATE = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


def make_order(so_id: str, *, shop_id: int = 10001, qty: int = 2, **changes: Any) -> JushuitanOrder:
    fields: dict[str, Any] = {
        "shop_id": shop_id,
        "so_id": so_id,
        "order_date": ORDER_DATE,
        "shop_status": "WAIT_SELLER_SEND_GOODS",
        "shop_buyer_id": "buyer-7",
        "receiver_name": "王小明",
        "receiver_mobile": "13800000000",
        "receiver_address": "上海市黄浦区南京东路1号",
        "receiver_state": "上海",
        "receiver_city": "上海市",
        "receiver_district": "黄浦区",
        "pay_amount": 1999 * qty + 1000,
        "freight": 1000,
        "items": (
            OrderItem("SOCK-M", "tb-sock-m", 1999 * qty, 1999, qty, "羊毛袜 M", f"{so_id}-1"),
        ),
        "pay": OrderPay("PAY-" + so_id, ORDER_DATE, "支付宝", 1999 * qty + 1000),
        **changes,
    }
    return JushuitanOrder(**fields)


def test_order_upload_is_idempotent_by_so_id(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    sandbox.set_stock("SOCK-M", 10)
    (first,) = client.upload_orders([make_order("KD-1", qty=2)])
    (again,) = client.upload_orders([make_order("KD-1", qty=3, receiver_name="李四")])
    assert first.issuccess and again.issuccess
    assert (first.so_id, again.so_id, first.o_id) == ("KD-1", "KD-1", again.o_id)
    (kept,) = sandbox.orders()
    assert (kept["o_id"], kept["receiver_name"], kept["items"][0]["qty"]) == (first.o_id, "李四", 3)
    # Money goes out as yuan; optional empty fields are left out, not sent empty.
    assert (kept["pay_amount"], kept["freight"], kept["items"][0]["amount"]) == (69.97, 10.0, 59.97)
    assert kept["pay"] == {
        "outer_pay_id": "PAY-KD-1",
        "pay_date": "2026-03-01 10:30:00",
        "payment": "支付宝",
        "seller_account": "",
        "buyer_account": "",
        "amount": 69.97,
    }
    assert kept["order_date"] == "2026-03-01 10:30:00" and "receiver_phone" not in kept
    stock = sandbox.stock_of("SOCK-M")
    assert (stock.qty, stock.order_lock) == (10, 3)  # the update replaced the hold, not added
    assert sandbox.calls == {UPLOAD: 2}


def test_a_refused_order_is_a_result_not_an_exception(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    results = client.upload_orders([make_order("KD-2"), make_order("KD-3", shop_id=999)])
    assert [(r.so_id, r.issuccess, r.msg) for r in results] == [
        ("KD-2", True, "执行成功"),
        ("KD-3", False, "店铺不存在: shop_id 999"),
    ]
    assert results[1].o_id is None
    sandbox.ship("KD-2", "ZTO", "ZT100")
    (late,) = client.upload_orders([make_order("KD-2", receiver_name="改名")])
    assert (late.issuccess, late.msg) == (False, "订单已发货，不能更新")
    assert [order["so_id"] for order in sandbox.orders()] == ["KD-2"]
    assert sandbox.orders()[0]["receiver_name"] == "王小明"


def test_orders_upload_in_batches_of_50(sandbox: JushuitanSandbox, client: JushuitanClient) -> None:
    results = client.upload_orders(make_order(f"KD-{n:03d}") for n in range(120))
    assert len(results) == 120 and all(result.issuccess for result in results)
    assert [result.o_id for result in results] == list(range(1001, 1121))
    assert sandbox.calls == {UPLOAD: 3}


def test_bad_orders_are_refused_before_any_call(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    with pytest.raises(ValueError, match="shop_status"):
        make_order("KD-X", shop_status="PAID")
    with pytest.raises(ValueError, match="aware"):
        make_order("KD-X", order_date=datetime(2026, 3, 1))
    with pytest.raises(ValueError, match="repeats"):
        line = OrderItem("A", "A", 100, 100, 1, "a", "L1")
        make_order("KD-X", items=(line, line))
    with pytest.raises(ValueError, match="qty must be positive"):
        OrderItem("A", "A", 100, 100, 0, "a", "L1")
    with pytest.raises(ValueError, match="1..50"):
        make_order("K" * 51)
    with pytest.raises(TypeError, match="JushuitanOrder"):
        client.upload_orders([make_order("KD-Y"), {"so_id": "KD-Z"}])  # type: ignore[list-item]
    assert sandbox.calls == {} and sandbox.orders() == []


# -- logistics and carriers ------------------------------------------------------------------


def test_logistics_after_ship_maps_the_carrier(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    sandbox.set_stock("SOCK-M", 10)
    client.upload_orders([make_order("KD-1", qty=2), make_order("KD-2", qty=1)])
    assert list(client.query_logistics(so_ids=["KD-1", "KD-2"])) == []
    send_date = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    sandbox.ship("KD-1", "YTO", "YT7000000001", send_date=send_date)
    (row,) = client.query_logistics(so_ids=["KD-1", "KD-2"])
    assert (row.so_id, row.lc_id, row.l_id, row.send_date) == (
        "KD-1",
        "YTO",
        "YT7000000001",
        send_date,
    )
    assert (row.carrier, row.logistics_company, row.shop_id) == ("yuantong", "圆通速递", 10001)
    assert [(i.sku_id, i.qty, i.outer_oi_id) for i in row.items] == [("SOCK-M", 2, "KD-1-1")]
    assert row.o_id == sandbox.orders()[0]["o_id"]
    stock = sandbox.stock_of("SOCK-M")
    assert (stock.qty, stock.order_lock) == (8, 1)  # KD-1 left, KD-2 still held
    now = datetime.now(UTC)
    (by_window,) = client.query_logistics(
        modified_begin=now - timedelta(minutes=5), modified_end=now + timedelta(minutes=5)
    )
    assert by_window == row
    assert sandbox.calls == {UPLOAD: 1, LOGISTIC: 3}


def test_logistics_so_ids_go_20_a_request_and_pages_follow_has_next(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    client.upload_orders(make_order(f"KD-{n:02d}") for n in range(45))
    for n in range(45):
        sandbox.ship(f"KD-{n:02d}", "JTSD", f"JT{n:010d}")
    rows = list(client.query_logistics(so_ids=[f"KD-{n:02d}" for n in range(45)]))
    assert len(rows) == 45 and {row.carrier for row in rows} == {"jtexpress"}
    assert sandbox.calls[LOGISTIC] == 3
    now = datetime.now(UTC)
    window = {"modified_begin": now - timedelta(minutes=5), "modified_end": now}
    assert len(list(client.query_logistics(**window, page_size=10))) == 45
    assert sandbox.calls[LOGISTIC] == 3 + 5
    with pytest.raises(ValueError, match="page_size"):
        client.query_logistics(so_ids=["KD-01"], page_size=51)


def test_an_unknown_logistics_code_is_unknown_carrier(
    sandbox: JushuitanSandbox, client: JushuitanClient
) -> None:
    client.upload_orders([make_order("KD-9")])
    sandbox.ship("KD-9", "XYWL", "X1")
    (row,) = client.query_logistics(so_ids=["KD-9"])
    assert (row.lc_id, row.logistics_company) == ("XYWL", "XYWL")
    with pytest.raises(UnknownCarrier) as caught:
        _ = row.carrier
    assert isinstance(caught.value, PermanentFailure) and caught.value.code == "XYWL"


def test_carrier_mapping_both_ways() -> None:
    assert carriers.UnknownCarrier is UnknownCarrier
    expected = {
        "SF": "shunfeng",
        "YTO": "yuantong",
        "ZTO": "zhongtong",
        "STO": "shentong",
        "YUNDA": "yunda",
        "EMS": "ems",
        "JD": "jd",
        "JTSD": "jtexpress",
    }
    for lc_id, code in expected.items():
        assert (carrier_for_lc_id(lc_id), lc_id_for_carrier(code)) == (code, lc_id)
    assert carrier_for_lc_id("SF.COLLECT") == "shunfeng" and lc_id_for_carrier("shunfeng") == "SF"
    assert set(LC_ID_TO_CARRIER.values()) <= set(carriers.CARRIERS)
    assert {carrier_for_lc_id(lc_id_for_carrier(c)) for c in CARRIER_TO_LC_ID} == set(
        CARRIER_TO_LC_ID
    )
    with pytest.raises(UnknownCarrier, match="unknown Jushuitan logistics company code 'DHL'"):
        carrier_for_lc_id("DHL")
    with pytest.raises(UnknownCarrier, match="unknown carrier 'fedex'"):
        lc_id_for_carrier("fedex")


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_serves_and_keeps_secrets_off_screen(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Flask("jushuitan_cli_test", instance_path=str(tmp_path / "inst"))
    folder = tmp_path / "inst" / "koudai-sandbox" / "jushuitan"
    seen: list[tuple[str, int]] = []
    settings: dict[str, Any] = {}

    def serve_once() -> None:
        settings.update(json.loads((folder / "koudai_jushuitan.json").read_text("utf-8")))
        client = JushuitanClient(
            settings["base_url"],
            settings["app_key"],
            settings["app_secret"],
            settings["access_token"],
            refresh_token=settings["refresh_token"],
            timeout=5,
        )
        seen.extend(
            (row.sku_id, row.available)
            for row in client.query_inventory(sku_ids=["TOTE-1", "SHIRT-W"])
        )
        client.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(sandbox_cli_module, "_wait_for_ctrl_c", serve_once)
    result = app.test_cli_runner().invoke(sandbox_cli, ["jushuitan", "--seed"])
    assert (result.exit_code, sorted(seen)) == (0, [("SHIRT-W", 8), ("TOTE-1", 30)])
    stored = json.loads((folder / "sandbox_app.json").read_text(encoding="utf-8"))
    lines = result.output.splitlines()
    assert lines[0] == f"Jushuitan open platform sandbox on {settings['base_url']}"
    assert f"  app_key     {stored['app_key']}" in lines and "  shop_id     10001" in lines
    assert settings["app_key"] == stored["app_key"] and settings["app_secret"] == stored["secret"]
    for secret in (stored["secret"], settings["access_token"], settings["refresh_token"]):
        assert secret not in result.output
    assert lines[-1] == "Jushuitan sandbox stopped."
    for name in ("sandbox_app.json", "koudai_jushuitan.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    # A second start keeps the app key and secret.
    monkeypatch.setattr(sandbox_cli_module, "_wait_for_ctrl_c", lambda: None)
    assert app.test_cli_runner().invoke(sandbox_cli, ["jushuitan"]).exit_code == 0
    again = json.loads((folder / "koudai_jushuitan.json").read_text("utf-8"))
    assert (again["app_key"], again["app_secret"]) == (stored["app_key"], stored["secret"])
