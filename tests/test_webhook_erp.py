"""The generic HTTP ERP profile (``webhook_erp``): signatures, the order push, the signed stock
and shipment hooks with replay refusal, receipts, and the in-house ERP sandbox.

Everything crosses real loopback sockets: the ERP sandbox on one port, the shop app (for the
hooks) on another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, insert, select

from koudai_flask import Koudai
from koudai_flask.connectors.base import (
    ADOPT,
    PUSH_ORDER,
    OrderExport,
    connector_class,
)
from koudai_flask.connectors.erp.webhook import (
    WebhookErpConnector,
    encode_event,
    signature,
    signed_headers,
    verify,
)
from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.connectors.sandbox import cli as sandbox_cli_module
from koudai_flask.connectors.sandbox.cli import sandbox_cli
from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.connectors.sandbox.webhook_erp import WebhookErpSandbox
from koudai_flask.errors import SignatureError, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import ChannelReceipt, Order, Sku, StockLevel, StockMovement
from koudai_flask.services import catalog, channels, orders, receipts
from koudai_flask.services.transaction import current_session
from tests.helpers import assert_ledger_consistent

SECRET = "whsec_koudai_test"
NOW = 1767225600  # 2026-01-01T00:00:00Z
VECTOR_BODY = b'{"event_id":"stock:1","counts":[{"sku":"SHIRT-W","quantity":7}]}'
# Derived once, by hand, from the inputs above with two independent tools, and pasted here:
#   printf '%s' '1767225600.<VECTOR_BODY>' | openssl dgst -sha256 -hmac 'whsec_koudai_test'
#   hmac.new(b"whsec_koudai_test", b"1767225600." + VECTOR_BODY, hashlib.sha256).hexdigest()
VECTOR_HEX = "538e0d08c996694ec8271399d3a1d0ef852c4f4b6c87debbdb292824537551d7"
NOW_DT = datetime(2026, 1, 1, 8, 30, tzinfo=UTC)
ADDRESS = {"name": "李雷", "phone": "13800138000", "city": "上海市", "street": "南京西路 1 号"}


def export(number: str = "K20260101001") -> OrderExport:
    return OrderExport(
        number=number,
        channel="web",
        placed_at=NOW_DT,
        total=25800,
        shipping_fee=0,
        lines=({"sku": "SHIRT-W", "name": "Oxford shirt", "quantity": 2, "unit_price": 12900},),
        address=ADDRESS,
        buyer="李雷",
    )


# -- signatures ------------------------------------------------------------------------------


def test_the_signature_vector() -> None:
    by_stdlib = hmac.new(SECRET.encode(), b"1767225600." + VECTOR_BODY, hashlib.sha256)
    assert by_stdlib.hexdigest() == VECTOR_HEX
    assert signature(SECRET, "1767225600", VECTOR_BODY) == VECTOR_HEX
    assert signature(SECRET.encode(), "1767225600", VECTOR_BODY) == VECTOR_HEX
    headers = signed_headers(SECRET, VECTOR_BODY, "stock:1", timestamp=NOW)
    assert headers == {
        "Content-Type": "application/json",
        "X-Koudai-Timestamp": "1767225600",
        "X-Koudai-Event-Id": "stock:1",
        "X-Koudai-Signature": "sha256=" + VECTOR_HEX,
    }


def test_verify_accepts_the_tolerance_on_both_sides_and_any_header_case() -> None:
    headers = signed_headers(SECRET, VECTOR_BODY, "stock:1", timestamp=NOW)
    assert verify(SECRET, headers, VECTOR_BODY, now=NOW) == NOW
    assert verify(SECRET, headers, VECTOR_BODY, now=NOW - 300) == NOW
    assert verify(SECRET, headers, VECTOR_BODY, now=NOW + 300) == NOW
    lowered = {name.lower(): value for name, value in headers.items()}
    upper_hex = {**lowered, "x-koudai-signature": "sha256=" + VECTOR_HEX.upper()}
    assert verify(SECRET, upper_hex, VECTOR_BODY, now=NOW) == NOW
    assert verify(SECRET, headers, VECTOR_BODY, now=NOW + 60, tolerance=60) == NOW


def _signed(**changes: str | None) -> dict[str, str]:
    headers: dict[str, str | None] = {
        **signed_headers(SECRET, VECTOR_BODY, "stock:1", timestamp=NOW),
        **changes,
    }
    return {name: value for name, value in headers.items() if value is not None}


@pytest.mark.parametrize(
    ("secret", "headers", "body", "now", "message"),
    [
        (SECRET, _signed(), VECTOR_BODY.replace(b"7", b"8"), NOW, "does not match the body"),
        ("another secret", _signed(), VECTOR_BODY, NOW, "does not match the body"),
        (SECRET, _signed(), VECTOR_BODY, NOW + 301, "is 301 s behind our clock (tolerance ±300 s)"),
        (SECRET, _signed(), VECTOR_BODY, NOW - 301, "is 301 s ahead of our clock"),
        (SECRET, _signed(**{"X-Koudai-Timestamp": None}), VECTOR_BODY, NOW, "missing X-Koudai-Ti"),
        (SECRET, _signed(**{"X-Koudai-Signature": None}), VECTOR_BODY, NOW, "missing X-Koudai-Si"),
        (SECRET, _signed(**{"X-Koudai-Signature": VECTOR_HEX}), VECTOR_BODY, NOW, "sha256=<64"),
        (SECRET, _signed(**{"X-Koudai-Timestamp": "1767225600.0"}), VECTOR_BODY, NOW, "unix sec"),
        (SECRET, _signed(**{"X-Koudai-Timestamp": "1767225601"}), VECTOR_BODY, NOW, "not match"),
        ("", _signed(), VECTOR_BODY, NOW, "no secret is configured"),
    ],
    ids=[
        "tampered body",
        "wrong secret",
        "stale",
        "from the future",
        "no timestamp",
        "no signature",
        "no scheme",
        "not an integer timestamp",
        "timestamp changed",
        "no secret",
    ],
)
def test_verify_refuses(
    secret: str, headers: dict[str, str], body: bytes, now: int, message: str
) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(secret, headers, body, now=now)
    assert message in caught.value.message
    assert caught.value.http_status == 401


def test_the_order_event_is_compact_utf8_json_with_a_stable_id() -> None:
    body = encode_event(
        {"event_id": "order.paid:K1", "type": "order.paid", "order": {"placed_at": NOW_DT}}
    )
    assert body == (
        b'{"event_id":"order.paid:K1","type":"order.paid",'
        b'"order":{"placed_at":"2026-01-01T08:30:00Z"}}'
    )
    assert encode_event({"buyer": "李雷"}) == '{"buyer":"李雷"}'.encode()


# -- the connector against the ERP sandbox ---------------------------------------------------


@pytest.fixture
def erp() -> Iterator[WebhookErpSandbox]:
    with WebhookErpSandbox(secret=SECRET) as sandbox:
        yield sandbox


def connector(erp: WebhookErpSandbox, **settings: Any) -> WebhookErpConnector:
    return WebhookErpConnector("erp1", {**erp.settings_for_client(), **settings})


def test_the_kind_is_registered_with_its_capabilities_and_settings() -> None:
    assert connector_class("webhook_erp") is WebhookErpConnector
    assert WebhookErpConnector.capabilities == frozenset({PUSH_ORDER})
    assert WebhookErpConnector.stock_policy == ADOPT
    assert WebhookErpConnector.required_settings == ("order_url", "secret")
    assert WebhookErpConnector.secret_settings == ("secret",)
    with pytest.raises(ValidationError, match="needs the settings secret") as caught:
        WebhookErpConnector.check_settings({"order_url": "http://127.0.0.1:9/orders"})
    assert caught.value.messages == {"secret": ["required"]}
    with pytest.raises(ValidationError, match="absolute http"):
        WebhookErpConnector.check_settings({"order_url": "ftp://erp/orders", "secret": "s"})
    with pytest.raises(ValidationError, match="timeout must be a positive"):
        WebhookErpConnector.check_settings(
            {"order_url": "http://127.0.0.1:9/", "secret": "s", "timeout": 0}
        )
    built = WebhookErpConnector("erp1", {"order_url": "http://127.0.0.1:9/", "secret": SECRET})
    assert repr(built) == "<WebhookErpConnector 'erp1'>"


def test_push_order_is_signed_received_once_and_returns_their_id(erp: WebhookErpSandbox) -> None:
    client = connector(erp)
    assert client.push_order(export()) == "SO000001"
    assert client.push_order(export()) == "SO000001"  # a re-send: same event, same id
    assert client.push_order(export("K20260101002")) == "SO000002"
    client.close()
    assert (erp.deliveries, erp.refused, len(erp.orders)) == (3, [], 2)
    kept = erp.orders["order.paid:K20260101001"]
    assert kept.event == {
        "event_id": "order.paid:K20260101001",
        "type": "order.paid",
        "order": {
            "number": "K20260101001",
            "channel": "web",
            "placed_at": "2026-01-01T08:30:00Z",
            "currency": "CNY",
            "total": 25800,
            "shipping_fee": 0,
            "lines": [
                {"sku": "SHIRT-W", "name": "Oxford shirt", "quantity": 2, "unit_price": 12900}
            ],
            "address": ADDRESS,
            "buyer": "李雷",
        },
    }
    assert abs(kept.timestamp - time.time()) < 60
    assert erp.received("K20260101002") is erp.orders["order.paid:K20260101002"]
    assert erp.received("K-UNKNOWN") is None


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ("rate_limit", RateLimited, "throttled by the ERP (429)"),
        ("server_error", TemporaryFailure, "the ERP answered HTTP 500"),
        (
            "unauthorized",
            AuthExpired,
            "the ERP refused our signature (401); check the channel's secret",
        ),
        (
            "bad_request",
            PermanentFailure,
            "the ERP refused the event (HTTP 400): order has no warehouse mapping",
        ),
    ],
)
def test_push_order_failures_map_to_typed_errors(
    erp: WebhookErpSandbox, fault: str, error: type[Exception], message: str
) -> None:
    client = connector(erp)
    erp.fail_next(1, fault)
    with pytest.raises(error) as caught:
        client.push_order(export())
    assert type(caught.value) is error
    assert str(caught.value) == f"erp1: order K20260101001: {message}"
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 7.0
    assert len(erp.orders) == 0
    assert client.push_order(export()) == "SO000001"  # the fault has passed
    client.close()


def test_the_sandbox_refuses_unknown_faults_and_sends_to_loopback_only(
    erp: WebhookErpSandbox,
) -> None:
    with pytest.raises(ValueError, match="fault kind is one of server_error, rate_limit"):
        erp.fail_next(1, "meteor")
    with pytest.raises(ValueError, match="loopback addresses only, not 'shop.example.com'"):
        erp.send_stock("http://shop.example.com/shop-hooks/erp/erp1", [])
    with pytest.raises(ValueError, match="no hook URL"):
        erp.send_stock(None, [])


def test_a_wrong_secret_is_refused_by_the_erp_as_auth_expired(erp: WebhookErpSandbox) -> None:
    client = connector(erp, secret="not the shared secret")
    with pytest.raises(AuthExpired, match=r"refused our signature \(401\); check the channel"):
        client.push_order(export())
    client.close()
    assert erp.refused == [
        "X-Koudai-Signature does not match the body and timestamp for this channel's secret"
    ]
    assert erp.orders == {}


def test_timeouts_and_refused_connections_are_temporary(erp: WebhookErpSandbox) -> None:
    erp.fail_next(1, "timeout", seconds=1.0)
    client = connector(erp, timeout=0.2)
    with pytest.raises(TemporaryFailure, match=r"order K20260101001 timed out after 0.2s"):
        client.push_order(export())
    # The ERP kept the late delivery (or keeps it now); the retry is the same event.
    assert client.push_order(export()) == "SO000001"
    client.close()
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = connector(erp, order_url=f"http://127.0.0.1:{port}/orders", timeout=1)
    with pytest.raises(TemporaryFailure, match="could not be sent: ConnectionError"):
        closed.push_order(export())
    closed.close()


def test_a_wrong_order_url_is_a_permanent_failure(erp: WebhookErpSandbox) -> None:
    client = connector(erp, order_url=f"{erp.url}/nowhere")
    with pytest.raises(PermanentFailure, match=r"refused the event \(HTTP 404\)"):
        client.push_order(export())
    client.close()
    assert erp.deliveries == 0


# -- the shop's hooks ------------------------------------------------------------------------


@dataclass
class Shop:
    app: Flask
    server: LoopbackServer
    erp: WebhookErpSandbox
    channel_id: int

    @property
    def hooks(self) -> str:
        return f"{self.server.url}/shop-hooks/erp/erp1"


@contextmanager
def open_shop(make_app: Any, url: str, erp: WebhookErpSandbox) -> Iterator[Shop]:
    app = make_app(url)
    with app.app_context(), LoopbackServer(app) as server:
        catalog.create_product(
            title="Oxford shirt",
            options=["color"],
            skus=[
                {"code": "SHIRT-W", "price": 12900, "attributes": {"color": "white"}, "stock": 10},
                {"code": "SHIRT-B", "price": 13900, "attributes": {"color": "blue"}, "stock": 10},
            ],
        )
        channel = channels.create("webhook_erp", "erp1", settings=erp.settings_for_client())
        channels.link("erp1", "SHIRT-B", external_item_id="A-100", external_sku_id="A-100-BLUE")
        erp.hook_url = f"{server.url}/shop-hooks/erp/erp1"
        yield Shop(app, server, erp, channel.id)


@pytest.fixture
def shop(make_app: Any, database_url: str, erp: WebhookErpSandbox) -> Iterator[Shop]:
    """A shop served on loopback, with SHIRT-W and SHIRT-B (10 each) and the channel erp1."""
    with open_shop(make_app, database_url, erp) as opened:
        yield opened


@pytest.fixture
def pg_shop(make_app: Any, postgres_url: str, erp: WebhookErpSandbox) -> Iterator[Shop]:
    """The same shop on PostgreSQL only (concurrent deliveries)."""
    with open_shop(make_app, postgres_url, erp) as opened:
        yield opened


def on_hand() -> dict[str, int]:
    session = current_session()
    session.rollback()
    rows = session.execute(
        select(Sku.code, StockLevel.on_hand).join(StockLevel, StockLevel.sku_id == Sku.id)
    ).all()
    session.rollback()
    return {code: quantity for code, quantity in rows}


def count(model: Any) -> int:
    session = current_session()
    session.rollback()
    value = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return int(value or 0)


def test_stock_counts_are_adopted_and_a_replay_changes_nothing(shop: Shop) -> None:
    counts = [
        {"sku": "SHIRT-W", "quantity": 7},
        {"item_id": "A-100", "sku_id": "A-100-BLUE", "quantity": 0},
        {"sku": "NO-SUCH-SKU", "quantity": 3},
        {"item_id": "X-9", "quantity": 1},
    ]
    status, answer = shop.erp.send_stock(None, counts, "stock:1")
    assert (status, answer) == (
        200,
        {
            "event_id": "stock:1",
            "applied": 2,
            "unchanged": 0,
            "unknown": ["NO-SUCH-SKU", "X-9/"],
            "refused": [],
        },
    )
    assert on_hand() == {"SHIRT-W": 7, "SHIRT-B": 0}
    movements = count(StockMovement)

    status, answer = shop.erp.send_stock(None, counts, "stock:1")
    assert status == 409
    assert answer == {
        "code": "Replayed",
        "message": "event 'stock:1' was already received on 'erp1'",
        "errors": {},
    }
    assert (on_hand(), count(StockMovement), count(ChannelReceipt)) == (
        {"SHIRT-W": 7, "SHIRT-B": 0},
        movements,
        1,
    )

    status, answer = shop.erp.send_stock(None, counts[:2], "stock:2")
    assert (status, answer["applied"], answer["unchanged"]) == (200, 0, 2)
    assert count(StockMovement) == movements
    assert_ledger_consistent(current_session())


def test_stale_or_forged_stock_events_change_nothing_and_burn_no_id(shop: Shop) -> None:
    counts = [{"sku": "SHIRT-W", "quantity": 4}]
    stale = int(time.time()) - 301
    status, answer = shop.erp.send_stock(None, counts, "stock:9", timestamp=stale)
    assert status == 401
    assert answer["code"] == "SignatureError"
    assert "s behind our clock (tolerance ±300 s)" in answer["message"]
    status, answer = shop.erp.send_stock(None, counts, "stock:9", timestamp=stale + 700)
    assert (status, "s ahead of our clock" in answer["message"]) == (401, True)
    with WebhookErpSandbox(secret="a forger's guess", hook_url=shop.hooks) as forger:
        status, answer = forger.send_stock(None, counts, "stock:9")
    assert (status, answer["message"]) == (
        401,
        "X-Koudai-Signature does not match the body and timestamp for this channel's secret",
    )
    assert (on_hand(), count(ChannelReceipt)) == ({"SHIRT-W": 10, "SHIRT-B": 10}, 0)
    status, answer = shop.erp.send_stock(None, counts, "stock:9")
    assert (status, answer["applied"], on_hand()["SHIRT-W"]) == (200, 1, 4)


def _post(shop: Shop, body: bytes, *, event_id: str = "stock:1", path: str = "stock") -> Any:
    headers = signed_headers(SECRET, body, event_id)
    return shop.app.test_client().post(f"/shop-hooks/erp/erp1/{path}", data=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "status", "code", "errors"),
    [
        (b"counts: 3", 400, "Malformed", {}),
        (b"[1, 2]", 400, "Malformed", {}),
        (
            b'{"event_id": "stock:1"}',
            422,
            "ValidationError",
            {"counts": ["Missing data for required field."]},
        ),
        (
            b'{"event_id": "stock:1", "counts": [{"sku": "SHIRT-W", "quantity": -1}]}',
            422,
            "ValidationError",
            {"counts": {"0": {"quantity": ["Must be greater than or equal to 0."]}}},
        ),
        (
            b'{"event_id": "stock:1", "counts": [{"sku": "SHIRT-W", "quantity": "3"}]}',
            422,
            "ValidationError",
            {"counts": {"0": {"quantity": ["Not a valid integer."]}}},
        ),
        (
            b'{"event_id": "stock:1", "counts": [{"quantity": 3}]}',
            422,
            "ValidationError",
            {
                "counts": {
                    "0": {"_schema": ["a count names our sku, or their item_id (and sku_id)"]}
                }
            },
        ),
    ],
    ids=["not json", "not an object", "no counts", "negative", "a string", "no sku"],
)
def test_malformed_stock_events_are_refused_with_a_message(
    shop: Shop, body: bytes, status: int, code: str, errors: dict[str, Any]
) -> None:
    response = _post(shop, body)
    assert (response.status_code, response.json["code"], response.json["errors"]) == (
        status,
        code,
        errors,
    )
    assert response.json["message"]
    assert (on_hand(), count(ChannelReceipt)) == ({"SHIRT-W": 10, "SHIRT-B": 10}, 0)


def test_an_event_id_header_contradicting_the_body_is_refused(shop: Shop) -> None:
    body = b'{"event_id": "stock:1", "counts": [{"sku": "SHIRT-W", "quantity": 1}]}'
    response = _post(shop, body, event_id="stock:2")
    assert (response.status_code, response.json["message"]) == (
        400,
        "X-Koudai-Event-Id differs from the body's event_id",
    )
    assert on_hand()["SHIRT-W"] == 10


def test_a_body_over_two_mebibytes_is_refused(shop: Shop) -> None:
    body = b'{"event_id": "stock:1", "counts": []}' + b" " * (2 * 1024 * 1024)
    response = _post(shop, body)
    assert (response.status_code, response.json["code"]) == (413, "TooLarge")


def test_a_refusal_is_one_log_line_without_secret_or_signature(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"event_id": "stock:1", "counts": [{"sku": "SHIRT-W", "quantity": 1}]}'
    headers = signed_headers("a forger's guess", body, "stock:1")
    with caplog.at_level(logging.WARNING, logger="koudai_flask.erp"):
        response = shop.app.test_client().post(
            "/shop-hooks/erp/erp1/stock", data=body, headers=headers
        )
    assert response.status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "koudai_flask.erp"]
    assert lines == [
        "stock event for 'erp1' refused with 401 from 127.0.0.1: X-Koudai-Signature does not"
        " match the body and timestamp for this channel's secret"
    ]


def test_unknown_other_kind_or_inactive_channels_are_404(shop: Shop) -> None:
    body = b'{"event_id": "stock:1", "counts": [{"sku": "SHIRT-W", "quantity": 1}]}'
    client = shop.app.test_client()
    for name in ("nope", "web"):
        response = client.post(
            f"/shop-hooks/erp/{name}/stock", data=body, headers=signed_headers(SECRET, body, "s")
        )
        assert (response.status_code, response.json["message"]) == (
            404,
            f"no active webhook_erp channel named {name!r}",
        )
    channels.set_active("erp1", False)
    assert _post(shop, body).status_code == 404
    assert on_hand()["SHIRT-W"] == 10


def test_copies_of_one_event_posted_at_once_apply_once(pg_shop: Shop) -> None:
    shop = pg_shop
    body = encode_event({"event_id": "stock:race", "counts": [{"sku": "SHIRT-W", "quantity": 3}]})
    headers = signed_headers(SECRET, body, "stock:race")
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        response = requests.post(f"{shop.hooks}/stock", data=body, headers=headers, timeout=30)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * 7
    assert (on_hand()["SHIRT-W"], count(ChannelReceipt)) == (3, 1)
    assert_ledger_consistent(current_session())


def _paid_order() -> str:
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 2}], address=ADDRESS)
    orders.mark_paid(order.number, amount=order.total, transaction_id="t-1", provider="offline")
    return order.number


def status_of(number: str) -> str:
    session = current_session()
    session.rollback()
    value = session.scalar(select(Order.status).where(Order.number == number))
    session.rollback()
    return str(value)


def test_the_shipment_hook_ships_a_paid_order_once(shop: Shop) -> None:
    number = _paid_order()
    status, answer = shop.erp.send_shipment(None, number, "yuantong", "YT1000000001")
    assert (status, answer) == (
        200,
        {"event_id": "shipment:yuantong:YT1000000001", "order_number": number, "shipped": True},
    )
    assert (status_of(number), on_hand()["SHIRT-W"]) == ("shipped", 8)
    status, answer = shop.erp.send_shipment(None, number, "yuantong", "YT1000000001")
    assert (status, answer["code"]) == (409, "Replayed")
    status, answer = shop.erp.send_shipment(
        None, number, "yuantong", "YT1000000001", event_id="shipment:again"
    )
    assert (status, answer["shipped"]) == (200, False)
    assert (status_of(number), on_hand()["SHIRT-W"]) == ("shipped", 8)


def test_bad_shipments_are_refused_and_change_nothing(shop: Shop) -> None:
    number = _paid_order()
    status, answer = shop.erp.send_shipment(None, number, "pigeon", "P1")
    assert (status, answer["errors"]) == (422, {"carrier": ["not a known Kuaidi100 code"]})
    status, answer = shop.erp.send_shipment(None, "K-NOPE", "yuantong", "YT1")
    assert (status, answer["code"]) == (404, "NotFound")
    assert (status_of(number), count(ChannelReceipt)) == ("paid", 0)


def test_the_sandbox_ships_back_what_the_connector_pushed(make_app: Any, database_url: str) -> None:
    """The whole loop: our order goes to the ERP, which ships it and tells the shop."""
    app = make_app(database_url)
    with (
        app.app_context(),
        LoopbackServer(app) as server,
        WebhookErpSandbox(hook_url=f"{server.url}/shop-hooks/erp/erp1", ship_after=0) as erp,
    ):
        catalog.create_product(title="Tote", skus=[{"code": "TOTE", "price": 5900, "stock": 5}])
        channels.create("webhook_erp", "erp1", settings=erp.settings_for_client())
        number = _paid_order_of("TOTE")
        client = WebhookErpConnector("erp1", erp.settings_for_client())
        assert client.push_order(export(number)) == "SO000001"
        client.close()
        deadline = time.monotonic() + 20
        while status_of(number) != "shipped" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status_of(number) == "shipped"
        listing = requests.get(erp.url + "/", timeout=5).json()
        assert [o["order"]["number"] for o in listing["orders"]] == [number]


def _paid_order_of(sku: str) -> str:
    order = orders.place(channel="web", lines=[{"sku": sku, "quantity": 1}], address=ADDRESS)
    orders.mark_paid(order.number, amount=order.total, transaction_id="t-2", provider="offline")
    return order.number


def test_the_sandbox_control_endpoint_forwards_counts(shop: Shop) -> None:
    response = requests.post(
        shop.erp.url + "/control/stock",
        data=json.dumps({"counts": [{"sku": "SHIRT-W", "quantity": 6}]}),
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["shop_status"] == 200
    assert response.json()["shop_answer"]["applied"] == 1
    assert on_hand()["SHIRT-W"] == 6


def test_host_csrf_protection_does_not_block_the_hooks(tmp_path: Any, database_url: str) -> None:
    from flask_wtf.csrf import CSRFProtect

    app = Flask("csrf_host", instance_path=str(tmp_path / "csrf"))
    app.config.update(SECRET_KEY="s", KOUDAI_DATABASE_URI=database_url)
    app.add_url_rule("/host-form", "host_form", lambda: "saved", methods=["POST"])
    CSRFProtect(app)
    Koudai(app)
    try:
        with app.app_context():
            catalog.create_product(title="Tote", skus=[{"code": "TOTE", "price": 5900}])
            channels.create(
                "webhook_erp",
                "erp1",
                settings={"order_url": "http://127.0.0.1:9/", "secret": SECRET},
            )
        body = encode_event({"event_id": "stock:1", "counts": [{"sku": "TOTE", "quantity": 2}]})
        reply = app.test_client().post(
            "/shop-hooks/erp/erp1/stock", data=body, headers=signed_headers(SECRET, body, "stock:1")
        )
        assert (reply.status_code, reply.json["applied"]) == (200, 1)
        assert app.test_client().post("/host-form").status_code == 400  # the host's CSRF is on
    finally:
        engine = get_state(app).engine
        assert engine is not None
        engine.dispose()


# -- receipts --------------------------------------------------------------------------------


def test_receipts_are_taken_once_per_channel_and_pruned(app: Flask) -> None:
    first = channels.create("erp", "erp-a").id
    second = channels.create("erp", "erp-b").id
    assert (receipts.seen(first, "e1"), receipts.take(first, "e1")) == (False, True)
    assert (receipts.seen(first, "e1"), receipts.take(first, "e1")) == (True, False)
    assert receipts.take(second, "e1") is True
    with pytest.raises(ValidationError, match="1 to 128 characters"):
        receipts.take(first, "")
    with pytest.raises(ValidationError, match="1 to 128 characters"):
        receipts.take(first, "x" * 129)
    old = datetime.now(UTC) - timedelta(minutes=11)
    session = current_session()
    session.execute(
        insert(ChannelReceipt).values(channel_id=first, receipt_id="old", received_at=old)
    )
    session.commit()
    assert receipts.prune(datetime.now(UTC) - timedelta(minutes=10)) == 1
    assert (receipts.seen(first, "old"), receipts.seen(first, "e1")) == (False, True)
    with pytest.raises(ValidationError, match="timezone-aware"):
        receipts.prune(datetime(2026, 1, 1))


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_serves_the_erp_and_keeps_the_secret_off_screen(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Flask("webhook_erp_cli_test", instance_path=str(tmp_path / "inst"))
    folder = tmp_path / "inst" / "koudai-sandbox" / "webhook_erp"
    seen: list[str] = []

    def serve_once() -> None:
        settings = json.loads((folder / "channel_settings.json").read_text(encoding="utf-8"))
        client = WebhookErpConnector("erp", settings)
        seen.append(client.push_order(export()))
        client.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(sandbox_cli_module, "_wait_for_ctrl_c", serve_once)
    result = app.test_cli_runner().invoke(
        sandbox_cli, ["webhook-erp", "--shop-hooks", "http://127.0.0.1:5000/shop-hooks"]
    )
    assert (result.exit_code, seen) == (0, ["SO000001"]), result.output
    secret = (folder / "secret").read_text(encoding="utf-8").strip()
    assert len(secret) == 48 and secret not in result.output
    lines = result.output.splitlines()
    assert lines[1] == (
        "  it sends stock and shipments to http://127.0.0.1:5000/shop-hooks/erp/erp/stock"
        " and .../shipment"
    )
    assert lines[-1] == "Webhook ERP sandbox stopped."
    for name in ("secret", "channel_settings.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    refused = app.test_cli_runner().invoke(
        sandbox_cli, ["webhook-erp", "--shop-hooks", "http://shop.example.com/shop-hooks"]
    )
    assert refused.exit_code != 0
    assert "--shop-hooks must be a loopback URL" in refused.output
