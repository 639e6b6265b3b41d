"""``SuperAppConnector``: koudai publishes stock to the mini-shop and sends shipments back.

Orders go the other way through koudai's REST API: the super-app's back end creates each
order it sells with an API key scoped to this channel (``POST /orders`` with the channel's
name and the super-app's order id), so stock is reserved in the shared ledger the moment the
buyer pays there. Nothing in koudai_flask names this package: the entry point in
``pyproject.toml`` is the whole integration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import requests

from koudai_flask.connectors.base import (
    FETCH_STOCK,
    PUSH_SHIPMENT,
    PUSH_STOCK,
    Connector,
    ListingRef,
    RemoteStock,
    StockPush,
)
from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_superapp import wire


class SuperAppConnector(Connector):
    kind = "superapp"
    capabilities: ClassVar[frozenset[str]] = frozenset({PUSH_STOCK, FETCH_STOCK, PUSH_SHIPMENT})
    required_settings: ClassVar[tuple[str, ...]] = ("api_url", "app_id", "app_secret")
    secret_settings: ClassVar[tuple[str, ...]] = ("app_secret",)
    push_batch: ClassVar[int] = 50

    def __init__(self, name: str, settings: Mapping[str, Any], *, secret_key: str = "") -> None:
        super().__init__(name, settings, secret_key=secret_key)
        self._http = requests.Session()

    # -- the wire ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            wire.APP_HEADER: str(self.settings["app_id"]),
            wire.TIMESTAMP_HEADER: timestamp,
            wire.SIGNATURE_HEADER: wire.signature(
                str(self.settings["app_secret"]), method, path, timestamp, raw
            ),
            "Content-Type": "application/json",
        }
        url = str(self.settings["api_url"]).rstrip("/") + path
        try:
            response = self._http.request(
                method, url, data=raw or None, headers=headers, timeout=10
            )
        except requests.RequestException as exc:
            raise TemporaryFailure(f"super-app unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429:
            retry_after = float(response.headers.get("Retry-After") or 60)
            raise RateLimited("super-app rate limit", retry_after)
        if response.status_code == 401:
            raise AuthExpired("super-app refused the app id or secret")
        if response.status_code >= 500:
            raise TemporaryFailure(f"super-app answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentFailure(
                f"super-app refused: {response.status_code} {response.text[:200]}"
            )
        return response.json()

    # -- capabilities ------------------------------------------------------------------------

    def push_stock(self, pushes: Sequence[StockPush]) -> list[StockPush]:
        body = {
            "stock": [
                {"listing_id": push.listing.external_item_id, "quantity": push.quantity}
                for push in pushes
            ]
        }
        accepted = set(self._call("POST", "/v1/stock", body)["accepted"])
        return [push for push in pushes if push.listing.external_item_id in accepted]

    def fetch_stock(self, listings: Sequence[ListingRef] | None = None) -> Iterator[RemoteStock]:
        for row in self._call("GET", "/v1/listings")["listings"]:
            yield RemoteStock(
                external_item_id=str(row["listing_id"]),
                external_sku_id="",
                quantity=int(row["quantity"]),
                sku_code=str(row.get("merchant_code") or ""),
            )

    def push_shipment(self, external_id: str, carrier: str, tracking_number: str) -> None:
        body = {"carrier": carrier, "tracking_number": tracking_number}
        self._call("POST", f"/v1/orders/{external_id}/shipment", body)

    def close(self) -> None:
        self._http.close()
