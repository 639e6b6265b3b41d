"""The TOP methods the sandbox answers, each returning its ``<name>_response`` body (§1.6).

Responses use the ``simplify=false`` shapes: list wrappers (``{"items": {"item": [...]}}``),
left out entirely when a list is empty, and only the ``fields`` the caller asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from koudai_flask.connectors.sandbox.taobao import memos, shop, trades
from koudai_flask.connectors.sandbox.taobao.state import (
    SELLER_NICK,
    SandboxItem,
    SandboxSku,
    TopError,
    TopState,
    invalid,
)
from koudai_flask.connectors.taobao.client import parse_time

Params = Mapping[str, str]
Handler = Callable[[TopState, Params, str], dict[str, Any]]
MAX_SKUS_NUM_IIDS = 40  # taobao.item.skus.get takes at most 40 num_iids (§1.6)


def required(params: Params, name: str) -> str:
    value = params.get(name, "")
    if value == "":
        raise TopError(40, "Missing required arguments", "isv.missing-parameter", name)
    return value


def integer(params: Params, name: str, default: int | None = None) -> int:
    text = params.get(name, "")
    if text == "" and default is not None:
        return default
    try:
        return int(required(params, name))
    except ValueError:
        raise TopError(41, "Invalid arguments", "isv.invalid-parameter", name) from None


def moment(params: Params, name: str) -> datetime:
    try:
        return parse_time(required(params, name))
    except ValueError:
        raise TopError(41, "Invalid arguments", "isv.invalid-parameter", name) from None


def fields_of(params: Params) -> set[str]:
    # "orders.oid" style sub-fields count as asking for the whole "orders" object.
    return {f.strip().split(".")[0] for f in required(params, "fields").split(",") if f.strip()}


def optional_moment(params: Params, name: str) -> datetime | None:
    return moment(params, name) if params.get(name) else None


def sku_json(item: SandboxItem, sku: SandboxSku, fields: set[str] | None = None) -> dict[str, Any]:
    """A SKU as TOP writes it; ``fields`` (of ``item.skus.get``) picks among them."""
    row: dict[str, Any] = {"num_iid": item.num_iid, **vars(sku)}
    return row if fields is None else {k: v for k, v in row.items() if k in fields}


def item_json(item: SandboxItem, fields: set[str]) -> dict[str, Any]:
    full: dict[str, Any] = {
        "num_iid": item.num_iid,
        "title": item.title,
        "nick": SELLER_NICK,
        "cid": item.cid,
        "outer_id": item.outer_id,
        "num": item.num,
        "price": item.price,
        "desc": item.desc,
        "pic_url": item.pic_url,
        "props": item.props,
        "props_name": item.props_name,
        "approve_status": item.approve_status,
        "modified": item.modified,
    }
    row = {k: v for k, v in full.items() if k in fields}
    # Asking for "item_img" (or "item_imgs") gives the "item_imgs" wrapper; "sku"/"skus" the
    # "skus" one; both are left out when empty, like every list (§1.6).
    if fields & {"item_img", "item_imgs"} and item.item_imgs:
        row["item_imgs"] = {
            "item_img": [
                {"id": n + 1, "url": url, "position": n} for n, url in enumerate(item.item_imgs)
            ]
        }
    if fields & {"sku", "skus"} and item.skus:
        row["skus"] = {"sku": [sku_json(item, sku) for sku in item.skus.values()]}
    return row


def stock_json(item: SandboxItem, sku_ids: list[int]) -> dict[str, Any]:
    """The quantity update answer: iid, num_iid, num, modified and the touched SKUs."""
    row: dict[str, Any] = {
        "iid": str(item.num_iid),
        "num_iid": item.num_iid,
        "num": item.num,
        "modified": item.modified,
    }
    if sku_ids:
        row["skus"] = {
            "sku": [
                {
                    "sku_id": sid,
                    "quantity": item.skus[sid].quantity,
                    "modified": item.skus[sid].modified,
                }
                for sid in sku_ids
            ]
        }
    return row


def items_onsale_get(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    fields = fields_of(params)
    page_no, page_size = integer(params, "page_no", 1), integer(params, "page_size", 40)
    if not 1 <= page_size <= 200 or page_no < 1:
        raise invalid("page_size 的取值范围是 1-200")
    start, end = optional_moment(params, "start_modified"), optional_moment(params, "end_modified")
    if start and end and end < start:
        raise invalid("end_modified 不能早于 start_modified")
    with state.lock:
        # Both bounds are inclusive; TOP times have whole seconds.
        onsale = sorted(
            (
                i
                for i in state.items.values()
                if i.approve_status == "onsale"
                and (start is None or parse_time(i.modified) >= start)
                and (end is None or parse_time(i.modified) <= end)
            ),
            key=lambda i: i.num_iid,
        )
        page = onsale[(page_no - 1) * page_size : page_no * page_size]
        answer: dict[str, Any] = {"total_results": len(onsale)}
        if page:
            answer["items"] = {"item": [item_json(i, fields) for i in page]}
    return answer


def item_seller_get(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    fields = fields_of(params)
    with state.lock:
        return {"item": item_json(shop.find_item(state, integer(params, "num_iid")), fields)}


def item_skus_get(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    """The SKUs of up to 40 items; ids that are not the seller's items are skipped."""
    fields = fields_of(params)
    try:
        num_iids = [int(i) for i in required(params, "num_iids").split(",") if i.strip()]
    except ValueError:
        raise TopError(41, "Invalid arguments", "isv.invalid-parameter", "num_iids") from None
    if not num_iids or len(num_iids) > MAX_SKUS_NUM_IIDS:
        raise invalid(f"num_iids 最多 {MAX_SKUS_NUM_IIDS} 个")
    with state.lock:
        rows = [
            sku_json(item, sku, fields)
            for num_iid in dict.fromkeys(num_iids)
            if (item := state.items.get(num_iid)) is not None
            for sku in item.skus.values()
        ]
    return {"skus": {"sku": rows}} if rows else {}


def item_quantity_update(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    with state.lock:
        item = shop.find_item(state, integer(params, "num_iid"))
        sku_id = integer(params, "sku_id") if params.get("sku_id") else None
        sku = shop.find_sku(item, sku_id, params.get("outer_id"))
        shop.change_quantity(
            state, item, sku, integer(params, "quantity"), integer(params, "type", 1)
        )
        return {"item": stock_json(item, [sku.sku_id] if sku else [])}


def skus_quantity_update(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    pairs: dict[int, int] = {}
    for part in required(params, "skuid_quantities").split(";"):
        sku_text, _, qty_text = part.partition(":")
        try:
            sku_id, qty = int(sku_text), int(qty_text)
        except ValueError:
            raise invalid(f"skuid_quantities 格式错误: {part!r}") from None
        if sku_id in pairs:
            raise invalid(f"skuid_quantities 中 SKU {sku_id} 重复")
        pairs[sku_id] = qty
    type = integer(params, "type", 1)
    with state.lock:
        item = shop.find_item(state, integer(params, "num_iid"))
        skus = [(shop.find_sku(item, sku_id, None), qty) for sku_id, qty in pairs.items()]
        # All or nothing: check every SKU's result before changing any.
        for sku, qty in skus:
            shop.check_quantity(item, sku, qty, type)
        for sku, qty in skus:
            shop.change_quantity(state, item, sku, qty, type)
        return {"item": stock_json(item, list(pairs))}


def trade_json(trade: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: v for k, v in trade.items() if k in fields and v != ""}


def trades_sold_increment_get(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    fields = fields_of(params)
    start, end = moment(params, "start_modified"), moment(params, "end_modified")
    if end < start or end - start > timedelta(days=1):
        raise invalid("start_modified 与 end_modified 的间隔不能超过一天", "isv.invalid-parameter")
    page_no, page_size = integer(params, "page_no", 1), integer(params, "page_size", 40)
    if not 1 <= page_size <= 100 or page_no < 1:
        raise invalid("page_size 的取值范围是 1-100")
    with state.lock:
        # Newest change first, as TOP lists them [U: order not documented]; tid breaks ties.
        matching = sorted(
            (t for t in state.trades.values() if start <= parse_time(t["modified"]) <= end),
            key=lambda t: (parse_time(t["modified"]), t["tid"]),
            reverse=True,
        )
        page = matching[(page_no - 1) * page_size : page_no * page_size]
        answer: dict[str, Any] = {"has_next": page_no * page_size < len(matching)}
        if params.get("use_has_next") != "true":
            answer["total_results"] = len(matching)
        if page:
            answer["trades"] = {"trade": [trade_json(t, fields) for t in page]}
    return answer


def trade_fullinfo_get(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    fields = fields_of(params)
    tid = integer(params, "tid")
    with state.lock:
        trade = state.trades.get(tid)
        if trade is None:
            raise invalid(f"交易 {tid} 不存在", "isv.trade-not-exist")
        return {"trade": trade_json(trade, fields)}


def logistics_offline_send(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    trades.ship_trade(
        state,
        integer(params, "tid"),
        required(params, "out_sid"),
        required(params, "company_code"),
    )
    return {"shipping": {"is_success": True}}


def trade_memo_update(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    """The seller's memo and flag of a trade: ``reset=true`` clears the memo whatever
    ``memo`` says; without it an empty memo is left as it was. An absent ``flag`` is 0, the
    default the SDK's TradeMemoUpdateRequest documents [U]."""
    tid, flag = integer(params, "tid"), integer(params, "flag", 0)
    with state.lock:
        trade = memos.update_memo(
            state, tid, memo=params.get("memo", ""), flag=flag, reset=params.get("reset") == "true"
        )
        return {"trade": {"tid": trade["tid"], "modified": trade["modified"]}}


def tmc_messages_consume(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    quantity = integer(params, "quantity", 100)
    if not 10 <= quantity <= 200:
        raise invalid("quantity 的取值范围是 10-200")
    batch = state.consume(app_key, params.get("group_name") or "default", quantity)
    if not batch:
        return {}
    return {"messages": {"tmc_message": [vars(entry).copy() for entry in batch]}}


def tmc_messages_confirm(state: TopState, params: Params, app_key: str) -> dict[str, Any]:
    try:
        ids = [int(i) for i in required(params, "s_message_ids").split(",") if i.strip()]
    except ValueError:
        raise invalid("s_message_ids 必须是逗号分隔的数字") from None
    if len(ids) > 200:
        raise invalid("s_message_ids 最多 200 个")
    state.confirm(app_key, params.get("group_name") or "default", ids)
    return {"is_success": True}


# method → (needs a seller session, handler). TMC pull is app-level: no session (§1.8).
METHODS: dict[str, tuple[bool, Handler]] = {
    "taobao.items.onsale.get": (True, items_onsale_get),
    "taobao.item.seller.get": (True, item_seller_get),
    "taobao.item.skus.get": (True, item_skus_get),
    "taobao.item.quantity.update": (True, item_quantity_update),
    "taobao.skus.quantity.update": (True, skus_quantity_update),
    "taobao.trades.sold.increment.get": (True, trades_sold_increment_get),
    "taobao.trade.fullinfo.get": (True, trade_fullinfo_get),
    "taobao.logistics.offline.send": (True, logistics_offline_send),
    "taobao.trade.memo.update": (True, trade_memo_update),
    "taobao.tmc.messages.consume": (False, tmc_messages_consume),
    "taobao.tmc.messages.confirm": (False, tmc_messages_confirm),
}
