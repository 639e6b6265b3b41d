"""A stand-in for the super-app's merchant API on 127.0.0.1, for tests and demos.

It keeps the merchant's mini-shop listings (quantity as last published by koudai), checks
every request's signature (``wire``), and can sell: :meth:`SuperAppSandbox.sell` is a buyer
paying in the super-app, after which the super-app's back end creates the order in koudai
through koudai's REST API with its API key, as the real integration would.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_superapp import wire


@dataclass
class Listing:
    listing_id: str
    merchant_code: str
    price: int  # fen
    quantity: int = 0


@dataclass
class SuperAppOrder:
    order_id: str
    listing_id: str
    quantity: int
    koudai_number: str = ""
    shipment: dict[str, str] = field(default_factory=dict)


class SuperAppState:
    def __init__(self, app_id: str, app_secret: str) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.listings: dict[str, Listing] = {}
        self.orders: dict[str, SuperAppOrder] = {}
        self.lock = threading.Lock()
        self.refused = 0
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"


def create_superapp(state: SuperAppState) -> Flask:
    app = Flask("koudai_superapp_sandbox")

    @app.before_request
    def check_signature() -> ResponseReturnValue | None:
        headers = request.headers
        timestamp = headers.get(wire.TIMESTAMP_HEADER, "")
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= wire.TOLERANCE
        signed = wire.valid(
            state.app_secret,
            request.method,
            request.path,
            timestamp,
            request.get_data(),
            headers.get(wire.SIGNATURE_HEADER, ""),
        )
        if headers.get(wire.APP_HEADER) != state.app_id or not fresh or not signed:
            state.refused += 1
            return jsonify({"error": "invalid_signature"}), 401
        return None

    @app.post("/v1/stock")
    def publish_stock() -> ResponseReturnValue:
        accepted = []
        with state.lock:
            for row in (request.get_json(silent=True) or {}).get("stock", []):
                listing = state.listings.get(str(row.get("listing_id")))
                quantity = row.get("quantity")
                if listing is None or not isinstance(quantity, int) or quantity < 0:
                    continue
                listing.quantity = quantity
                accepted.append(listing.listing_id)
        return jsonify({"accepted": accepted})

    @app.get("/v1/listings")
    def listings() -> ResponseReturnValue:
        with state.lock:
            rows = [
                {
                    "listing_id": x.listing_id,
                    "merchant_code": x.merchant_code,
                    "quantity": x.quantity,
                }
                for x in state.listings.values()
            ]
        return jsonify({"listings": rows})

    @app.post("/v1/orders/<order_id>/shipment")
    def ship(order_id: str) -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        with state.lock:
            order = state.orders.get(order_id)
            if order is None:
                return jsonify({"error": "unknown_order"}), 404
            order.shipment = {
                "carrier": str(body.get("carrier", "")),
                "tracking_number": str(body.get("tracking_number", "")),
            }
        return jsonify({"order_id": order_id, "status": "shipped"})

    return app


class SuperAppSandbox(LoopbackServer):
    """The super-app on a loopback port: ``.url``, ``.state``, ``.stop()``."""

    def __init__(self, *, app_id: str = "sa-merchant-1", app_secret: str = "", port: int = 0):
        self.state = SuperAppState(app_id, app_secret or uuid.uuid4().hex)
        super().__init__(create_superapp(self.state), port=port)

    def settings_for_channel(self) -> dict[str, Any]:
        """What ``services.channels.create("superapp", name, settings=...)`` needs."""
        return {
            "api_url": self.url,
            "app_id": self.state.app_id,
            "app_secret": self.state.app_secret,
        }

    def add_listing(self, merchant_code: str, price: int) -> Listing:
        """A listing in the mini-shop for one of the merchant's SKUs (by its code)."""
        with self.state.lock:
            listing = Listing(self.state.next_id("L"), merchant_code, price)
            self.state.listings[listing.listing_id] = listing
        return listing

    def sell(
        self,
        listing_id: str,
        quantity: int,
        *,
        koudai_api: str,
        api_key: str,
        channel: str,
        address: dict[str, str] | None = None,
    ) -> requests.Response:
        """A buyer pays for ``quantity`` of a listing; the super-app records the sale in koudai.

        Two calls of koudai's REST API: create the order (the stock is reserved), then record
        the payment the super-app took. The super-app's order id is the order's external id
        and, with a suffix per call, each request's ``Idempotency-Key``: a retried call cannot
        make a second order or a second payment. Returns the last answer.
        """
        with self.state.lock:
            listing = self.state.listings[listing_id]
            order = SuperAppOrder(self.state.next_id("SA"), listing_id, quantity)
            self.state.orders[order.order_id] = order
        api = koudai_api.rstrip("/")
        auth = {"Authorization": f"Bearer {api_key}"}
        body = {
            "channel": channel,
            "external_id": order.order_id,
            "lines": [
                {"sku": listing.merchant_code, "quantity": quantity, "unit_price": listing.price}
            ],
            "address": address
            or {"name": "超级应用买家", "phone": "13900139000", "street": "滨江区网商路 699 号"},
        }
        created = requests.post(
            f"{api}/orders",
            json=body,
            headers={**auth, "Idempotency-Key": f"{order.order_id}-create"},
            timeout=10,
        )
        if not created.ok:
            return created
        placed = created.json()
        order.koudai_number = placed["number"]
        return requests.post(
            f"{api}/orders/{placed['number']}/payments",
            json={"amount": placed["total"], "transaction_id": f"sa-pay-{order.order_id}"},
            headers={**auth, "Idempotency-Key": f"{order.order_id}-pay"},
            timeout=10,
        )
