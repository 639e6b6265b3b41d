"""The sandbox seller's own page: stock of every item and SKU, live, with demo buttons.

``/`` lists items and SKUs with their stock, refreshed every second from
``/sandbox/stock.json``; each row has a "buy on Taobao" form (``/sandbox/buy``: a paid trade,
so TradeCreate, ItemStockChanged and TradeBuyerPay are published) and a seller "set
quantity" form (``/sandbox/set-quantity``: ItemStockChanged). Each recent trade has its
after-sales buttons (``/sandbox/refund``): the buyer asks for a refund of the whole trade,
the seller agrees or refuses (RefundCreated, RefundSuccess + TradeClose, RefundClosed); the
trades' memos and flags are on their own page (``memo_page``). It
plays Taobao, not our shop: a separate app on 127.0.0.1 with no login and no CSRF token,
like the other sandboxes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, render_template_string, request
from flask.typing import ResponseReturnValue

from koudai_flask.connectors.sandbox.taobao import shop, trades
from koudai_flask.connectors.sandbox.taobao.state import (
    SELLER_NICK,
    SandboxItem,
    TopError,
    TopState,
)
from koudai_flask.connectors.taobao.records import property_pairs

PAGE_SIZE = 50  # items per page
MAX_ID = 2**63 - 1
RECENT_TRADES = 8

STOCK_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>淘宝沙箱店铺 Taobao sandbox shop</title>
<style>
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
background:#f5f5f5;color:#333}
header{background:#ff5000;color:#fff;padding:12px 16px}header h1{margin:0;font-size:18px}
small,.en{color:#999;font-size:12px;font-weight:normal}header small{color:#ffe0cc}
main{padding:10px;max-width:720px;margin:auto}
.note{padding:10px 12px;border-radius:6px;margin:0 0 10px}
.done{background:#e8f7e8;color:#2a6e2a}.error{background:#fdeaea;color:#a33}
.card{background:#fff;border-radius:8px;padding:10px 12px;margin-bottom:10px}
.card h2{font-size:15px;margin:0 0 6px}
#trades-table{width:100%;border-collapse:collapse;font-size:12px;table-layout:fixed}
#trades-table td,#trades-table th{padding:4px;text-align:left;border-bottom:1px solid #eee;
word-break:break-all}#trades-table th{font-weight:normal;color:#777}
.item-head{display:flex;gap:10px;align-items:center;margin-bottom:4px}
.item-head img{width:48px;height:48px;border-radius:4px;flex:none}
.sku{border-top:1px solid #eee;padding:8px 0}
.sku-head{display:flex;justify-content:space-between;align-items:baseline;gap:8px}
.qty{font-size:20px;font-weight:bold;min-width:2.5em;text-align:right}
.qty.zero{color:#c00}.qty.changed,b.changed{background:#fff3b0}
.actions{display:flex;flex-wrap:wrap;gap:6px 14px;margin-top:6px}
form{display:inline-flex;gap:4px;align-items:center;margin:0}
input[type=number]{width:4em;padding:5px;font-size:15px}
button{border:0;border-radius:4px;padding:7px 10px;cursor:pointer;white-space:nowrap;
font-size:14px}.buy{background:#ff5000;color:#fff}.buy small{color:#ffe0cc}.set{background:#e6e6e6}
nav{margin:8px 0 24px}nav a{margin-right:12px}
</style></head><body>
<header><h1>{{ nick }} · 库存 <small>Stock (Taobao sandbox)</small></h1></header>
<main>
{% if done %}<p class="note done" id="done">{{ done }}</p>{% endif %}
{% if error %}<p class="note error" id="error">{{ error }}</p>{% endif %}
<section class="card"><h2>最近交易 <span class="en">Recent trades</span>
· <a href="/sandbox/memos">卖家备注 <span class="en">Seller memos</span></a></h2>
<table id="trades-table"><thead><tr><th style="width:30%">交易号 Trade</th>
<th style="width:30%">状态 Status</th><th>实付 Paid</th><th style="width:24%">售后 Refund</th>
</tr></thead>
<tbody id="trades">
{% for trade in recent %}<tr><td>{{ trade.tid }}</td><td>{{ trade.status }}</td>
<td>¥{{ trade.payment }}</td><td>{{ trade.refund }}{% for action in trade.actions %}
<form method="post" action="/sandbox/refund">
<input type="hidden" name="tid" value="{{ trade.tid }}">
<input type="hidden" name="page" value="{{ page }}"><button class="set" type="submit" name="action"
value="{{ action }}">{{ refund_labels[action] }}</button></form>{% endfor %}</td></tr>
{% else %}<tr><td colspan="4">还没有交易 <span class="en">No trades yet</span></td></tr>
{% endfor %}</tbody></table></section>
{% for item in items %}<section class="card" id="item-{{ item.num_iid }}">
<div class="item-head">{% if item.pic_url %}<img src="{{ item.pic_url }}" alt="">{% endif %}
<div><h2>{{ item.title }}</h2><small>num_iid {{ item.num_iid }}{% if item.outer_id %}
· 商家编码 {{ item.outer_id }}{% endif %} · ¥{{ item.price }} · 总库存 total
<b data-stock="{{ item.num_iid }}">{{ item.num }}</b></small></div></div>
{% for row in item.rows %}<div class="sku">
<div class="sku-head"><span>{{ row.label }} <small>{% if row.sku_id %}sku_id {{ row.sku_id }}
{% endif %}{% if row.outer_id %}· {{ row.outer_id }} {% endif %}· ¥{{ row.price }}</small></span>
<span class="qty{% if not row.quantity %} zero{% endif %}" title="库存 stock"
data-stock="{{ row.key }}">{{ row.quantity }}</span></div>
<div class="actions">
<form method="post" action="/sandbox/buy">
<input type="hidden" name="num_iid" value="{{ item.num_iid }}">
<input type="hidden" name="sku_id" value="{{ row.sku_id or '' }}">
<input type="hidden" name="page" value="{{ page }}">
<input type="number" name="num" value="1" min="1" aria-label="件数 quantity">
<button class="buy" type="submit">买家购买 <small>Buy on Taobao</small></button></form>
<form method="post" action="/sandbox/set-quantity">
<input type="hidden" name="num_iid" value="{{ item.num_iid }}">
<input type="hidden" name="sku_id" value="{{ row.sku_id or '' }}">
<input type="hidden" name="page" value="{{ page }}">
<input type="number" name="quantity" value="{{ row.quantity }}" min="0"
aria-label="库存 stock"><button class="set" type="submit">卖家改库存 <small>Set stock</small>
</button></form></div></div>
{% endfor %}</section>
{% else %}<p class="card">没有商品 <span class="en">No items</span></p>{% endfor %}
<nav>{% if page > 1 %}<a href="?page={{ page - 1 }}">上一页 Previous</a>{% endif %}
{% if page < pages %}<a href="?page={{ page + 1 }}">下一页 Next</a>{% endif %}
<small>第 {{ page }} / {{ pages }} 页 · page {{ page }} of {{ pages }}</small></nav>
</main>
<script>
// Poll the stock every second and update the cells in place (forms keep what is typed).
(function () {
  var url = "/sandbox/stock.json?page={{ page }}";
  function show(key, value) {
    document.querySelectorAll('[data-stock="' + key + '"]').forEach(function (cell) {
      if (cell.textContent.trim() !== String(value)) {
        cell.textContent = value;
        cell.classList.add("changed");
        cell.classList.toggle("zero", value === 0 && cell.classList.contains("qty"));
        setTimeout(function () { cell.classList.remove("changed"); }, 700);
      }
    });
  }
  var labels = {{ refund_labels | tojson }};
  function field(form, name, value) {
    var input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = value;
    form.appendChild(input);
  }
  function tradeRow(trade) {
    var row = document.createElement("tr");
    [trade.tid, trade.status, "¥" + trade.payment, trade.refund].forEach(function (text) {
      var cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    });
    trade.actions.forEach(function (action) {
      var form = document.createElement("form");
      form.method = "post"; form.action = "/sandbox/refund";
      field(form, "tid", trade.tid); field(form, "page", "{{ page }}");
      var button = document.createElement("button");
      button.className = "set"; button.type = "submit";
      button.name = "action"; button.value = action; button.textContent = labels[action];
      form.appendChild(button);
      row.lastChild.appendChild(form);
    });
    return row;
  }
  function refresh() {
    fetch(url, {cache: "no-store"}).then(function (answer) { return answer.json(); })
      .then(function (data) {
        data.items.forEach(function (item) {
          show(String(item.num_iid), item.num);
          if (!item.skus.length) { show(item.num_iid + ":", item.num); }
          item.skus.forEach(function (sku) {
            show(item.num_iid + ":" + sku.sku_id, sku.quantity);
          });
        });
        if (data.trades.length) {
          var body = document.getElementById("trades");
          body.replaceChildren.apply(body, data.trades.map(tradeRow));
        }
      }).catch(function () {});
  }
  setInterval(refresh, 1000);
})();
</script>
</body></html>"""


class FormError(ValueError):
    """A stock page form with a missing or malformed field."""


def form_int(name: str, *, low: int, high: int) -> int:
    text = request.form.get(name, "").strip()
    try:
        value = int(text)
    except ValueError:
        raise FormError(f"{name} 必须是整数 ({name} must be a whole number)") from None
    if not low <= value <= high:
        raise FormError(f"{name} 必须在 {low}–{high} 之间 ({name} must be {low}..{high})")
    return value


def form_sku_id() -> int | None:
    """The SKU a row's form names; empty for an item without SKUs."""
    return form_int("sku_id", low=1, high=MAX_ID) if request.form.get("sku_id") else None


def page_of(state: TopState, page: int) -> tuple[list[SandboxItem], int]:
    """The items of one page (by num_iid) and the number of pages; call under the lock."""
    ordered = sorted(state.items.values(), key=lambda i: i.num_iid)
    pages = max(1, -(-len(ordered) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    return ordered[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], pages


def item_view(item: SandboxItem) -> dict[str, Any]:
    """An item and one row per SKU (or one row for the item itself) for the template."""
    if item.skus:
        rows = [
            {
                "key": f"{item.num_iid}:{sku.sku_id}",
                "sku_id": sku.sku_id,
                "label": " / ".join(v for _, v in property_pairs(sku.properties_name)),
                "outer_id": sku.outer_id,
                "price": sku.price,
                "quantity": sku.quantity,
            }
            for sku in item.skus.values()
        ]
    else:
        rows = [
            {
                "key": f"{item.num_iid}:",
                "sku_id": None,
                "label": "单品 (no SKU)",
                "outer_id": "",
                "price": item.price,
                "quantity": item.num,
            }
        ]
    return {**vars(item), "rows": rows}


# The after-sales buttons of a recent trade, by the action /sandbox/refund takes.
REFUND_LABELS = {
    "ask": "买家申请退款 Ask refund",
    "agree": "卖家同意 Agree",
    "refuse": "卖家拒绝 Refuse",
}


def recent_trades(state: TopState) -> list[dict[str, Any]]:
    newest = sorted(state.trades.values(), key=lambda t: (t["created"], t["tid"]), reverse=True)
    return [
        {
            **{k: t[k] for k in ("tid", "status", "payment", "buyer_nick")},
            **_after_sales(t),
        }
        for t in newest[:RECENT_TRADES]
    ]


def _after_sales(trade: dict[str, Any]) -> dict[str, Any]:
    """The trade's refund state (the first line's that is not NO_REFUND) and its buttons."""
    states = [line["refund_status"] for line in trade["orders"]["order"]]
    refund = next((s for s in states if s != "NO_REFUND"), "NO_REFUND")
    if any(s in trades.ASKING for s in states):
        actions = ["agree", "refuse"]
    elif trade["status"] in trades.PAID_STATES:
        actions = ["ask"]
    else:
        actions = []
    return {"refund": refund, "actions": actions}


def register_stock_page(app: Flask, state: TopState) -> None:
    """Add the stock page, its JSON feed and its two forms to the sandbox app."""

    def render(page: int, done: str = "", error: str = "", status: int = 200) -> tuple[str, int]:
        with state.lock:
            items, pages = page_of(state, page)
            html = render_template_string(
                STOCK_PAGE,
                nick=SELLER_NICK,
                items=[item_view(i) for i in items],
                recent=recent_trades(state),
                refund_labels=REFUND_LABELS,
                page=min(max(page, 1), pages),
                pages=pages,
                done=done,
                error=error,
            )
        return html, status

    def back(page: int, done: str) -> ResponseReturnValue:
        # Post/redirect/get: a reload does not buy again.
        return redirect("/?" + urlencode({"page": page, "done": done}), 303)

    def requested_page() -> int:
        try:
            return int(request.values.get("page", "1"))
        except ValueError:
            return 1

    @app.get("/")
    def stock_page() -> ResponseReturnValue:
        return render(requested_page(), request.args.get("done", ""))

    @app.get("/sandbox/stock.json")
    def stock_json() -> ResponseReturnValue:
        with state.lock:
            items, _ = page_of(state, requested_page())
            return jsonify(
                items=[
                    {
                        "num_iid": item.num_iid,
                        "num": item.num,
                        "skus": [
                            {"sku_id": sku.sku_id, "quantity": sku.quantity}
                            for sku in item.skus.values()
                        ],
                    }
                    for item in items
                ],
                trades=recent_trades(state),
            )

    @app.post("/sandbox/buy")
    def buy() -> ResponseReturnValue:
        page = requested_page()
        try:
            num_iid, sku_id = form_int("num_iid", low=1, high=MAX_ID), form_sku_id()
            num = form_int("num", low=1, high=999)
            buyer = request.form.get("buyer_nick", "").strip() or "sandbox_buyer"
            trade = trades.add_trade(state, [(num_iid, sku_id, num)], buyer_nick=buyer)
        except FormError as exc:
            return render(page, error=str(exc), status=400)
        except TopError as exc:
            return render(page, error=exc.sub_msg or exc.msg, status=400)
        return back(
            page, f"已下单并付款 · trade {trade['tid']} created and paid (¥{trade['payment']})"
        )

    @app.post("/sandbox/refund")
    def refund() -> ResponseReturnValue:
        page = requested_page()
        action = request.form.get("action", "")
        try:
            tid = form_int("tid", low=1, high=MAX_ID)
            if action == "ask":
                trades.ask_refund(state, tid)
            elif action == "agree":
                trades.agree_refund(state, tid)
            elif action == "refuse":
                trades.close_refund(state, tid, refused=True)
            else:
                raise FormError("action 须为 ask、agree 或 refuse · must be ask, agree or refuse")
        except FormError as exc:
            return render(page, error=str(exc), status=400)
        except TopError as exc:
            return render(page, error=exc.sub_msg or exc.msg, status=400)
        return back(page, f"{REFUND_LABELS[action]} · trade {tid}")

    @app.post("/sandbox/set-quantity")
    def set_quantity() -> ResponseReturnValue:
        page = requested_page()
        try:
            num_iid, sku_id = form_int("num_iid", low=1, high=MAX_ID), form_sku_id()
            quantity = form_int("quantity", low=0, high=999_999)
            shop.set_quantity(state, num_iid, quantity, sku_id)
        except FormError as exc:
            return render(page, error=str(exc), status=400)
        except TopError as exc:
            return render(page, error=exc.sub_msg or exc.msg, status=400)
        return back(page, f"库存已设为 {quantity} · stock set to {quantity}")
