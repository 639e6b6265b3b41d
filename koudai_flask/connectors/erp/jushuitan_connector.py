"""The Jushuitan connector (``kind="jushuitan"``): a Jushuitan ERP as a sync backend.

Like every ERP it is the truth for physical stock (policy ``adopt``): a pull makes each bound
SKU's on-hand Jushuitan's ``qty`` (its physical count; the ERP's own order locks are our
reservations already). Our paid orders are uploaded (idempotent by ``so_id`` = our order
number) and Jushuitan's shipments come back with their waybill and carrier, mapped from its
``lc_id`` to our Kuaidi100 code.

Settings: ``base_url``, ``app_key``, ``app_secret``, ``access_token``, ``refresh_token``,
``shop_id`` (the Jushuitan shop our orders belong to), ``wms_co_id`` (a warehouse; the
company total when absent), ``timeout``. Jushuitan SKU ids are our SKU codes unless a
binding's ``external_sku_id`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

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
from koudai_flask.connectors.erp.jushuitan import (
    JushuitanClient,
    JushuitanOrder,
    OrderItem,
    UnknownCarrier,
)
from koudai_flask.connectors.errors import PermanentFailure
from koudai_flask.models.base import utcnow

MAX_WINDOW = timedelta(days=7)  # /open/inventory/query and /open/logistic/query windows


class JushuitanConnector(Connector):
    kind: ClassVar[str] = "jushuitan"
    capabilities: ClassVar[frozenset[str]] = frozenset({FETCH_STOCK, PUSH_ORDER, FETCH_SHIPMENTS})
    stock_policy: ClassVar[str] = ADOPT
    required_settings: ClassVar[tuple[str, ...]] = (
        "base_url",
        "app_key",
        "app_secret",
        "access_token",
        "shop_id",
    )
    secret_settings: ClassVar[tuple[str, ...]] = ("app_secret", "access_token", "refresh_token")

    def __init__(self, name: str, settings: Mapping[str, Any], *, secret_key: str = "") -> None:
        super().__init__(name, settings, secret_key=secret_key)
        self._client: JushuitanClient | None = None

    @property
    def client(self) -> JushuitanClient:
        if self._client is None:
            settings = self.settings
            self._client = JushuitanClient(
                str(settings["base_url"]),
                str(settings["app_key"]),
                str(settings["app_secret"]),
                str(settings["access_token"]),
                refresh_token=settings.get("refresh_token") or None,
                timeout=float(settings.get("timeout", 10.0)),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def renew_auth(self) -> dict[str, Any] | None:
        if not self.settings.get("refresh_token"):
            return None
        token = self.client.refresh()
        renewed = {"access_token": token.access_token, "refresh_token": token.refresh_token}
        self.settings.update(renewed)
        self.close()
        return renewed

    def _warehouse(self) -> int | None:
        value = self.settings.get("wms_co_id")
        return int(value) if value else None

    def fetch_stock(self, listings: Sequence[ListingRef] | None = None) -> Iterator[RemoteStock]:
        if listings is not None:
            ids = {(ref.external_sku_id or ref.sku_code): ref.sku_code for ref in listings}
            rows = self.client.query_inventory(sku_ids=list(ids), wms_co_id=self._warehouse())
        else:
            ids = {}
            end = utcnow()
            rows = self.client.query_inventory(
                modified_begin=end - MAX_WINDOW, modified_end=end, wms_co_id=self._warehouse()
            )
        for row in rows:
            yield RemoteStock(row.sku_id, row.sku_id, row.qty, sku_code=ids.get(row.sku_id, ""))

    def push_order(self, order: OrderExport) -> str:
        address = dict(order.address)
        street = " ".join(
            str(address.get(k) or "") for k in ("province", "city", "district", "street")
        ).strip()
        upload = JushuitanOrder(
            shop_id=int(self.settings["shop_id"]),
            so_id=order.number,
            order_date=order.placed_at,
            shop_status="WAIT_SELLER_SEND_GOODS",
            shop_buyer_id=order.buyer or order.number,
            receiver_name=str(address.get("name") or order.buyer or "-"),
            receiver_mobile=str(address.get("phone") or ""),
            receiver_address=street or "-",
            receiver_state=str(address.get("province") or ""),
            receiver_city=str(address.get("city") or ""),
            receiver_district=str(address.get("district") or ""),
            receiver_zip=str(address.get("postcode") or ""),
            pay_amount=order.total,
            freight=order.shipping_fee,
            items=tuple(
                OrderItem(
                    sku_id=str(line["sku"]),
                    shop_sku_id=str(line["sku"]),
                    amount=int(line["unit_price"]) * int(line["quantity"]),
                    base_price=int(line["unit_price"]),
                    qty=int(line["quantity"]),
                    name=str(line.get("name") or line["sku"]),
                    outer_oi_id=f"{order.number}-{index}",
                )
                for index, line in enumerate(order.lines, start=1)
            ),
        )
        (result,) = self.client.upload_orders([upload])
        if not result.issuccess:
            raise PermanentFailure(f"jushuitan refused order {order.number}: {result.msg}")
        return str(result.o_id or order.number)

    def fetch_shipments(self, since: datetime) -> Iterator[RemoteShipment]:
        end = utcnow()
        begin = max(since, end - MAX_WINDOW)
        for row in self.client.query_logistics(modified_begin=begin, modified_end=end):
            if not row.l_id:
                continue
            try:
                carrier = row.carrier
            except UnknownCarrier as exc:
                raise PermanentFailure(
                    f"jushuitan order {row.so_id}: carrier {row.lc_id!r} has no Kuaidi100 code"
                ) from exc
            yield RemoteShipment(row.so_id, carrier, row.l_id, row.send_date)


__all__ = ["JushuitanConnector"]
