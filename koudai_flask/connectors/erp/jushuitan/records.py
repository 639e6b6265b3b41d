"""The plain records the Jushuitan adapter sends and returns, and their wire shapes.

Field names follow the open platform's JSON (PROTOCOLS §6.1, the public v2 SDKs). Money is
integer fen here, as everywhere in koudai; the wire carries yuan with two decimals. Times
are aware datetimes; the wire carries "yyyy-MM-dd HH:mm:ss" in China time (GMT+8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from koudai_flask.connectors.erp.jushuitan.carriers import carrier_for_lc_id
from koudai_flask.connectors.errors import TemporaryFailure

CHINA_ZONE = timezone(timedelta(hours=8), "GMT+8")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The shop_status values orders/upload accepts for an own-mall order.
SHOP_STATUSES = frozenset(
    {
        "WAIT_BUYER_PAY",
        "WAIT_SELLER_SEND_GOODS",
        "WAIT_BUYER_CONFIRM_GOODS",
        "TRADE_FINISHED",
        "TRADE_CLOSED",  # closed after payment
        "TRADE_CLOSED_BY_TAOBAO",  # closed before payment
    }
)


def format_time(moment: datetime) -> str:
    """An aware datetime as Jushuitan writes it: GMT+8 wall time."""
    if moment.tzinfo is None:
        raise ValueError("Jushuitan times must be timezone-aware (naive datetimes are ambiguous)")
    return moment.astimezone(CHINA_ZONE).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """A Jushuitan time ("yyyy-MM-dd HH:mm:ss", GMT+8) as an aware UTC datetime."""
    return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=CHINA_ZONE).astimezone(UTC)


def fen_to_yuan(fen: int) -> float:
    """Integer fen as the JSON number of yuan the platform takes (1999 → 19.99)."""
    # fen / 100 is the nearest double to the two-decimal value, and json writes it shortest.
    return fen / 100


def _int(value: object, where: str) -> int:
    try:
        return int(str(value)) if value not in (None, "") else 0
    except ValueError:
        raise TemporaryFailure(f"jushuitan {where}: not an integer: {value!r}") from None


def _time(value: object, where: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        raise TemporaryFailure(f"jushuitan {where}: not a time: {value!r}") from None


def _text(value: object) -> str:
    return "" if value is None else str(value)


# -- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JushuitanToken:
    """An access token pair from ``/openWeb/auth/*``; the tokens stay out of its repr."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str = "all"

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> JushuitanToken:
        access, refresh = _text(data.get("access_token")), _text(data.get("refresh_token"))
        if not access or not refresh:
            raise TemporaryFailure("jushuitan token answer has no access_token/refresh_token")
        return cls(access, refresh, _int(data.get("expires_in"), "token"), _text(data.get("scope")))


# -- inventory -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InventoryRow:
    """One SKU's stock from ``/open/inventory/query`` (the main warehouse, or ``wms_co_id``).

    ``available`` is our rule, not a field Jushuitan sends: ``qty - order_lock - pick_lock``,
    i.e. the actual stock less what open orders hold and what the warehouse is already
    picking. ``virtual_qty`` (stock sold ahead of arrival) and ``lock_qty`` (stock locked
    for other channels) are left out on purpose; the value may be negative when the ERP is
    oversold, and the caller decides how to clamp it.
    """

    sku_id: str
    i_id: str
    qty: int
    order_lock: int
    pick_lock: int
    virtual_qty: int
    lock_qty: int = 0
    name: str = ""
    modified: datetime | None = None

    @property
    def available(self) -> int:
        return self.qty - self.order_lock - self.pick_lock

    @classmethod
    def from_wire(cls, row: Mapping[str, Any]) -> InventoryRow:
        where = "inventory"
        return cls(
            sku_id=_text(row.get("sku_id")),
            i_id=_text(row.get("i_id")),
            qty=_int(row.get("qty"), where),
            order_lock=_int(row.get("order_lock"), where),
            pick_lock=_int(row.get("pick_lock"), where),
            virtual_qty=_int(row.get("virtual_qty"), where),
            lock_qty=_int(row.get("lock_qty"), where),
            name=_text(row.get("name")),
            modified=_time(row.get("modified"), where),
        )


# -- order upload --------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderItem:
    """One order line: ``amount`` is the line total and ``base_price`` the list price, in fen."""

    sku_id: str
    shop_sku_id: str
    amount: int
    base_price: int
    qty: int
    name: str
    outer_oi_id: str

    def __post_init__(self) -> None:
        if not self.sku_id or not self.outer_oi_id:
            raise ValueError("an order item needs a sku_id and an outer_oi_id")
        if self.qty <= 0:
            raise ValueError(f"item {self.outer_oi_id}: qty must be positive, not {self.qty}")
        if self.amount < 0 or self.base_price < 0:
            raise ValueError(f"item {self.outer_oi_id}: amounts cannot be negative")

    def to_wire(self) -> dict[str, Any]:
        return {
            "sku_id": self.sku_id,
            "shop_sku_id": self.shop_sku_id or self.sku_id,
            "amount": fen_to_yuan(self.amount),
            "base_price": fen_to_yuan(self.base_price),
            "qty": self.qty,
            "name": self.name,
            "outer_oi_id": self.outer_oi_id,
        }


@dataclass(frozen=True)
class OrderPay:
    """The payment of an order (the ``pay`` node); ``amount`` in fen."""

    outer_pay_id: str
    pay_date: datetime
    payment: str
    amount: int
    seller_account: str = ""
    buyer_account: str = ""

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("a payment amount cannot be negative")
        format_time(self.pay_date)  # refuses a naive datetime now, not at upload time

    def to_wire(self) -> dict[str, Any]:
        return {
            "outer_pay_id": self.outer_pay_id,
            "pay_date": format_time(self.pay_date),
            "payment": self.payment,
            "seller_account": self.seller_account,
            "buyer_account": self.buyer_account,
            "amount": fen_to_yuan(self.amount),
        }


@dataclass(frozen=True)
class JushuitanOrder:
    """An own-mall order for ``/open/jushuitan/orders/upload``; money in fen.

    ``so_id`` is our order number, unique within the Jushuitan shop ``shop_id``: uploading
    it again updates the order (receiver and status, until it ships), never duplicates it.
    """

    shop_id: int
    so_id: str
    order_date: datetime
    shop_status: str
    shop_buyer_id: str
    receiver_name: str
    receiver_mobile: str
    receiver_address: str
    pay_amount: int
    freight: int
    items: tuple[OrderItem, ...]
    receiver_state: str = ""
    receiver_city: str = ""
    receiver_district: str = ""
    receiver_phone: str = ""
    receiver_zip: str = ""
    buyer_message: str = ""
    remark: str = ""
    pay: OrderPay | None = None

    def __post_init__(self) -> None:
        if not self.so_id or len(self.so_id) > 50:
            raise ValueError("so_id is 1..50 characters")
        if self.shop_status not in SHOP_STATUSES:
            raise ValueError(
                f"order {self.so_id}: shop_status {self.shop_status!r} is not one of "
                f"{', '.join(sorted(SHOP_STATUSES))}"
            )
        format_time(self.order_date)
        if not self.items:
            raise ValueError(f"order {self.so_id} has no items")
        line_ids = [item.outer_oi_id for item in self.items]
        if len(set(line_ids)) != len(line_ids):
            raise ValueError(f"order {self.so_id}: outer_oi_id repeats within the order")
        if self.pay_amount < 0 or self.freight < 0:
            raise ValueError(f"order {self.so_id}: amounts cannot be negative")

    def to_wire(self) -> dict[str, Any]:
        order: dict[str, Any] = {
            "shop_id": self.shop_id,
            "so_id": self.so_id,
            "order_date": format_time(self.order_date),
            "shop_status": self.shop_status,
            "shop_buyer_id": self.shop_buyer_id,
            "receiver_name": self.receiver_name,
            "receiver_mobile": self.receiver_mobile,
            "receiver_address": self.receiver_address,
            "pay_amount": fen_to_yuan(self.pay_amount),
            "freight": fen_to_yuan(self.freight),
        }
        # The platform wants optional receiver fields left out, never null or "".
        optional = {
            "receiver_state": self.receiver_state,
            "receiver_city": self.receiver_city,
            "receiver_district": self.receiver_district,
            "receiver_phone": self.receiver_phone,
            "receiver_zip": self.receiver_zip,
            "buyer_message": self.buyer_message,
            "remark": self.remark,
        }
        order.update({key: value for key, value in optional.items() if value})
        order["items"] = [item.to_wire() for item in self.items]
        if self.pay is not None:
            order["pay"] = self.pay.to_wire()
        return order


@dataclass(frozen=True)
class UploadResult:
    """One order's outcome in ``data.datas``: a refusal is ``issuccess=False`` with ``msg``."""

    so_id: str
    o_id: int | None
    issuccess: bool
    msg: str

    @classmethod
    def from_wire(cls, row: Mapping[str, Any]) -> UploadResult:
        o_id = row.get("o_id")
        return cls(
            so_id=_text(row.get("so_id")),
            o_id=_int(o_id, "orders/upload") if o_id not in (None, "", 0) else None,
            issuccess=bool(row.get("issuccess")),
            msg=_text(row.get("msg")),
        )


# -- shipments -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentItem:
    """One shipped line: our ``outer_oi_id`` comes back as sent."""

    sku_id: str
    qty: int
    outer_oi_id: str = ""


@dataclass(frozen=True)
class ShipmentRow:
    """One shipped order from ``/open/logistic/query``.

    The field set follows the public v2 SDKs' response model (``o_id, shop_id, so_id,
    send_date, lc_id, l_id, logistics_company, items``); it has not been checked against a
    live account [U].
    """

    so_id: str
    o_id: int
    lc_id: str
    logistics_company: str
    l_id: str
    send_date: datetime | None
    items: tuple[ShipmentItem, ...] = ()
    shop_id: int = 0

    @property
    def carrier(self) -> str:
        """Our carrier code (Kuaidi100's); raises ``UnknownCarrier`` for an unmapped lc_id."""
        return carrier_for_lc_id(self.lc_id)

    @classmethod
    def from_wire(cls, row: Mapping[str, Any]) -> ShipmentRow:
        where = "logistic/query"
        items = tuple(
            ShipmentItem(
                sku_id=_text(item.get("sku_id")),
                qty=_int(item.get("qty"), where),
                outer_oi_id=_text(item.get("outer_oi_id")),
            )
            for item in row.get("items") or []
            if isinstance(item, Mapping)
        )
        return cls(
            so_id=_text(row.get("so_id")),
            o_id=_int(row.get("o_id"), where),
            lc_id=_text(row.get("lc_id")),
            logistics_company=_text(row.get("logistics_company")),
            l_id=_text(row.get("l_id")),
            send_date=_time(row.get("send_date"), where),
            items=items,
            shop_id=_int(row.get("shop_id"), where),
        )


__all__ = [
    "CHINA_ZONE",
    "SHOP_STATUSES",
    "TIME_FORMAT",
    "InventoryRow",
    "JushuitanOrder",
    "JushuitanToken",
    "OrderItem",
    "OrderPay",
    "ShipmentItem",
    "ShipmentRow",
    "UploadResult",
    "fen_to_yuan",
    "format_time",
    "parse_time",
]
