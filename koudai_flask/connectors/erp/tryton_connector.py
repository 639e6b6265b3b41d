"""The Tryton connector (``kind="tryton"``): a Tryton ERP as a backend of the sync engine.

Tryton's warehouse counts are the truth for on-hand stock (policy ``adopt``): a pull makes
each bound SKU's on-hand what Tryton's storage location holds. Our paid orders go to Tryton
as sales (:meth:`TrytonClient.push_sale`, idempotent by our order number), and Tryton's
outgoing shipments of them come back with the waybill the warehouse recorded, which ships
our order and, for a marketplace's order, tells the marketplace.

Settings: ``url`` (trytond's base URL), ``database``, ``username``, ``password``,
``warehouse`` (a warehouse code; the first warehouse when absent), ``push_as`` (auto, sale
or shipment), ``carrier`` (the Kuaidi100 code of the carrier the warehouse ships with,
since a plain Tryton shipment records the waybill but not the company), ``timeout``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal, cast

from koudai_flask.connectors.base import (
    ADOPT,
    FETCH_SHIPMENTS,
    FETCH_STOCK,
    PUSH_ORDER,
    Connector,
    ListingRef,
    OrderExport,
    RemoteShipment,
    RemoteStock,
)
from koudai_flask.connectors.erp.tryton import TrytonClient
from koudai_flask.connectors.errors import PermanentFailure
from koudai_flask.connectors.logistics.carriers import is_known

SHIPPED_STATES = frozenset({"packed", "done"})


class TrytonConnector(Connector):
    kind: ClassVar[str] = "tryton"
    capabilities: ClassVar[frozenset[str]] = frozenset({FETCH_STOCK, PUSH_ORDER, FETCH_SHIPMENTS})
    stock_policy: ClassVar[str] = ADOPT
    required_settings: ClassVar[tuple[str, ...]] = ("url", "database", "username", "password")
    secret_settings: ClassVar[tuple[str, ...]] = ("password",)

    def __init__(self, name: str, settings: Mapping[str, Any], *, secret_key: str = "") -> None:
        super().__init__(name, settings, secret_key=secret_key)
        self._client: TrytonClient | None = None
        self._warehouse_id: int | None = None

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        super().check_settings(settings)
        carrier = settings.get("carrier")
        if carrier and not is_known(str(carrier)):
            from koudai_flask.errors import ValidationError

            raise ValidationError(
                f"carrier {carrier!r} is not a known Kuaidi100 code", {"carrier": ["unknown"]}
            )

    @property
    def client(self) -> TrytonClient:
        if self._client is None:
            settings = self.settings
            self._client = TrytonClient(
                str(settings["url"]),
                str(settings["database"]),
                str(settings["username"]),
                str(settings["password"]),
                timeout=float(settings.get("timeout", 30.0)),
                push_as=cast(
                    Literal["auto", "sale", "shipment"], str(settings.get("push_as", "auto"))
                ),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.http.close()
            self._client = None

    def warehouse_id(self) -> int:
        if self._warehouse_id is None:
            wanted = self.settings.get("warehouse")
            warehouses = self.client.warehouses()
            if not warehouses:
                raise PermanentFailure(f"tryton channel {self.name}: Tryton has no warehouse")
            chosen = next((w for w in warehouses if w.code == wanted), None) if wanted else None
            if wanted and chosen is None:
                raise PermanentFailure(
                    f"tryton channel {self.name}: no warehouse with code {wanted!r}"
                )
            self._warehouse_id = (chosen or warehouses[0]).id
        return self._warehouse_id

    def fetch_stock(self, listings: Sequence[ListingRef] | None = None) -> Iterator[RemoteStock]:
        codes = None if listings is None else [ref.sku_code for ref in listings]
        for code, quantity in self.client.stock_levels(self.warehouse_id(), codes).items():
            # Tryton's product code is our SKU code: the binding's item id is that code too.
            yield RemoteStock(code, "", int(quantity), sku_code=code)

    def push_order(self, order: OrderExport) -> str:
        pushed = self.client.push_sale(
            {
                "number": order.number,
                "lines": [
                    {
                        "sku": line["sku"],
                        "quantity": line["quantity"],
                        "unit_price_fen": line["unit_price"],
                        "name": line.get("name") or line["sku"],
                    }
                    for line in order.lines
                ],
                "address": dict(order.address),
            },
            self.warehouse_id(),
        )
        return f"{pushed.model}:{pushed.id}"

    def fetch_shipments(self, since: datetime) -> Iterator[RemoteShipment]:
        carrier = str(self.settings.get("carrier") or "")
        for shipment in self.client.shipments_since(since):
            if shipment.state not in SHIPPED_STATES or not shipment.tracking_number:
                continue
            if not carrier:
                raise PermanentFailure(
                    f"tryton channel {self.name}: set the 'carrier' setting (a Kuaidi100 code) "
                    "to ship orders from Tryton's waybills"
                )
            yield RemoteShipment(
                order_number=shipment.reference,
                carrier=carrier,
                tracking_number=shipment.tracking_number,
            )


__all__ = ["TrytonConnector"]
