"""The sandbox seller's shop: items, stock and trades, changed the way Taobao changes them.

These functions back both the TOP methods (``methods.py``) and the test helpers of
:class:`TaobaoSandbox`; each trade change publishes the TMC message Taobao would (§1.8).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from koudai_flask.connectors.sandbox.taobao.state import (
    COMPANY_CODES,
    SELLER_NICK,
    SandboxItem,
    SandboxSku,
    TopState,
    invalid,
    now_text,
)
from koudai_flask.connectors.taobao.client import format_time


def add_item(
    state: TopState,
    title: str,
    price: str,
    num: int = 0,
    *,
    outer_id: str = "",
    skus: Iterable[dict[str, Any]] = (),
    num_iid: int | None = None,
    desc: str = "",
    pic_url: str = "",
) -> SandboxItem:
    """A new on-sale item; each SKU dict has ``properties_name``, ``quantity`` and optionally
    ``price``, ``outer_id``, ``properties``, ``sku_id``."""
    with state.lock:
        item = SandboxItem(
            num_iid=num_iid or state.next_id(600000000000),
            title=title,
            price=price,
            num=num,
            outer_id=outer_id,
            desc=desc or f"<p>{title}</p>",
            pic_url=pic_url or "https://img.alicdn.com/imgextra/sandbox.jpg",
        )
        item.item_imgs = [item.pic_url]
        for position, spec in enumerate(skus):
            sku = SandboxSku(
                sku_id=int(spec.get("sku_id") or state.next_id(5000000000000)),
                properties=str(spec.get("properties") or f"1627207:{28320 + position}"),
                properties_name=str(spec.get("properties_name") or f"颜色:{position}"),
                quantity=int(spec.get("quantity", 0)),
                price=str(spec.get("price") or price),
                outer_id=str(spec.get("outer_id") or ""),
            )
            item.skus[sku.sku_id] = sku
        item.recount()
        state.items[item.num_iid] = item
        return item


def find_item(state: TopState, num_iid: int) -> SandboxItem:
    item = state.items.get(num_iid)
    if item is None:
        raise invalid(f"商品 {num_iid} 不存在", "isv.item-not-exist")
    return item


def find_sku(item: SandboxItem, sku_id: int | None, outer_id: str | None) -> SandboxSku | None:
    """The SKU a quantity update targets; ``sku_id`` wins over ``outer_id`` (§1.6)."""
    if sku_id is not None:
        sku = item.skus.get(sku_id)
        if sku is None:
            raise invalid(f"SKU {sku_id} 不属于商品 {item.num_iid}", "isv.item-sku-not-exist")
        return sku
    if outer_id:
        for sku in item.skus.values():
            if sku.outer_id == outer_id:
                return sku
        raise invalid(f"商家编码 {outer_id} 不存在", "isv.item-sku-not-exist")
    return None


def change_quantity(
    state: TopState, item: SandboxItem, sku: SandboxSku | None, quantity: int, type: int
) -> None:
    """type 1 sets the stock, type 2 adds to it; the result may not go below 0 (§1.6)."""
    if type not in (1, 2):
        raise invalid("type 只能是 1(全量) 或 2(增量)")
    if type == 1 and quantity < 0:
        raise invalid("全量更新时 quantity 必须大于等于 0")
    with state.lock:
        if sku is None and item.skus:
            raise invalid("该商品有 SKU, 请指定 sku_id", "isv.item-quantity-item-update-error")
        current = sku.quantity if sku is not None else item.num
        result = quantity if type == 1 else current + quantity
        if result < 0:
            raise invalid("库存不能小于 0", "isv.item-quantity-item-update-error")
        stamp = now_text()
        if sku is not None:
            sku.quantity, sku.modified = result, stamp
            item.recount()
        else:
            item.num = result
        item.modified = stamp


def quantity_of(state: TopState, num_iid: int, sku_id: int | None = None) -> int:
    with state.lock:
        item = state.items[num_iid]
        return item.skus[sku_id].quantity if sku_id is not None else item.num


def _touch(trade: dict[str, Any], when: datetime | None) -> None:
    trade["modified"] = format_time(when or datetime.now(UTC))


def add_trade(
    state: TopState,
    lines: Iterable[tuple[int, int | None, int]],
    *,
    buyer_nick: str = "sandbox_buyer",
    post_fee: str = "0.00",
    paid: bool = True,
    modified: datetime | None = None,
    tid: int | None = None,
) -> dict[str, Any]:
    """A trade for ``(num_iid, sku_id, num)`` lines; stock is taken when it is placed.

    Publishes ``taobao_trade_TradeCreate`` and, if ``paid``, ``taobao_trade_TradeBuyerPay``.
    """
    with state.lock:
        tid = tid or state.next_id(3800000000000000)
        orders, total = [], Decimal("0")
        for num_iid, sku_id, num in lines:
            item = find_item(state, num_iid)
            sku = find_sku(item, sku_id, None)
            change_quantity(state, item, sku, -num, 2)
            price = Decimal(sku.price if sku else item.price)
            line_total = price * num
            total += line_total
            orders.append(
                {
                    "oid": state.next_id(tid),
                    "num_iid": num_iid,
                    "sku_id": str(sku.sku_id) if sku else "",
                    "outer_iid": item.outer_id,
                    "outer_sku_id": sku.outer_id if sku else "",
                    "title": item.title,
                    "num": num,
                    "price": f"{price:.2f}",
                    "payment": f"{line_total:.2f}",
                    "status": "WAIT_SELLER_SEND_GOODS" if paid else "WAIT_BUYER_PAY",
                    "refund_status": "NO_REFUND",
                }
            )
        stamp = format_time(modified or datetime.now(UTC))
        payment = total + Decimal(post_fee)
        trade: dict[str, Any] = {
            "tid": tid,
            "status": "WAIT_SELLER_SEND_GOODS" if paid else "WAIT_BUYER_PAY",
            "payment": f"{payment:.2f}",
            "total_fee": f"{total:.2f}",
            "post_fee": post_fee,
            "buyer_nick": buyer_nick,
            "seller_nick": SELLER_NICK,
            "type": "fixed",
            "created": stamp,
            "modified": stamp,
            "pay_time": stamp if paid else "",
            "orders": {"order": orders},
        }
        state.trades[tid] = trade
    content = {
        "tid": tid,
        "oid": orders[0]["oid"] if orders else tid,
        "buyer_nick": buyer_nick,
        "seller_nick": SELLER_NICK,
        "payment": trade["payment"],
        "type": "guarantee_trade",
    }
    state.publish("taobao_trade_TradeCreate", content)
    if paid:
        state.publish("taobao_trade_TradeBuyerPay", content)
    return trade


def close_trade(
    state: TopState, tid: int, *, restock: bool = True, modified: datetime | None = None
) -> dict[str, Any]:
    """Close a trade (buyer cancelled, or Taobao timed it out) and give the stock back."""
    with state.lock:
        trade = state.trades[tid]
        if trade["status"] == "TRADE_CLOSED":
            return trade
        trade["status"] = "TRADE_CLOSED"
        _touch(trade, modified)
        for order in trade["orders"]["order"]:
            order["status"] = "TRADE_CLOSED"
            if restock and order["num_iid"] in state.items:
                item = state.items[order["num_iid"]]
                sku = item.skus.get(int(order["sku_id"])) if order["sku_id"] else None
                change_quantity(state, item, sku, order["num"], 2)
    state.publish(
        "taobao_trade_TradeClose",
        {"tid": tid, "oid": tid, "seller_nick": SELLER_NICK, "buyer_nick": trade["buyer_nick"]},
    )
    return trade


def ship_trade(state: TopState, tid: int, out_sid: str, company_code: str) -> None:
    """``taobao.logistics.offline.send``: record the waybill, mark the trade consigned."""
    if company_code not in COMPANY_CODES:
        raise invalid(f"物流公司编码 {company_code} 不存在", "isv.logistics-company-not-exist")
    if not out_sid:
        raise invalid("运单号不能为空")
    with state.lock:
        trade = state.trades.get(tid)
        if trade is None:
            raise invalid(f"交易 {tid} 不存在", "isv.trade-not-exist")
        if trade["status"] != "WAIT_SELLER_SEND_GOODS":
            raise invalid(
                f"交易状态 {trade['status']} 不能发货", "isv.logistics-offline-service-error"
            )
        state.shipments[tid] = (company_code, out_sid)
        trade["status"] = "WAIT_BUYER_CONFIRM_GOODS"
        trade["consign_time"] = now_text()
        _touch(trade, None)
        for order in trade["orders"]["order"]:
            order["status"] = "WAIT_BUYER_CONFIRM_GOODS"
    state.publish(
        "taobao_trade_TradeSellerShip",
        {"tid": tid, "oid": tid, "seller_nick": SELLER_NICK, "buyer_nick": trade["buyer_nick"]},
    )
