"""The Jushuitan sandbox as a WSGI app: the v2 business endpoints and the token refresh.

Each POST is checked as the platform does (PROTOCOLS §6.1, §8.6): form-encoded common
parameters, app key, timestamp, ``sign``, charset and version, then the access token; a
refusal is ``{"code": N, "msg": ...}`` on HTTP 200. Paging, limits and shapes follow the
public v2 SDKs: inventory pages of at most 100 and 100 ``sku_ids``, logistics pages of at
most 50 and 20 ``so_ids``, modified windows of at most 7 days.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Response, render_template_string, request
from flask.typing import ResponseReturnValue

from koudai_flask.connectors.erp.jushuitan.records import format_time, parse_time
from koudai_flask.connectors.erp.jushuitan.signing import verify
from koudai_flask.connectors.sandbox.jushuitan.state import (
    ACCESS_TTL,
    BAD_PARAMETER,
    BAD_SIGN,
    BAD_TIMESTAMP,
    TOO_FREQUENT,
    Grant,
    JstError,
    JstState,
    SandboxOrder,
    Stock,
)

EXTENSION = "koudai_jushuitan_sandbox"
# The SDKs document 15 minutes of allowed skew; the sandbox is stricter on purpose, so a
# client that passes here passes there.
MAX_SKEW = 600
MAX_WINDOW = timedelta(days=7)

Biz = dict[str, Any]
Handler = Callable[[JstState, Any], dict[str, Any]]

STOCK_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>聚水潭沙箱 Jushuitan sandbox</title>
<style>body{font-family:-apple-system,"PingFang SC",sans-serif;margin:24px}
td,th{padding:4px 12px;text-align:left;border-bottom:1px solid #eee}</style></head><body>
<h1>库存 Stock</h1>
<table><tr><th>sku_id</th><th>实际库存 qty</th><th>订单占有 order_lock</th>
<th>修改 modified</th></tr>
{% for s in stock %}<tr><td>{{ s.sku_id }}</td><td>{{ s.qty }}</td><td>{{ s.order_lock }}</td>
<td>{{ time(s.modified) }}</td></tr>{% else %}<tr><td colspan="4">没有库存 No stock</td></tr>
{% endfor %}</table>
<h1>订单 Orders</h1>
<table><tr><th>o_id</th><th>so_id</th><th>状态 status</th><th>快递 waybill</th></tr>
{% for o in orders %}<tr><td>{{ o.o_id }}</td><td>{{ o.so_id }}</td>
<td>{{ o.body.shop_status }}</td>
<td>{% if o.shipment %}{{ o.shipment.lc_id }} {{ o.shipment.l_id }}{% endif %}</td></tr>
{% else %}<tr><td colspan="4">没有订单 No orders</td></tr>{% endfor %}</table></body></html>"""


def json_answer(body: dict[str, Any], status: int = 200) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, content_type="application/json;charset=utf-8")


def check_signed(state: JstState, params: dict[str, str]) -> None:
    """App key, timestamp (unix seconds, ±10 min) and sign, in that order."""
    if params.get("app_key") != state.app_key:
        raise JstError(BAD_SIGN, "验证失败！无效的app_key")
    stamp = params.get("timestamp", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW:
        raise JstError(BAD_TIMESTAMP, "验证失败！无效的timestamp")
    if not verify(params, state.app_secret):
        raise JstError(BAD_SIGN, "验证失败！无效签名")
    if params.get("charset", "").lower() != "utf-8":
        raise JstError(BAD_PARAMETER, "charset 只能是 utf-8")


def injected_fault(state: JstState) -> Response | None:
    """The next ``fail_next`` fault, as the platform (or the network) would show it."""
    fault = state.take_fault()
    if fault is None:
        return None
    if fault.kind == "server_error":
        return Response("<html><body>500 Internal Server Error</body></html>", 500)
    if fault.kind == "timeout":
        time.sleep(fault.seconds)  # the caller has given up by now; the call still happens
        return None
    if fault.kind == "token_expired":
        raise JstError(100, "验证失败！无效的access_token或access_token已过期")
    raise JstError(TOO_FREQUENT, "调用频次超过限制!请稍后再试")


# -- biz checks --------------------------------------------------------------------------


def integer(biz: Biz, name: str, default: int, low: int, high: int) -> int:
    value = biz.get(name, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise JstError(BAD_PARAMETER, f"{name} 必须是 {low}..{high} 的整数")
    return value


def window(biz: Biz) -> tuple[datetime, datetime] | None:
    begin, end = biz.get("modified_begin"), biz.get("modified_end")
    if begin is None and end is None:
        return None
    if not begin or not end:
        raise JstError(BAD_PARAMETER, "修改起始时间和结束时间必须同时存在")
    try:
        start, stop = parse_time(str(begin)), parse_time(str(end))
    except ValueError:
        raise JstError(BAD_PARAMETER, "时间格式为 yyyy-MM-dd HH:mm:ss") from None
    if stop < start or stop - start > MAX_WINDOW:
        raise JstError(BAD_PARAMETER, "时间间隔不能超过七天")
    return start, stop


def page(rows: list[Any], biz: Biz, max_size: int) -> tuple[list[Any], dict[str, Any]]:
    index = integer(biz, "page_index", 1, 1, 1_000_000)
    size = integer(biz, "page_size", 30, 1, max_size)
    start = (index - 1) * size
    chunk = rows[start : start + size]
    pages = -(-len(rows) // size)
    meta = {"page_size": size, "page_index": index, "data_count": len(rows), "page_count": pages}
    return chunk, {**meta, "has_next": start + size < len(rows)}


def stock_json(stock: Stock, with_lock_qty: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sku_id": stock.sku_id,
        "ts": int(stock.modified.timestamp()),
        "i_id": stock.i_id,
        "qty": stock.qty,
        "order_lock": stock.order_lock,
        "pick_lock": stock.pick_lock,
        "virtual_qty": stock.virtual_qty,
        "modified": format_time(stock.modified),
        "name": stock.name,
    }
    if with_lock_qty:
        row["lock_qty"] = stock.lock_qty
    return row


def shipment_json(order: SandboxOrder) -> dict[str, Any]:
    assert order.shipment is not None
    items = order.body.get("items") or []
    return {
        "o_id": order.o_id,
        "shop_id": order.shop_id,
        "so_id": order.so_id,
        "send_date": format_time(order.shipment.send_date),
        "freight": order.body.get("freight", 0),
        "weight": 0,
        "lc_id": order.shipment.lc_id,
        "l_id": order.shipment.l_id,
        "logistics_company": order.shipment.logistics_company,
        "items": [
            {
                "sku_id": item.get("sku_id"),
                "qty": item.get("qty"),
                "outer_oi_id": item.get("outer_oi_id", ""),
                "raw_so_id": order.so_id,
                "o_id": str(order.o_id),
            }
            for item in items
        ],
    }


# -- endpoints ---------------------------------------------------------------------------


def inventory_query(state: JstState, biz: Any) -> dict[str, Any]:
    if not isinstance(biz, dict):
        raise JstError(BAD_PARAMETER, "biz 必须是对象")
    wanted = None
    if biz.get("sku_ids"):
        wanted = {s.strip() for s in str(biz["sku_ids"]).split(",") if s.strip()}
        if len(wanted) > 100:
            raise JstError(BAD_PARAMETER, "sku_ids 最大不超过100个")
    span = window(biz)
    if wanted is None and span is None:
        raise JstError(BAD_PARAMETER, "商品编码与修改时间不能同时为空")
    with state.lock:
        rows = [
            s
            for s in state.stock.values()
            if (wanted is None or s.sku_id in wanted)
            and (span is None or span[0] <= s.modified <= span[1])
        ]
        rows.sort(key=lambda s: (s.modified, s.sku_id))
        chunk, meta = page(rows, biz, 100)
        listed = [stock_json(s, bool(biz.get("has_lock_qty"))) for s in chunk]
    return {**meta, "inventorys": listed}


def orders_upload(state: JstState, biz: Any) -> dict[str, Any]:
    if not isinstance(biz, list) or not biz:
        raise JstError(BAD_PARAMETER, "biz 必须是非空的订单数组")
    return {"datas": [state.upload(order) for order in biz]}


def logistic_query(state: JstState, biz: Any) -> dict[str, Any]:
    if not isinstance(biz, dict):
        raise JstError(BAD_PARAMETER, "biz 必须是对象")
    so_ids = biz.get("so_ids")
    if so_ids is not None and (not isinstance(so_ids, list) or len(so_ids) > 20):
        raise JstError(BAD_PARAMETER, "so_ids 是数组，最多20个")
    span = window(biz)
    if not so_ids and span is None:
        raise JstError(BAD_PARAMETER, "线上单号与修改时间不能同时为空")
    # date_type: 0 modified, 1 created, 2 order date, 3 ship date (the platform's default).
    date_type = integer(biz, "date_type", 3, 0, 3)
    with state.lock:
        shipped = [o for o in state.orders.values() if o.shipment is not None]
        if so_ids:
            shipped = [o for o in shipped if o.so_id in set(map(str, so_ids))]
        if span is not None:
            shipped = [o for o in shipped if span[0] <= moment_of(o, date_type) <= span[1]]
        shipped.sort(key=lambda o: o.o_id)
        chunk, meta = page(shipped, biz, 50)
        listed = [shipment_json(o) for o in chunk]
    return {**meta, "orders": listed}


def moment_of(order: SandboxOrder, date_type: int) -> datetime:
    assert order.shipment is not None
    if date_type == 0:
        return order.modified
    if date_type == 2:
        return parse_time(str(order.body["order_date"]))
    return order.shipment.send_date


ENDPOINTS: dict[str, Handler] = {
    "/open/inventory/query": inventory_query,
    "/open/jushuitan/orders/upload": orders_upload,
    "/open/logistic/query": logistic_query,
}


def token_data(grant: Grant) -> dict[str, Any]:
    return {
        "access_token": grant.access_token,
        "expires_in": ACCESS_TTL,
        "refresh_token": grant.refresh_token,
        "scope": "all",
    }


def create_jushuitan_sandbox(state: JstState) -> Flask:
    """A WSGI app that answers like ``openapi.jushuitan.com`` for ``state``."""
    app = Flask(__name__)
    app.extensions[EXTENSION] = state

    def answer(path: str, work: Callable[[dict[str, str]], dict[str, Any]]) -> Response:
        params = request.form.to_dict()
        with state.lock:
            state.calls[path] += 1
        try:
            check_signed(state, params)
            if state.latency:
                time.sleep(state.latency)
            fault = injected_fault(state)
            if fault is not None:
                return fault
            data = work(params)
        except JstError as exc:
            return json_answer(exc.body())
        return json_answer({"code": 0, "msg": "执行成功", "data": data})

    def business(path: str, handler: Handler) -> Callable[[], ResponseReturnValue]:
        def view() -> ResponseReturnValue:
            def work(params: dict[str, str]) -> dict[str, Any]:
                if params.get("version") != "2":
                    raise JstError(BAD_PARAMETER, "version 只能是 2")
                state.check_token(params.get("access_token", ""))
                try:
                    biz = json.loads(params.get("biz") or "")
                except ValueError:
                    raise JstError(BAD_PARAMETER, "biz 不是有效的JSON") from None
                return handler(state, biz)

            return answer(path, work)

        return view

    for path, handler in ENDPOINTS.items():
        app.add_url_rule(path, path.strip("/"), business(path, handler), methods=["POST"])

    @app.post("/openWeb/auth/refreshToken")
    def refresh_token() -> ResponseReturnValue:
        def work(params: dict[str, str]) -> dict[str, Any]:
            if params.get("grant_type") != "refresh_token" or params.get("scope") != "all":
                raise JstError(BAD_PARAMETER, "grant_type 必须是 refresh_token, scope 必须是 all")
            return token_data(state.refresh(params.get("refresh_token", "")))

        return answer("/openWeb/auth/refreshToken", work)

    @app.get("/")
    def stock_page() -> ResponseReturnValue:
        with state.lock:
            stock = sorted(state.stock.values(), key=lambda s: s.sku_id)
            orders = sorted(state.orders.values(), key=lambda o: o.o_id)
            return render_template_string(STOCK_PAGE, stock=stock, orders=orders, time=format_time)

    return app
