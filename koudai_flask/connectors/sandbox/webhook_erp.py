"""An in-house ERP on a loopback socket, speaking the ``webhook_erp`` protocol both ways.

It plays the "webhook-ERP client" a merchant's IT team would write
(:mod:`koudai_flask.connectors.erp.webhook` is the protocol):

- ``POST /orders`` receives our signed ``order.paid`` events: it verifies the signature and
  the timestamp (401 otherwise), keeps each event once by ``event_id`` and answers
  ``{"id": "SO000001"}`` (201 the first time, 200 with the same id for a repeat);
- :meth:`WebhookErpSandbox.send_stock` and :meth:`~WebhookErpSandbox.send_shipment` post
  signed events to a shop's ``<hooks prefix>/erp/<channel name>`` and return the HTTP status
  and the decoded answer;
- ``fail_next(n, kind)`` makes the next ``n`` order deliveries fail as a real server would:
  ``server_error`` (500), ``rate_limit`` (429 with ``Retry-After``), ``timeout`` (answers only
  after ``seconds``, having kept the order), ``unauthorized`` (401), ``bad_request`` (400).

Run alone (``flask koudai sandbox webhook-erp``), ``GET /`` lists the received orders and
``POST /control/stock`` / ``POST /control/shipment`` (the same JSON as the events, without
``event_id``) make it send an event to the shop, so a person can drive it with curl::

    erp = WebhookErpSandbox(hook_url="http://127.0.0.1:5000/shop-hooks/erp/erp1")
    channels.create("webhook_erp", "erp1", settings=erp.settings_for_client())
    status, answer = erp.send_stock(None, [{"sku": "SHIRT-W", "quantity": 7}])
    erp.stop()
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, Response, json, jsonify, request

from koudai_flask.connectors.erp.webhook import (
    EVENT_ID_HEADER,
    encode_event,
    signed_headers,
    verify,
)
from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.errors import SignatureError

FAULT_KINDS = ("server_error", "rate_limit", "timeout", "unauthorized", "bad_request")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class ReceivedOrder:
    """An ``order.paid`` event the ERP kept, with the id it gave the order."""

    their_id: str
    event_id: str
    timestamp: int
    event: dict[str, Any]

    @property
    def order(self) -> dict[str, Any]:
        return dict(self.event["order"])


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float


class WebhookErpSandbox(LoopbackServer):
    """The ERP, served on 127.0.0.1: ``.url``, ``.orders``, ``send_*``, ``fail_next``, ``stop``.

    ``hook_url`` is the channel's hook base (``<hooks prefix>/erp/<channel name>``), used
    when a ``send_*`` call passes no URL; with ``ship_after`` seconds, each new order is
    shipped back that long after it arrived (for the demo).
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        port: int = 0,
        hook_url: str | None = None,
        ship_after: float | None = None,
        retry_after: int = 7,
        quiet: bool = True,
    ) -> None:
        self.secret = secret or secrets.token_hex(24)
        self.hook_url = hook_url
        self.ship_after = ship_after
        self.retry_after = retry_after
        # Received orders by event id, in arrival order.
        self.orders: dict[str, ReceivedOrder] = {}
        self.deliveries = 0  # POST /orders requests, faults and refusals included
        self.refused: list[str] = []  # why a delivery was refused, one line each
        self._ids = itertools.count(1)
        self._faults: deque[Fault] = deque()
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        super().__init__(self._create_app(), port=port, quiet=quiet)

    # -- settings and state ------------------------------------------------------------------

    def settings_for_client(self, **extra: Any) -> dict[str, Any]:
        """The settings of a ``webhook_erp`` channel pointed at this ERP."""
        return {"order_url": f"{self.url}/orders", "secret": self.secret, **extra}

    def fail_next(self, n: int, kind: str, seconds: float = 3.0) -> None:
        """Fail the next ``n`` order deliveries with ``kind`` (one of ``FAULT_KINDS``)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind is one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        with self._lock:
            self._faults.extend(Fault(kind, seconds) for _ in range(n))

    def received(self, order_number: str) -> ReceivedOrder | None:
        """The kept event of one of our orders, by our order number."""
        with self._lock:
            for kept in self.orders.values():
                if kept.event["order"].get("number") == order_number:
                    return kept
        return None

    def stop(self) -> None:
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        super().stop()

    # -- what the ERP sends --------------------------------------------------------------------

    def send_event(
        self, url: str, event: dict[str, Any], *, timestamp: int | None = None
    ) -> tuple[int, Any]:
        """POST one signed event to ``url``; the status and the answer (JSON, else text)."""
        host = urlsplit(url).hostname or ""
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the sandbox sends to loopback addresses only, not {host!r}")
        body = encode_event(event)
        headers = signed_headers(self.secret, body, str(event["event_id"]), timestamp=timestamp)
        response = requests.post(url, data=body, headers=headers, timeout=10)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def send_stock(
        self,
        hook_url: str | None,
        counts: list[dict[str, Any]],
        event_id: str | None = None,
        *,
        timestamp: int | None = None,
    ) -> tuple[int, Any]:
        """Send absolute counts (``{"sku"|"item_id"[, "sku_id"], "quantity"}``) to the shop."""
        event = {"event_id": event_id or f"stock:{uuid.uuid4().hex}", "counts": counts}
        return self.send_event(f"{self._hooks(hook_url)}/stock", event, timestamp=timestamp)

    def send_shipment(
        self,
        hook_url: str | None,
        order_number: str,
        carrier: str,
        tracking_number: str,
        *,
        event_id: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[int, Any]:
        """Tell the shop its order left with ``carrier`` (a Kuaidi100 code)."""
        event = {
            "event_id": event_id or f"shipment:{carrier}:{tracking_number}",
            "order_number": order_number,
            "carrier": carrier,
            "tracking_number": tracking_number,
        }
        return self.send_event(f"{self._hooks(hook_url)}/shipment", event, timestamp=timestamp)

    def _hooks(self, hook_url: str | None) -> str:
        base = hook_url or self.hook_url
        if not base:
            raise ValueError("no hook URL: pass one, or start the sandbox with hook_url")
        return base.rstrip("/")

    def _ship_later(self, order_number: str) -> None:
        if self.ship_after is None or not self.hook_url:
            return
        tracking = f"YT{secrets.randbelow(10**12):012d}"

        def ship() -> None:
            # A demo shop that is gone has nothing to be told.
            with contextlib.suppress(requests.RequestException):
                self.send_shipment(None, order_number, "yuantong", tracking)

        timer = threading.Timer(self.ship_after, ship)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    # -- HTTP ----------------------------------------------------------------------------------

    def _take_fault(self) -> Fault | None:
        with self._lock:
            self.deliveries += 1
            return self._faults.popleft() if self._faults else None

    def _refuse(self, status: int, reason: str) -> Response:
        with self._lock:
            self.refused.append(reason)
        response = jsonify({"error": reason})
        response.status_code = status
        return response

    def _receive_order(self) -> Response:
        fault = self._take_fault()
        if fault is not None and fault.kind != "timeout":
            return _fault_response(fault, self.retry_after)
        if fault is not None:
            time.sleep(fault.seconds)  # the caller has given up; the order is kept anyway
        body = request.get_data(cache=True)
        try:
            stamp = verify(self.secret, request.headers, body)
        except SignatureError as exc:
            return self._refuse(401, exc.message)
        try:
            event = json.loads(body)
        except ValueError:
            return self._refuse(400, "the body is not JSON")
        order = event.get("order") if isinstance(event, dict) else None
        if (
            not isinstance(order, dict)
            or event.get("type") != "order.paid"
            or not order.get("number")
        ):
            return self._refuse(400, "not an order.paid event with an order number")
        event_id = str(event.get("event_id") or "")
        if not event_id or request.headers.get(EVENT_ID_HEADER) != event_id:
            return self._refuse(400, f"event_id missing or not the same as {EVENT_ID_HEADER}")
        with self._lock:
            kept = self.orders.get(event_id)
            if kept is None:
                kept = ReceivedOrder(f"SO{next(self._ids):06d}", event_id, stamp, event)
                self.orders[event_id] = kept
                new = True
            else:
                new = False
        if new:
            self._ship_later(str(order["number"]))
        return _answer({"id": kept.their_id}, 201 if new else 200)

    def _control(self, kind: str) -> Response:
        data = request.get_json(force=True, silent=True)
        if not isinstance(data, dict):
            return _answer({"error": "send a JSON object"}, 400)
        try:
            if kind == "stock":
                status, answer = self.send_stock(None, list(data.get("counts") or []))
            else:
                status, answer = self.send_shipment(
                    None,
                    str(data.get("order_number", "")),
                    str(data.get("carrier", "")),
                    str(data.get("tracking_number", "")),
                )
        except (ValueError, requests.RequestException) as exc:
            return _answer({"error": f"could not reach the shop: {exc}"}, 502)
        return _answer({"shop_status": status, "shop_answer": answer}, 200)

    def _create_app(self) -> Flask:
        app = Flask(__name__)
        app.add_url_rule("/orders", "orders", self._receive_order, methods=["POST"])

        @app.get("/")
        def index() -> Response:
            with self._lock:
                kept = [
                    {"id": o.their_id, "event_id": o.event_id, "order": o.order}
                    for o in self.orders.values()
                ]
            return _answer({"orders": kept, "hook_url": self.hook_url}, 200)

        @app.post("/control/stock")
        def control_stock() -> Response:
            return self._control("stock")

        @app.post("/control/shipment")
        def control_shipment() -> Response:
            return self._control("shipment")

        return app

    def __enter__(self) -> WebhookErpSandbox:
        return self


def _fault_response(fault: Fault, retry_after: int) -> Response:
    if fault.kind == "rate_limit":
        response = _answer({"error": "too many requests"}, 429)
        response.headers["Retry-After"] = str(retry_after)
        return response
    if fault.kind == "unauthorized":
        return _answer({"error": "signature rejected"}, 401)
    if fault.kind == "bad_request":
        return _answer({"message": "order has no warehouse mapping"}, 400)
    return Response(
        "<html><body>500 Internal Server Error</body></html>", 500, mimetype="text/html"
    )


def _answer(data: dict[str, Any], status: int) -> Response:
    response = jsonify(data)
    response.status_code = status
    return response


__all__ = ["FAULT_KINDS", "ReceivedOrder", "WebhookErpSandbox"]
