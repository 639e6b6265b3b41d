"""The store's home page, which was there before the shop was added."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

bp = Blueprint("main", __name__)

# What the store has always said about itself on its home page.
NEWS = [
    ("2013-05-20", "手机商城上线：在微信里也能下单了。 Our mobile shop is open."),
    ("2013-04-02", "明前龙井到货，限量 200 份。 Pre-Qingming Longjing has arrived."),
    ("2013-03-08", "杭州门店周末营业时间延长至 21:00。 Longer weekend hours in Hangzhou."),
]


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template("index.html", news=NEWS)
