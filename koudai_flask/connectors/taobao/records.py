"""The plain records the Taobao adapter returns, and how TOP's JSON maps onto them.

They are wire-level facts (ids, quantities, TOP's price strings, times made UTC), not our
models: the mapper turns them into catalogue and order data. Money stays TOP's yuan string
here, with a ``*_fen`` property for the integer fen the rest of koudai uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from koudai_flask.connectors.errors import TemporaryFailure
from koudai_flask.connectors.taobao.client import parse_time


def yuan_to_fen(text: str) -> int:
    """TOP's "1999.00" (yuan) as 199900 fen; "" is 0."""
    if not text:
        return 0
    try:
        return int((Decimal(text) * 100).to_integral_value())
    except InvalidOperation as exc:
        raise ValueError(f"not a TOP money amount: {text!r}") from exc


def listed(wrapper: object, name: str) -> list[dict[str, Any]]:
    """The list inside TOP's wrapper object (``{"items": {"item": [...]}}``, §1.6).

    An empty result leaves the wrapper out entirely, so absence is an empty list.
    """
    if not isinstance(wrapper, Mapping):
        return []
    rows = wrapper.get(name)
    if isinstance(rows, dict):  # a lone element, as the XML-to-JSON bridge sometimes writes
        rows = [rows]
    return [row for row in rows or [] if isinstance(row, dict)]


def _time(value: object) -> datetime | None:
    return parse_time(str(value)) if value else None


def _int(value: object) -> int:
    try:
        return int(str(value)) if value not in (None, "") else 0
    except ValueError as exc:
        raise TemporaryFailure(f"taobao answer has a non-integer: {value!r}") from exc


def property_pairs(properties_name: str) -> tuple[tuple[str, str], ...]:
    """``(name, value)`` pairs of TOP's ``properties_name``/``props_name``.

    TOP writes "pid:vid:name:value;..." ("1627207:28326:颜色分类:红色;20509:28314:尺码:S");
    a plain "name:value" (as in a trade line's ``sku_properties_name``) is read too.
    """
    pairs = []
    for part in properties_name.split(";"):
        fields = part.split(":")
        if len(fields) >= 4 and fields[0].isdigit() and fields[1].lstrip("-").isdigit():
            pairs.append((fields[2], ":".join(fields[3:])))
        elif len(fields) >= 2:
            pairs.append((fields[0], ":".join(fields[1:])))
    return tuple(pairs)


@dataclass(frozen=True)
class Sku:
    """One SKU of a Taobao item, with its own stock (``quantity``).

    ``num_iid`` is filled by ``taobao.item.skus.get`` (and by TOP's SKU rows in general);
    0 when the answer left it out.
    """

    sku_id: int
    properties: str = ""
    properties_name: str = ""
    quantity: int = 0
    price: str = ""
    outer_id: str = ""
    modified: datetime | None = None
    num_iid: int = 0

    @property
    def price_fen(self) -> int:
        return yuan_to_fen(self.price)

    @property
    def attributes(self) -> tuple[tuple[str, str], ...]:
        """The SKU's options as ``(name, value)``: ``(("颜色分类", "红色"), ("尺码", "S"))``."""
        return property_pairs(self.properties_name)

    @classmethod
    def from_top(cls, row: Mapping[str, Any]) -> Sku:
        return cls(
            sku_id=_int(row.get("sku_id")),
            properties=str(row.get("properties") or ""),
            properties_name=str(row.get("properties_name") or ""),
            quantity=_int(row.get("quantity")),
            price=str(row.get("price") or ""),
            outer_id=str(row.get("outer_id") or ""),
            modified=_time(row.get("modified")),
            num_iid=_int(row.get("num_iid")),
        )


def _image_urls(wrapper: object) -> tuple[str, ...]:
    # item_img rows carry a "position"; the main picture is position 0 (TOP's ItemImg).
    rows = listed(wrapper, "item_img")
    ordered = sorted(enumerate(rows), key=lambda pair: (_int(pair[1].get("position")), pair[0]))
    return tuple(str(row.get("url")) for _, row in ordered if row.get("url"))


@dataclass(frozen=True)
class Item:
    """A Taobao item (宝贝); ``num`` is its total stock (the sum of its SKUs when it has any).

    ``item_imgs`` are the picture URLs in TOP's ``position`` order; ``cid`` is the leaf
    category, ``props_name`` the item's properties as "pid:vid:name:value;...".
    """

    num_iid: int
    title: str = ""
    outer_id: str = ""
    num: int = 0
    price: str = ""
    desc: str = ""
    pic_url: str = ""
    item_imgs: tuple[str, ...] = ()
    approve_status: str = ""
    modified: datetime | None = None
    skus: tuple[Sku, ...] = ()
    cid: int = 0
    props: str = ""
    props_name: str = ""

    @property
    def price_fen(self) -> int:
        return yuan_to_fen(self.price)

    @property
    def attributes(self) -> tuple[tuple[str, str], ...]:
        """The item's properties as ``(name, value)`` pairs, from ``props_name``."""
        return property_pairs(self.props_name)

    @classmethod
    def from_top(cls, row: Mapping[str, Any]) -> Item:
        num_iid = _int(row.get("num_iid"))
        skus = tuple(Sku.from_top(sku) for sku in listed(row.get("skus"), "sku"))
        return cls(
            num_iid=num_iid,
            title=str(row.get("title") or ""),
            outer_id=str(row.get("outer_id") or ""),
            num=_int(row.get("num")),
            price=str(row.get("price") or ""),
            desc=str(row.get("desc") or ""),
            pic_url=str(row.get("pic_url") or ""),
            item_imgs=_image_urls(row.get("item_imgs")),
            approve_status=str(row.get("approve_status") or ""),
            modified=_time(row.get("modified")),
            # A SKU row inside its item may leave num_iid out: it is the item's.
            skus=tuple(s if s.num_iid else replace(s, num_iid=num_iid) for s in skus),
            cid=_int(row.get("cid")),
            props=str(row.get("props") or ""),
            props_name=str(row.get("props_name") or ""),
        )


@dataclass(frozen=True)
class ItemPage:
    """One page of ``taobao.items.onsale.get``."""

    items: tuple[Item, ...]
    total_results: int


@dataclass(frozen=True)
class StockLevel:
    """The stock TOP reports after a quantity update: the item's and each touched SKU's."""

    num_iid: int
    num: int
    skus: Mapping[int, int] = field(default_factory=dict)
    modified: datetime | None = None

    @classmethod
    def from_top(cls, row: Mapping[str, Any]) -> StockLevel:
        return cls(
            num_iid=_int(row.get("num_iid")),
            num=_int(row.get("num")),
            skus={
                _int(sku.get("sku_id")): _int(sku.get("quantity"))
                for sku in listed(row.get("skus"), "sku")
            },
            modified=_time(row.get("modified")),
        )


@dataclass(frozen=True)
class TradeOrder:
    """A line (子订单) of a trade."""

    oid: int
    num_iid: int
    sku_id: str = ""
    outer_iid: str = ""
    outer_sku_id: str = ""
    title: str = ""
    num: int = 0
    price: str = ""
    payment: str = ""
    status: str = ""
    refund_status: str = ""
    sku_properties_name: str = ""  # "颜色分类:红色;尺码:S"

    @classmethod
    def from_top(cls, row: Mapping[str, Any]) -> TradeOrder:
        return cls(
            oid=_int(row.get("oid")),
            num_iid=_int(row.get("num_iid")),
            sku_id=str(row.get("sku_id") or ""),
            outer_iid=str(row.get("outer_iid") or ""),
            outer_sku_id=str(row.get("outer_sku_id") or ""),
            title=str(row.get("title") or ""),
            num=_int(row.get("num")),
            price=str(row.get("price") or ""),
            payment=str(row.get("payment") or ""),
            status=str(row.get("status") or ""),
            refund_status=str(row.get("refund_status") or ""),
            sku_properties_name=str(row.get("sku_properties_name") or ""),
        )


@dataclass(frozen=True)
class Trade:
    """A Taobao trade (交易) with its lines; times are UTC.

    ``seller_memo`` and ``seller_flag`` (0-5) are the seller's memo and flag (卖家备注, 旗帜),
    ``buyer_message`` what the buyer wrote with the order (买家留言); TOP leaves an empty
    one out of the answer, read here as "" (and flag 0).
    """

    tid: int
    status: str = ""
    payment: str = ""
    total_fee: str = ""
    post_fee: str = ""
    buyer_nick: str = ""
    created: datetime | None = None
    modified: datetime | None = None
    pay_time: datetime | None = None
    orders: tuple[TradeOrder, ...] = ()
    seller_memo: str = ""
    seller_flag: int = 0
    buyer_message: str = ""

    @property
    def payment_fen(self) -> int:
        return yuan_to_fen(self.payment)

    @classmethod
    def from_top(cls, row: Mapping[str, Any]) -> Trade:
        return cls(
            tid=_int(row.get("tid")),
            status=str(row.get("status") or ""),
            payment=str(row.get("payment") or ""),
            total_fee=str(row.get("total_fee") or ""),
            post_fee=str(row.get("post_fee") or ""),
            # Newer apps see buyer_open_uid instead of the nick (§1.6).
            buyer_nick=str(row.get("buyer_nick") or row.get("buyer_open_uid") or ""),
            created=_time(row.get("created")),
            modified=_time(row.get("modified")),
            pay_time=_time(row.get("pay_time")),
            orders=tuple(TradeOrder.from_top(o) for o in listed(row.get("orders"), "order")),
            seller_memo=str(row.get("seller_memo") or ""),
            seller_flag=_int(row.get("seller_flag")),
            buyer_message=str(row.get("buyer_message") or ""),
        )


@dataclass(frozen=True)
class TradePage:
    """One page of ``taobao.trades.sold.increment.get``; ``total_results`` only without
    ``use_has_next``."""

    trades: tuple[Trade, ...]
    has_next: bool
    total_results: int | None = None


@dataclass(frozen=True)
class TmcMessage:
    """A TMC message; ``content`` is TOP's JSON string decoded (it is encoded twice, §1.8)."""

    id: int
    topic: str
    content: Mapping[str, Any]
    pub_time: datetime | None = None
    user_id: int = 0
    user_nick: str = ""
    pub_app_key: str = ""

    @classmethod
    def from_top(cls, row: Mapping[str, Any]) -> TmcMessage:
        raw = row.get("content") or "{}"
        try:
            content = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except ValueError as exc:
            raise TemporaryFailure(f"taobao TMC message {row.get('id')}: bad content") from exc
        return cls(
            id=_int(row.get("id")),
            topic=str(row.get("topic") or ""),
            content=content if isinstance(content, dict) else {"value": content},
            pub_time=_time(row.get("pub_time")),
            user_id=_int(row.get("user_id")),
            user_nick=str(row.get("user_nick") or ""),
            pub_app_key=str(row.get("pub_app_key") or ""),
        )
