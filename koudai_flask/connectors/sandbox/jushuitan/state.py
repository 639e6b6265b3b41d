"""The Jushuitan sandbox's memory: the app, tokens, stock per SKU, uploaded orders, faults.

One lock guards it all: the loopback server answers on several threads and tests poke the
same state from theirs. Times are aware UTC datetimes truncated to the second, the
resolution the wire carries.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from koudai_flask.connectors.erp.jushuitan.records import SHOP_STATUSES, parse_time

ACCESS_TTL = 30 * 86400  # seconds: the expires_in the token endpoints answer
FAULT_KINDS = ("rate_limit", "server_error", "timeout", "token_expired")
# Codes from the public v2 SDKs' error table.
OK, BAD_SIGN, BAD_TOKEN, BAD_TIMESTAMP, TOO_FREQUENT = 0, 10, 100, 140, 199
# [U] The platform's code for a malformed common or biz parameter is not in the sources we
# have; 120 is this sandbox's, and a client treats any unlisted code as permanent anyway.
BAD_PARAMETER = 120
# Order statuses under which an uploaded order holds stock (order_lock) until it ships.
LOCKING_STATUSES = frozenset({"WAIT_SELLER_SEND_GOODS"})
LOGISTICS_NAMES = {
    "SF": "顺丰速运",
    "YTO": "圆通速递",
    "ZTO": "中通快递",
    "STO": "申通快递",
    "YUNDA": "韵达快递",
    "EMS": "邮政标准快递EMS",
    "JD": "京东快递",
    "POSTB": "邮政快递包裹",
    "JTSD": "极兔速递",
    "HTKY": "百世快递",
    "ZJS": "宅急送",
    "DBKD": "德邦快递",
    "DBL": "德邦物流",
    "UC": "优速快递",
}


class JstError(Exception):
    """A refusal written as ``{"code": N, "msg": ..., "data": null}`` on HTTP 200."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg = code, msg

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg, "data": None}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Grant:
    access_token: str
    refresh_token: str
    expires_at: float


@dataclass
class Stock:
    sku_id: str
    i_id: str
    qty: int
    order_lock: int = 0
    pick_lock: int = 0
    virtual_qty: int = 0
    lock_qty: int = 0
    name: str = ""
    modified: datetime = field(default_factory=now)


@dataclass
class Shipment:
    lc_id: str
    logistics_company: str
    l_id: str
    send_date: datetime


@dataclass
class SandboxOrder:
    """An uploaded order as the ERP keeps it: the last uploaded body plus our bookkeeping."""

    o_id: int
    shop_id: int
    so_id: str
    body: dict[str, Any]
    modified: datetime
    locks: dict[str, int] = field(default_factory=dict)  # sku_id → qty held in order_lock
    shipment: Shipment | None = None


@dataclass
class Fault:
    kind: str
    seconds: float


class JstState:
    """Everything the sandbox holds; the gateway and the methods tests call both go through it."""

    def __init__(self, app_key: str, app_secret: str, shop_id: int) -> None:
        self.lock = threading.RLock()
        self.app_key, self.app_secret, self.shop_id = app_key, app_secret, shop_id
        self.grants: dict[str, Grant] = {}
        self.refresh_grants: dict[str, Grant] = {}
        self.current: Grant = self.issue_grant()
        self.stock: dict[str, Stock] = {}
        self.orders: dict[tuple[int, str], SandboxOrder] = {}
        self.calls: Counter[str] = Counter()
        self.faults: deque[Fault] = deque()
        self.latency = 0.0
        self._o_ids = itertools.count(1001)

    # -- tokens ----------------------------------------------------------------------------

    def issue_grant(self) -> Grant:
        grant = Grant(secrets.token_hex(16), secrets.token_hex(16), time.time() + ACCESS_TTL)
        with self.lock:
            self.grants[grant.access_token] = grant
            self.refresh_grants[grant.refresh_token] = grant
            self.current = grant
        return grant

    def check_token(self, access_token: str) -> None:
        with self.lock:
            grant = self.grants.get(access_token)
        if grant is None or grant.expires_at <= time.time():
            raise JstError(BAD_TOKEN, "验证失败！无效的access_token或access_token已过期")

    def expire(self, access_token: str) -> None:
        with self.lock:
            self.grants[access_token].expires_at = 0.0

    def refresh(self, refresh_token: str) -> Grant:
        """A new pair for a valid refresh token; the old pair stops working [U]."""
        with self.lock:
            old = self.refresh_grants.pop(refresh_token, None)
            if old is None:
                raise JstError(BAD_TOKEN, "验证失败！无效的refresh_token")
            self.grants.pop(old.access_token, None)
            return self.issue_grant()

    # -- faults ----------------------------------------------------------------------------

    def fail_next(self, n: int, kind: str, seconds: float) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind is one of {FAULT_KINDS}, not {kind!r}")
        if n < 0:
            raise ValueError("the number of faults cannot be negative")
        with self.lock:
            self.faults.extend(Fault(kind, seconds) for _ in range(n))

    def take_fault(self) -> Fault | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    # -- stock -----------------------------------------------------------------------------

    def set_stock(self, sku_id: str, qty: int, order_lock: int, **fields: Any) -> Stock:
        if not sku_id or "," in sku_id:
            raise ValueError(f"sku_id {sku_id!r}: empty, or has a comma")
        unknown = set(fields) - set(Stock.__dataclass_fields__) - {"sku_id"}
        if unknown or "sku_id" in fields:
            raise TypeError(f"unknown stock fields {sorted(unknown or {'sku_id'})}")
        with self.lock:
            stock = self.stock.get(sku_id) or Stock(sku_id, fields.pop("i_id", None) or sku_id, 0)
            stock.qty, stock.order_lock = qty, order_lock
            for name, value in fields.items():
                setattr(stock, name, value)
            if "modified" not in fields:
                stock.modified = now()
            self.stock[sku_id] = stock
            return stock

    def _hold(self, locks: dict[str, int], sign: int, moment: datetime) -> None:
        for sku_id, qty in locks.items():
            stock = self.stock.get(sku_id)
            if stock is not None:
                stock.order_lock += sign * qty
                stock.modified = moment

    # -- orders ----------------------------------------------------------------------------

    def upload(self, order: Any) -> dict[str, Any]:
        """Create or update one order; the answer's ``datas`` entry for it."""
        so_id = str(order.get("so_id") or "") if isinstance(order, dict) else ""
        try:
            shop_id, locks = self._check_order(order)
        except ValueError as exc:
            return {"o_id": 0, "so_id": so_id, "issuccess": False, "msg": str(exc)}
        moment = now()
        with self.lock:
            kept = self.orders.get((shop_id, so_id))
            if kept is not None and kept.shipment is not None:
                return {"o_id": kept.o_id, "so_id": so_id, "issuccess": False,
                        "msg": "订单已发货，不能更新"}  # fmt: skip
            if kept is None:
                kept = SandboxOrder(next(self._o_ids), shop_id, so_id, order, moment)
                self.orders[(shop_id, so_id)] = kept
            self._hold(kept.locks, -1, moment)
            kept.body, kept.modified = order, moment
            kept.locks = locks if order["shop_status"] in LOCKING_STATUSES else {}
            self._hold(kept.locks, 1, moment)
            return {"o_id": kept.o_id, "so_id": so_id, "issuccess": True, "msg": "执行成功"}

    def _check_order(self, order: Any) -> tuple[int, dict[str, int]]:
        """Refuse an order the way orders/upload does, before anything is kept."""
        if not isinstance(order, dict):
            raise ValueError("订单必须是对象")
        shop_id = order.get("shop_id")
        if not isinstance(shop_id, int) or shop_id != self.shop_id:
            raise ValueError(f"店铺不存在: shop_id {shop_id!r}")
        so_id = order.get("so_id")
        if not isinstance(so_id, str) or not 1 <= len(so_id) <= 50:
            raise ValueError("so_id 必填，长度<=50")
        if order.get("shop_status") not in SHOP_STATUSES:
            raise ValueError(f"shop_status 无效: {order.get('shop_status')!r}")
        try:
            parse_time(str(order.get("order_date") or ""))
        except ValueError:
            raise ValueError("order_date 格式为 yyyy-MM-dd HH:mm:ss") from None
        for name in ("pay_amount", "freight"):
            if not isinstance(order.get(name), int | float) or order[name] < 0:
                raise ValueError(f"{name} 必须是非负数")
        items = order.get("items")
        if not isinstance(items, list) or not items:
            raise ValueError("items 不能为空")
        locks: dict[str, int] = {}
        for item in items:
            qty = item.get("qty") if isinstance(item, dict) else None
            if not isinstance(item, dict) or not item.get("sku_id") or not item.get("outer_oi_id"):
                raise ValueError("商品明细需要 sku_id 和 outer_oi_id")
            if not isinstance(qty, int) or qty <= 0:
                raise ValueError(f"商品 {item['sku_id']} 数量必须是正整数")
            locks[str(item["sku_id"])] = locks.get(str(item["sku_id"]), 0) + qty
        return shop_id, locks

    def find_order(self, so_id: str) -> SandboxOrder:
        with self.lock:
            found = [order for (_, so), order in self.orders.items() if so == so_id]
        if len(found) != 1:
            raise KeyError(f"no single uploaded order {so_id!r}")
        return found[0]

    def ship(self, so_id: str, lc_id: str, l_id: str, send_date: datetime | None) -> Shipment:
        """Ship an uploaded order: its held stock leaves the warehouse."""
        if not lc_id or not l_id:
            raise ValueError("a shipment needs an lc_id and a waybill number (l_id)")
        with self.lock:
            order = self.find_order(so_id)
            if order.shipment is not None:
                raise ValueError(f"order {so_id!r} has already shipped")
            moment = now()
            self._hold(order.locks, -1, moment)
            for sku_id, qty in order.locks.items():
                if sku_id in self.stock:
                    self.stock[sku_id].qty -= qty
            order.locks = {}
            name = LOGISTICS_NAMES.get(lc_id, lc_id)
            order.shipment = Shipment(lc_id, name, l_id, (send_date or moment).astimezone(UTC))
            order.body = {**order.body, "shop_status": "WAIT_BUYER_CONFIRM_GOODS"}
            order.modified = moment
            return order.shipment
