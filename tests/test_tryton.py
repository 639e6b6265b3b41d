"""The Tryton adapter against a real trytond on loopback (PROTOCOLS §6.7).

Stock in (an inventory counted in Tryton shows in ``stock_levels``), order out (``push_sale``
creates one sale, idempotently), shipment back (the warehouse ships it in Tryton with a
waybill, ``shipments_since`` reports it under our order number) and the error mapping.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from koudai_flask.connectors.erp.tryton import TrytonClient, TrytonWarning
from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.connectors.sandbox.loopback import POLL_INTERVAL
from tests.tryton_server import TrytonServer


def _code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


@pytest.fixture
def client(running_tryton: TrytonServer) -> Iterator[TrytonClient]:
    client = TrytonClient(
        running_tryton.url,
        running_tryton.database,
        running_tryton.username,
        running_tryton.password,
        timeout=30,
    )
    yield client
    client.http.close()


@pytest.fixture
def warehouse_id(client: TrytonClient) -> int:
    return client.warehouses()[0].id


def _order(number: str, *lines: tuple[str, int, int]) -> dict[str, object]:
    return {
        "number": number,
        "lines": [
            {"sku": sku, "quantity": quantity, "unit_price_fen": price}
            for sku, quantity, price in lines
        ],
        "address": {
            "name": "张三",
            "phone": "13800000000",
            "province": "上海市",
            "city": "上海市",
            "district": "黄浦区",
            "street": "南京东路 1 号",
            "postcode": "200001",
        },
    }


def test_login_loads_the_user_context(client: TrytonClient) -> None:
    client.login()
    assert client.user_id and client.session_token
    assert client.context["company"]
    assert client.context["language"] == "en"
    assert client.has_sale_module()
    (warehouse,) = client.warehouses()
    assert warehouse.code == "WH"
    assert warehouse.storage_location_id != warehouse.id


def test_stock_counted_in_tryton_shows_in_stock_levels(
    client: TrytonClient, warehouse_id: int
) -> None:
    code = _code("SKU")
    product = client.ensure_product(code, "Oxford shirt")
    assert product.created and product.code == code
    assert client.ensure_product(code, "Oxford shirt").id == product.id  # found, not created
    assert client.stock_levels(warehouse_id, [code]) == {code: 0}

    client.set_stock(code, 42, warehouse_id)

    assert client.stock_levels(warehouse_id, [code]) == {code: 42}
    assert client.stock_levels(warehouse_id)[code] == 42
    assert client.stock_levels(warehouse_id, []) == {}
    assert client.stock_levels(warehouse_id, ["NO-SUCH-CODE"]) == {}


def test_push_sale_creates_one_sale_and_is_idempotent(
    client: TrytonClient, warehouse_id: int
) -> None:
    shirt, socks = _code("SHIRT"), _code("SOCKS")
    number = _code("KD")
    order = _order(number, (shirt, 2, 12900), (socks, 3, 1990))

    first = client.push_sale(order, warehouse_id)
    again = client.push_sale(order, warehouse_id)

    assert first.model == "sale.sale" and first.created and first.state == "processing"
    assert again.id == first.id and not again.created
    sales = client.search_read("sale.sale", [["reference", "=", number]], ["lines", "party"])
    assert len(sales) == 1
    lines = client.model(
        "sale.line", "read", sales[0]["lines"], ["product.code", "quantity", "unit_price"]
    )
    got = sorted(
        (line["product."]["code"], line["quantity"], str(line["unit_price"])) for line in lines
    )
    assert got == sorted([(shirt, 2.0, "129.00"), (socks, 3.0, "19.90")])
    (party,) = client.model("party.party", "read", [sales[0]["party"]], ["name"])
    assert party["name"] == "张三"


def test_shipment_done_in_tryton_comes_back_with_order_number_and_waybill(
    client: TrytonClient, warehouse_id: int
) -> None:
    code = _code("SKU")
    client.ensure_product(code, "Silk scarf")
    client.set_stock(code, 10, warehouse_id)
    number = _code("KD")
    since = datetime.now(UTC) - timedelta(seconds=2)
    pushed = client.push_sale(_order(number, (code, 3, 25800)), warehouse_id)

    (sale,) = client.model("sale.sale", "read", [pushed.id], ["shipments"])
    (shipment_id,) = sale["shipments"]
    waiting = [s for s in client.shipments_since(since) if s.reference == number]
    assert [(s.id, s.state, s.tracking_number) for s in waiting] == [(shipment_id, "waiting", None)]

    # The warehouse works the shipment in Tryton and records the carrier's waybill.
    client.model("stock.shipment.out", "write", [shipment_id], {"reference": "SF1234567890"})
    for button in ("assign_try", "pick", "pack", "ship", "do"):
        client.model("stock.shipment.out", button, [shipment_id])

    (done,) = [s for s in client.shipments_since(since) if s.reference == number]
    assert done.id == shipment_id
    assert done.state == "done"
    assert done.tracking_number == "SF1234567890"
    assert done.effective_date is not None
    assert done.write_date >= since
    assert client.stock_levels(warehouse_id, [code]) == {code: 7}
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert [s for s in client.shipments_since(later) if s.reference == number] == []


def test_without_sales_an_order_goes_out_as_a_shipment(
    running_tryton: TrytonServer, warehouse_id: int
) -> None:
    client = TrytonClient(
        running_tryton.url,
        running_tryton.database,
        running_tryton.username,
        running_tryton.password,
        push_as="shipment",
    )
    code, number = _code("SKU"), _code("KD")
    client.ensure_product(code, "Tea cup")
    client.set_stock(code, 5, warehouse_id)
    since = datetime.now(UTC) - timedelta(seconds=2)

    first = client.push_sale(_order(number, (code, 1, 3900)), warehouse_id)
    again = client.push_sale(_order(number, (code, 1, 3900)), warehouse_id)

    assert first.model == "stock.shipment.out" and first.created and first.state == "waiting"
    assert again.id == first.id and not again.created
    client.model("stock.shipment.out", "assign_try", [first.id])
    client.model("stock.shipment.out", "pick", [first.id])
    # With the sale module activated, Tryton asks a person to confirm customer moves that
    # come from no sale: the warehouse clerk accepts the warning and presses again.
    for button in ("pack", "do"):
        with pytest.raises(TrytonWarning, match="no origin") as warned:
            client.model("stock.shipment.out", button, [first.id])
        client.accept_warning(warned.value)
        client.model("stock.shipment.out", button, [first.id])
    (done,) = [s for s in client.shipments_since(since) if s.reference == number]
    assert (done.id, done.state, done.tracking_number) == (first.id, "done", None)
    assert client.stock_levels(warehouse_id, [code]) == {code: 4}
    client.http.close()


def test_wrong_password_is_auth_expired(running_tryton: TrytonServer) -> None:
    client = TrytonClient(
        running_tryton.url, running_tryton.database, running_tryton.username, "wrong", timeout=30
    )
    with pytest.raises(AuthExpired):
        client.login()
    with pytest.raises(AuthExpired):
        client.warehouses()


def test_unknown_database_is_permanent(running_tryton: TrytonServer) -> None:
    client = TrytonClient(running_tryton.url, "nosuchdb", "admin", "x", timeout=30)
    with pytest.raises(PermanentFailure, match="no database"):
        client.login()


def test_invalid_calls_are_permanent_failures(client: TrytonClient) -> None:
    with pytest.raises(PermanentFailure, match="not exposed"):
        client.model("product.product", "no_such_method", [])
    with pytest.raises(PermanentFailure):
        client.model("no.such.model", "search", [])
    with pytest.raises(PermanentFailure, match="required"):  # a UserError (validation)
        client.model("product.template", "create", [{"name": "no unit, no type"}])
    with pytest.raises(PermanentFailure, match="no product"):
        client.set_stock("NO-SUCH-CODE", 1)


def test_a_logged_out_session_logs_in_again(
    client: TrytonClient, running_tryton: TrytonServer
) -> None:
    client.login()
    old_session = client.session_token
    # Another client (the same user on another worker) kills this session on the server.
    token = f"{client.username}:{client.user_id}:{client.session_token}"
    header = "Session " + base64.b64encode(token.encode()).decode()
    response = requests.post(
        client.rpc_url,
        json={"id": 1, "method": "common.db.logout", "params": []},
        headers={"Authorization": header},
        timeout=30,
    )
    assert response.status_code == 200
    stale = requests.post(
        client.rpc_url,
        json={"id": 2, "method": "model.res.user.get_preferences", "params": [True, {}]},
        headers={"Authorization": header},
        timeout=30,
    )
    assert stale.status_code == 401

    assert client.warehouses()  # re-logged in once, transparently
    assert client.session_token and client.session_token != old_session


def test_stopped_server_is_a_temporary_failure(
    client: TrytonClient, running_tryton: TrytonServer
) -> None:
    client.login()
    running_tryton.stop()
    try:
        with pytest.raises(TemporaryFailure):
            client.warehouses()
        with pytest.raises(TemporaryFailure):
            TrytonClient(running_tryton.url, "test", "admin", "x", timeout=5).login()
    finally:
        running_tryton.start()
    # Sessions live in the database: the old one still works after the restart.
    assert client.warehouses()


class _FixedAnswer(BaseHTTPRequestHandler):
    """Answers every POST with the status and body set on the server object."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fixed_answer() -> Iterator[tuple[HTTPServer, str]]:
    """A loopback HTTP server for the answers a healthy trytond will not give on demand."""
    server = HTTPServer(("127.0.0.1", 0), _FixedAnswer)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (503, {}, b"busy", TemporaryFailure),
        (502, {}, b"bad gateway", TemporaryFailure),
        (429, {"Retry-After": "7"}, b"", RateLimited),
        (401, {}, b"", AuthExpired),
        (
            200,
            {},
            b'{"id": 1, "error": ["ConcurrencyException", ["Record modified"]]}',
            TemporaryFailure,
        ),
        (200, {}, b'{"id": 1, "error": ["database is locked", ""]}', TemporaryFailure),
        (200, {}, b'{"id": 1, "error": ["UserWarning", ["key", "Sure?", ""]]}', PermanentFailure),
        (
            200,
            {},
            b'{"id": 1, "error": ["LoginException", ["password", "Password", "password"]]}',
            AuthExpired,
        ),
        (200, {}, b"<html>not json</html>", TemporaryFailure),
    ],
)
def test_error_mapping_of_answers_a_healthy_server_rarely_gives(
    fixed_answer: tuple[HTTPServer, str],
    status: int,
    headers: dict[str, str],
    body: bytes,
    expected: type[Exception],
) -> None:
    server, url = fixed_answer
    server.answer = (status, headers, body)  # type: ignore[attr-defined]
    client = TrytonClient(url, "test", "admin", "pw", timeout=5)
    with pytest.raises(expected) as raised:
        client.login()
    if isinstance(raised.value, RateLimited):
        assert raised.value.retry_after == 7.0
