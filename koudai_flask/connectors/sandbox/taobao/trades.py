"""The sandbox's trades: a buyer places, pays, the seller ships, the buyer confirms or it closes.

Each step publishes the TMC message Taobao would (§1.8): TradeCreate, TradeBuyerPay,
TradeSellerShip, TradeSuccess, TradeClose; after-sales publish RefundCreated, RefundClosed,
RefundSuccess and TradePartlyRefund. Stock is taken when a trade is created and given
back when it closes (拍下减库存, see ``state``), each change with its ItemStockChanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from koudai_flask.connectors.sandbox.taobao.shop import (
    change_quantity,
    display_properties,
    find_item,
    find_sku,
)
from koudai_flask.connectors.sandbox.taobao.state import (
    COMPANY_CODES,
    SELLER_NICK,
    TopState,
    invalid,
    now_text,
)
from koudai_flask.connectors.taobao.client import format_time

Line = tuple[int, int | None, int]  # (num_iid, sku_id or None, num)


def _touch(trade: dict[str, Any], when: datetime | None) -> str:
    trade["modified"] = format_time(when or datetime.now(UTC))
    return str(trade["modified"])


def _set_status(trade: dict[str, Any], status: str) -> None:
    trade["status"] = status
    for order in trade["orders"]["order"]:
        order["status"] = status


def trade_content(trade: dict[str, Any]) -> dict[str, Any]:
    """The content of a trade message, as in the TradeCreate capture of §1.8."""
    orders = trade["orders"]["order"]
    return {
        "tid": trade["tid"],
        "oid": orders[0]["oid"] if orders else trade["tid"],
        "buyer_nick": trade["buyer_nick"],
        "seller_nick": SELLER_NICK,
        "payment": trade["payment"],
        "type": "guarantee_trade",
    }


def find_trade(state: TopState, tid: int) -> dict[str, Any]:
    trade = state.trades.get(tid)
    if trade is None:
        raise invalid(f"交易 {tid} 不存在", "isv.trade-not-exist")
    return trade


def check_lines(state: TopState, lines: list[Line]) -> None:
    """Every line names a sellable item/SKU with enough stock; nothing changes otherwise."""
    if not lines:
        raise invalid("交易至少需要一件宝贝 (a trade needs at least one line)")
    wanted: Counter[tuple[int, int | None]] = Counter()
    for num_iid, sku_id, num in lines:
        item = find_item(state, num_iid)
        if item.approve_status != "onsale":
            raise invalid(f"宝贝 {num_iid} 已下架", "isv.item-not-onsale")
        if num < 1:
            raise invalid("购买数量必须大于 0")
        if sku_id is None and item.skus:
            raise invalid(f"宝贝 {num_iid} 有 SKU, 请选择 sku_id", "isv.item-sku-not-exist")
        find_sku(item, sku_id, None)
        wanted[(num_iid, sku_id)] += num
    for (num_iid, sku_id), num in wanted.items():
        item = state.items[num_iid]
        stock = item.skus[sku_id].quantity if sku_id is not None else item.num
        if stock < num:
            raise invalid(
                f"宝贝 {num_iid} 库存不足 (剩 {stock} 件)", "isv.item-quantity-not-enough"
            )


def add_trade(
    state: TopState,
    lines: Iterable[Line],
    *,
    buyer_nick: str = "sandbox_buyer",
    post_fee: str = "0.00",
    paid: bool = True,
    modified: datetime | None = None,
    tid: int | None = None,
    buyer_message: str = "",
    seller_memo: str = "",
    seller_flag: int = 0,
) -> dict[str, Any]:
    """A buyer's trade for ``(num_iid, sku_id, num)`` lines, all or nothing.

    ``buyer_message`` is what the buyer wrote with it (买家留言); ``seller_memo`` and
    ``seller_flag`` (0-5) the seller's memo and flag it starts with (``memos``).
    Publishes TradeCreate, then one ItemStockChanged per line (the stock is taken now),
    then TradeBuyerPay if ``paid``.
    """
    wanted = list(lines)
    if seller_flag not in range(6):
        raise ValueError("seller_flag is 0..5")
    with state.lock:
        check_lines(state, wanted)
        if tid is not None and tid in state.trades:
            raise ValueError(f"trade {tid} already exists")
        tid = tid or state.next_id(3800000000000000)
        status = "WAIT_SELLER_SEND_GOODS" if paid else "WAIT_BUYER_PAY"
        orders, total = [], Decimal("0")
        for num_iid, sku_id, num in wanted:
            item = state.items[num_iid]
            sku = item.skus[sku_id] if sku_id is not None else None
            price = Decimal(sku.price if sku else item.price)
            total += price * num
            orders.append(
                {
                    "oid": state.next_id(tid),
                    "num_iid": num_iid,
                    "sku_id": str(sku.sku_id) if sku else "",
                    "outer_iid": item.outer_id,
                    "outer_sku_id": sku.outer_id if sku else "",
                    "title": item.title,
                    "sku_properties_name": display_properties(sku.properties_name) if sku else "",
                    "num": num,
                    "price": f"{price:.2f}",
                    "payment": f"{price * num:.2f}",
                    "status": status,
                    "refund_status": "NO_REFUND",
                }
            )
        stamp = format_time(modified or datetime.now(UTC))
        trade: dict[str, Any] = {
            "tid": tid,
            "status": status,
            "payment": f"{total + Decimal(post_fee):.2f}",
            "total_fee": f"{total:.2f}",
            "post_fee": post_fee,
            "buyer_nick": buyer_nick,
            "seller_nick": SELLER_NICK,
            "type": "fixed",
            "created": stamp,
            "modified": stamp,
            "pay_time": stamp if paid else "",
            "orders": {"order": orders},
            # Answered only when asked for and not empty, like every trade field (§1.6).
            "buyer_message": buyer_message,
            "seller_memo": seller_memo,
            "seller_flag": seller_flag,
        }
        state.trades[tid] = trade
        state.publish("taobao_trade_TradeCreate", trade_content(trade))
        for num_iid, sku_id, num in wanted:
            item = state.items[num_iid]
            change_quantity(state, item, find_sku(item, sku_id, None), -num, 2)
        if paid:
            state.publish("taobao_trade_TradeBuyerPay", trade_content(trade))
        return trade


def pay_trade(state: TopState, tid: int, *, modified: datetime | None = None) -> dict[str, Any]:
    """The buyer pays a waiting trade: WAIT_BUYER_PAY → WAIT_SELLER_SEND_GOODS, TradeBuyerPay."""
    with state.lock:
        trade = find_trade(state, tid)
        if trade["status"] != "WAIT_BUYER_PAY":
            raise invalid(f"交易状态 {trade['status']} 不能付款", "isv.trade-status-error")
        _set_status(trade, "WAIT_SELLER_SEND_GOODS")
        trade["pay_time"] = _touch(trade, modified)
        state.publish("taobao_trade_TradeBuyerPay", trade_content(trade))
        return trade


def close_trade(
    state: TopState, tid: int, *, restock: bool = True, modified: datetime | None = None
) -> dict[str, Any]:
    """Close a trade (buyer cancelled, refunded, or Taobao timed it out) and give the stock back.

    An unpaid trade closes as TRADE_CLOSED_BY_TAOBAO, a paid one as TRADE_CLOSED (§1.6
    statuses). Publishes TradeClose, then one ItemStockChanged per line restocked; closing
    a closed trade again does nothing.
    """
    with state.lock:
        trade = find_trade(state, tid)
        if trade["status"].startswith("TRADE_CLOSED"):
            return trade
        if trade["status"] == "TRADE_FINISHED":
            raise invalid(f"交易 {tid} 已成功, 不能关闭", "isv.trade-status-error")
        unpaid = trade["status"] == "WAIT_BUYER_PAY"
        _set_status(trade, "TRADE_CLOSED_BY_TAOBAO" if unpaid else "TRADE_CLOSED")
        trade["end_time"] = _touch(trade, modified)
        state.publish("taobao_trade_TradeClose", trade_content(trade))
        if restock:
            _restock(state, trade["orders"]["order"])
        return trade


def ship_trade(state: TopState, tid: int, out_sid: str, company_code: str) -> None:
    """``taobao.logistics.offline.send``: record the waybill, mark the trade consigned."""
    if company_code not in COMPANY_CODES:
        raise invalid(f"物流公司编码 {company_code} 不存在", "isv.logistics-company-not-exist")
    if not out_sid:
        raise invalid("运单号不能为空")
    with state.lock:
        trade = find_trade(state, tid)
        if trade["status"] != "WAIT_SELLER_SEND_GOODS":
            raise invalid(
                f"交易状态 {trade['status']} 不能发货", "isv.logistics-offline-service-error"
            )
        state.shipments[tid] = (company_code, out_sid)
        _set_status(trade, "WAIT_BUYER_CONFIRM_GOODS")
        trade["consign_time"] = now_text()
        _touch(trade, None)
        state.publish("taobao_trade_TradeSellerShip", trade_content(trade))


def finish_trade(state: TopState, tid: int, *, modified: datetime | None = None) -> dict[str, Any]:
    """The buyer confirms receipt: WAIT_BUYER_CONFIRM_GOODS → TRADE_FINISHED, TradeSuccess."""
    with state.lock:
        trade = find_trade(state, tid)
        if trade["status"] != "WAIT_BUYER_CONFIRM_GOODS":
            raise invalid(f"交易状态 {trade['status']} 不能确认收货", "isv.trade-status-error")
        _set_status(trade, "TRADE_FINISHED")
        trade["end_time"] = _touch(trade, modified)
        state.publish("taobao_trade_TradeSuccess", trade_content(trade))
        return trade


# -- after-sales (退款): a line's refund_status, and the messages of §1.8's refund topics ----

PAID_STATES = ("WAIT_SELLER_SEND_GOODS", "SELLER_CONSIGNED_PART", "WAIT_BUYER_CONFIRM_GOODS")
ASKING = ("WAIT_SELLER_AGREE", "WAIT_BUYER_RETURN_GOODS", "WAIT_SELLER_CONFIRM_GOODS")


def _lines(trade: dict[str, Any], oid: int | None) -> list[dict[str, Any]]:
    lines = [o for o in trade["orders"]["order"] if oid is None or o["oid"] == oid]
    if not lines:
        raise invalid(f"子订单 {oid} 不存在", "isv.invalid-parameter:oid")
    return lines


def _refund_content(trade: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    return {
        "refund_id": line["oid"] + 7,
        "tid": trade["tid"],
        "oid": line["oid"],
        "buyer_nick": trade["buyer_nick"],
        "seller_nick": SELLER_NICK,
        "refund_fee": line["payment"],
    }


def _move_refunds(
    state: TopState,
    trade: dict[str, Any],
    lines: list[dict[str, Any]],
    refund_status: str,
    topic: str,
    modified: datetime | None,
) -> str:
    """Give ``lines`` their new refund_status, touch the trade, publish ``topic`` per line."""
    for line in lines:
        line["refund_status"] = refund_status
    stamp = _touch(trade, modified)
    for line in lines:
        state.publish(topic, _refund_content(trade, line))
    return stamp


def ask_refund(
    state: TopState,
    tid: int,
    oid: int | None = None,
    *,
    returning: bool = False,
    modified: datetime | None = None,
) -> dict[str, Any]:
    """The buyer asks for a refund of one line (or every line) of a paid trade: the line
    waits on the seller (WAIT_SELLER_AGREE), or on the goods coming back (``returning``,
    WAIT_BUYER_RETURN_GOODS). Publishes RefundCreated per line."""
    with state.lock:
        trade = find_trade(state, tid)
        if trade["status"] not in PAID_STATES:
            raise invalid(f"交易状态 {trade['status']} 不能申请退款", "isv.trade-status-error")
        lines = [line for line in _lines(trade, oid) if line["refund_status"] not in ASKING]
        asked = "WAIT_BUYER_RETURN_GOODS" if returning else "WAIT_SELLER_AGREE"
        _move_refunds(state, trade, lines, asked, "taobao_refund_RefundCreated", modified)
        return trade


def close_refund(
    state: TopState,
    tid: int,
    oid: int | None = None,
    *,
    refused: bool = False,
    modified: datetime | None = None,
) -> dict[str, Any]:
    """The request ends without money: withdrawn by the buyer (CLOSED) or refused by the
    seller (SELLER_REFUSE_BUYER). Publishes RefundClosed per line."""
    with state.lock:
        trade = find_trade(state, tid)
        lines = [line for line in _lines(trade, oid) if line["refund_status"] in ASKING]
        ended = "SELLER_REFUSE_BUYER" if refused else "CLOSED"
        _move_refunds(state, trade, lines, ended, "taobao_refund_RefundClosed", modified)
        return trade


def agree_refund(
    state: TopState, tid: int, oid: int | None = None, *, modified: datetime | None = None
) -> dict[str, Any]:
    """The seller agrees (and, for a return, has the goods): the asked lines are refunded
    (SUCCESS, RefundSuccess each). With every line refunded the trade closes (TRADE_CLOSED,
    TradeClose; stock not shipped goes back); otherwise TradePartlyRefund is published."""
    with state.lock:
        trade = find_trade(state, tid)
        lines = [line for line in _lines(trade, oid) if line["refund_status"] in ASKING]
        if not lines:
            raise invalid("没有等待处理的退款", "isv.refund-status-error")
        for line in lines:
            line["status"] = "TRADE_CLOSED"
        stamp = _move_refunds(
            state, trade, lines, "SUCCESS", "taobao_refund_RefundSuccess", modified
        )
        if all(line["refund_status"] == "SUCCESS" for line in trade["orders"]["order"]):
            shipped = tid in state.shipments
            trade["status"] = "TRADE_CLOSED"
            trade["end_time"] = stamp
            state.publish("taobao_trade_TradeClose", trade_content(trade))
            if not shipped:
                _restock(state, lines)
        else:
            state.publish("taobao_trade_TradePartlyRefund", trade_content(trade))
            if tid not in state.shipments:
                _restock(state, lines)
        return trade


def _restock(state: TopState, lines: list[dict[str, Any]]) -> None:
    for order in lines:
        item = state.items.get(order["num_iid"])
        sku_id = int(order["sku_id"]) if order["sku_id"] else None
        if item is not None and (sku_id is None or sku_id in item.skus):
            change_quantity(state, item, find_sku(item, sku_id, None), order["num"], 2)
