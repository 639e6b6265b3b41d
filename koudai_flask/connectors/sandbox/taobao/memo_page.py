"""The sandbox seller's memo page: the seller's memo and flag of recent trades, as the seller
edits them in Taobao's back office (卖家备注).

``/sandbox/memos`` lists the newest trades with the buyer's message, the memo and the flag;
each has a form posting to ``/sandbox/memo``, which sets both (an empty memo box clears the
memo, as in the back office), moves the trade's ``modified`` on and publishes
``taobao_trade_TradeMemoModified`` (``memos``). Like the stock page it plays Taobao: no login
and no CSRF token, on 127.0.0.1 only.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, redirect, render_template_string, request
from flask.typing import ResponseReturnValue

from koudai_flask.connectors.sandbox.taobao import memos
from koudai_flask.connectors.sandbox.taobao.state import SELLER_NICK, TopError, TopState
from koudai_flask.connectors.sandbox.taobao.stock_page import MAX_ID, FormError, form_int

RECENT = 20
FLAG_LABELS = {
    0: "灰 none",
    1: "红 red",
    2: "黄 yellow",
    3: "绿 green",
    4: "蓝 blue",
    5: "紫 purple",
}
FLAG_COLOURS = {0: "#bbb", 1: "#e33", 2: "#e9b400", 3: "#2a2", 4: "#27d", 5: "#a3c"}

MEMO_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>卖家备注 Seller memos · 淘宝沙箱 Taobao sandbox</title>
<style>
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
background:#f5f5f5;color:#333}
header{background:#ff5000;color:#fff;padding:12px 16px}header h1{margin:0;font-size:18px}
header a{color:#fff}small{color:#999;font-size:12px}header small{color:#ffe0cc}
main{padding:10px;max-width:720px;margin:auto}
.note{padding:10px 12px;border-radius:6px;margin:0 0 10px}
.done{background:#e8f7e8;color:#2a6e2a}.error{background:#fdeaea;color:#a33}
.card{background:#fff;border-radius:8px;padding:10px 12px;margin-bottom:10px}
.card h2{font-size:15px;margin:0 0 6px;word-break:break-all}
.flag{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:4px}
.message{background:#fffbe6;padding:6px 8px;border-radius:4px;margin:6px 0;font-size:14px}
form{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}
textarea{flex:1 1 100%;min-height:3em;font-size:15px;padding:6px;box-sizing:border-box}
select,button{font-size:15px;padding:6px 10px}button{border:0;border-radius:4px;
background:#ff5000;color:#fff}
</style></head><body>
<header><h1>{{ nick }} · 卖家备注 <small>Seller memos</small></h1>
<a href="/">← 库存 Stock</a></header>
<main>
{% if done %}<p class="note done" id="done">{{ done }}</p>{% endif %}
{% if error %}<p class="note error" id="error">{{ error }}</p>{% endif %}
{% for trade in trades %}<section class="card" id="trade-{{ trade.tid }}">
<h2><span class="flag" style="background:{{ colours[trade.flag] }}"></span>{{ trade.tid }}
<small>{{ trade.status }} · {{ trade.buyer_nick }} · ¥{{ trade.payment }}</small></h2>
{% if trade.buyer_message %}<p class="message">买家留言 <small>Buyer's message</small>:
{{ trade.buyer_message }}</p>{% endif %}
<form method="post" action="/sandbox/memo">
<input type="hidden" name="tid" value="{{ trade.tid }}">
<textarea name="memo" maxlength="{{ max_memo }}"
aria-label="卖家备注 memo">{{ trade.memo }}</textarea>
<select name="flag" aria-label="旗帜 flag">{% for value, label in labels.items() %}
<option value="{{ value }}"{% if value == trade.flag %} selected{% endif %}>{{ label }}</option>
{% endfor %}</select>
<button type="submit">保存备注 <small style="color:#ffe0cc">Save memo</small></button>
</form></section>
{% else %}<p class="card">还没有交易 <small>No trades yet</small></p>{% endfor %}
</main></body></html>"""


def recent_memos(state: TopState) -> list[dict[str, object]]:
    """The newest trades with what the page shows of them; call under the lock."""
    newest = sorted(state.trades.values(), key=lambda t: (t["created"], t["tid"]), reverse=True)
    return [
        {
            **{k: t[k] for k in ("tid", "status", "payment", "buyer_nick")},
            "buyer_message": t.get("buyer_message", ""),
            "memo": t.get("seller_memo", ""),
            "flag": t.get("seller_flag", 0),
        }
        for t in newest[:RECENT]
    ]


def register_memo_page(app: Flask, state: TopState) -> None:
    """Add the memo page and its form to the sandbox app."""

    def render(done: str = "", error: str = "", status: int = 200) -> tuple[str, int]:
        with state.lock:
            html = render_template_string(
                MEMO_PAGE,
                nick=SELLER_NICK,
                trades=recent_memos(state),
                labels=FLAG_LABELS,
                colours=FLAG_COLOURS,
                max_memo=memos.MAX_MEMO,
                done=done,
                error=error,
            )
        return html, status

    @app.get("/sandbox/memos")
    def memo_page() -> ResponseReturnValue:
        return render(request.args.get("done", ""))

    @app.post("/sandbox/memo")
    def set_memo() -> ResponseReturnValue:
        try:
            tid = form_int("tid", low=1, high=MAX_ID)
            flag = form_int("flag", low=0, high=5)
            memo = request.form.get("memo", "").strip()
            # In the back office the memo is one box: emptying it clears the memo.
            memos.update_memo(state, tid, memo=memo, flag=flag, reset=not memo)
        except FormError as exc:
            return render(error=str(exc), status=400)
        except TopError as exc:
            return render(error=exc.sub_msg or exc.msg, status=400)
        done = f"备注已保存 · memo of trade {tid} saved"
        return redirect("/sandbox/memos?" + urlencode({"done": done}), 303)


__all__ = ["FLAG_LABELS", "register_memo_page"]
