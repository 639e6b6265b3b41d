"""A month of sample sales, so the back office's figures have something to show.

``flask seed-sales`` places orders in the own shop over the last ``--days`` days through
koudai's order engine (stock held, paid, shipped and delivered as a real order would be),
then moves their times back to the day they stand for: the dashboard, the funnel's sales
chart, the best sellers and the customers' RFM scores read a shop with a history, and
about half the delivered orders of the demo's customers carry their reviews (评价). A few
products sell far more than the rest, as in a real shop. The last two days' orders stay
paid and unshipped, for the packing and scanning walk-throughs, some of them with the
seller's memo and flag (卖家备注, 旗帜) a shop puts on orders to pack; a SKU that runs out is
simply not sold again. Run again, it adds nothing. No funnel steps are recorded for them:
they never went through the shop's pages.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select, update

from examples.host_site.demo_crm import seed_customers
from koudai_flask.errors import OutOfStock
from koudai_flask.models import (
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    ProductReview,
    Shipment,
    Sku,
)
from koudai_flask.services import funnel_stats, order_memo, orders, reviews
from koudai_flask.services.transaction import current_session, unit_of_work

KEY = "demo-sale-{}"  # each order's idempotency key: the first one found means seeded
ADDRESSES = [
    ("李雷", "13800138001", "浙江省", "杭州市", "西湖区", "文三路 90 号"),
    ("韩梅梅", "13800138002", "上海市", "上海市", "徐汇区", "漕溪北路 88 号"),
    ("王小明", "13800138003", "广东省", "深圳市", "南山区", "科技园中区 1 栋"),
    ("赵敏", "13800138004", "北京市", "北京市", "海淀区", "中关村大街 27 号"),
]
UNSHIPPED_DAYS = 2
REVIEW_WORDS = {
    5: ("很满意，会回购。", "质量很好，和图片一样。", "发货快，包装仔细。", ""),
    4: ("不错，就是物流慢了一点。", "挺好的，颜色比图片略深。", ""),
    3: ("一般般，对得起价格。", ""),
    2: ("尺码偏小，建议买大一号。",),
    1: ("收到有破损，联系客服处理中。",),
}
MEMOS = ("送礼，不要放发票", "先打电话确认再发", "多包一层气泡膜", "与上一单合并发货", "")


def _address(rng: random.Random) -> dict[str, str]:
    name, phone, province, city, district, street = rng.choice(ADDRESSES)
    return {
        "name": name,
        "phone": phone,
        "province": province,
        "city": city,
        "district": district,
        "street": street,
    }


def _codes() -> list[str]:
    """The SKUs on sale, the first products' ones most wanted (a long tail after them)."""
    rows = current_session().execute(
        select(Sku.code)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.active.is_(True), Product.status == "active")
        .order_by(Product.id, Sku.id)
    )
    return [code for (code,) in rows]


def _backdate(number: str, moment: datetime) -> None:
    """The order's rows as if it had been placed and handled at ``moment``."""
    with unit_of_work() as session:
        order_id = session.scalar(select(Order.id).where(Order.number == number))
        session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(created_at=moment, updated_at=moment, paid_at=moment + timedelta(minutes=3))
        )
        for model in (OrderEvent, Payment, Shipment, ProductReview):
            session.execute(
                update(model).where(model.order_id == order_id).values(created_at=moment)
            )


def _review(rng: random.Random, customer_id: int, number: str) -> None:
    """The buyer's stars and words on each item of a delivered order, most of them good."""
    line_ids = (
        current_session()
        .scalars(
            select(OrderLine.id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.number == number)
        )
        .all()
    )
    for line_id in line_ids:
        rating = rng.choices((5, 4, 3, 2, 1), weights=(12, 6, 2, 1, 1))[0]
        reviews.write(customer_id, number, line_id, rating, rng.choice(REVIEW_WORDS[rating]))


def place_sales(days: int, *, seed: int = 2013) -> int:
    """Place the sample orders; returns how many (0 when they are there already)."""
    session = current_session()
    if session.scalar(select(Order.id).where(Order.idempotency_key == KEY.format(0))):
        return 0
    rng = random.Random(seed)
    memo_rng = random.Random(seed + 1)  # its own draws: the orders are the same without it
    codes = _codes()
    weights = [1 / (rank + 1) for rank in range(len(codes))]  # Zipf: a few best sellers
    buyers = seed_customers()
    zone = funnel_stats.zone()
    today = funnel_stats.today()
    placed = 0
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        for _ in range(rng.randint(2, 7)):
            picked = set(rng.choices(codes, weights=weights, k=rng.choice((1, 1, 2))))
            lines = [{"sku": code, "quantity": rng.choice((1, 1, 1, 2))} for code in picked]
            local = time(rng.randint(8, 22), rng.randint(0, 59))
            moment = datetime.combine(day, local, zone).astimezone(UTC)  # stored in UTC
            try:
                order = orders.place(
                    channel="web",
                    lines=lines,
                    customer=rng.choice(buyers) if rng.random() < 0.6 else None,
                    address=_address(rng),
                    idempotency_key=KEY.format(placed),
                )
            except OutOfStock:
                continue  # sold out: the shop sells it no more
            number = order.number
            orders.mark_paid(
                number, amount=order.total, transaction_id=f"demo-{number}", provider="offline"
            )
            if back > UNSHIPPED_DAYS:
                orders.ship(number, carrier="shunfeng", tracking_number=f"SF{placed + 1:010d}")
                orders.deliver(number)
                if order.customer_id is not None and rng.random() < 0.6:
                    _review(rng, order.customer_id, number)
            elif memo_rng.random() < 0.5:
                order_memo.set_memo(
                    number,
                    memo=memo_rng.choice(MEMOS),
                    flag=memo_rng.choice((1, 1, 2, 3, 4)),
                    actor="staff:owner@example.com",
                )
            _backdate(number, moment)
            placed += 1
    return placed


@click.command("seed-sales")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
@with_appcontext
def seed_sales(days: int) -> None:
    """Sample paid orders of the last DAYS days (shipped and delivered but the last two)."""
    # They never went through the shop's pages: no funnel steps (the funnel would count
    # every payment today, with no visit before it).
    recording = current_app.config["KOUDAI_FUNNEL_EVENTS"]
    current_app.config["KOUDAI_FUNNEL_EVENTS"] = False
    try:
        placed = place_sales(days)
    finally:
        current_app.config["KOUDAI_FUNNEL_EVENTS"] = recording
    if placed:
        click.echo(f"sample orders placed over {days} days: {placed}")
    else:
        click.echo("sample orders exist")
