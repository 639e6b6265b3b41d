"""Best sellers (热销商品): units sold per SKU and channel, and the days the stock lasts."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update

from koudai_flask.models import Order
from koudai_flask.services import best_sellers, catalog, channels, funnel_stats, orders, staff
from koudai_flask.services.transaction import unit_of_work
from tests.api_support import API, OWNER, make_key
from tests.test_campaigns import PASSWORD, login

TEA, CUP, POT = 2000, 9900, 5000  # prices in fen


def paid(channel: str, lines: dict[str, int], n: int) -> str:
    extra: dict[str, Any] = {} if channel == "web" else {"external_id": f"T{n}"}
    prices = {"TEA": TEA, "CUP": CUP, "POT": POT}
    wanted = [
        {"sku": code, "quantity": units}
        | ({} if channel == "web" else {"unit_price": prices[code]})
        for code, units in lines.items()
    ]
    order = orders.place(channel=channel, lines=wanted, **extra)
    orders.mark_paid(order.number, amount=order.total, transaction_id=f"p{n}", provider="offline")
    return order.number


def shop(app: Flask) -> None:
    """Three SKUs sold on the own shop and a Taobao shop, some of it given back."""
    with app.app_context():
        channels.create("taobao", "tb-a", settings={})
        catalog.create_product(title="Tea", skus=[{"code": "TEA", "price": TEA, "stock": 100}])
        catalog.create_product(title="Cup", skus=[{"code": "CUP", "price": CUP, "stock": 10}])
        catalog.create_product(title="Pot", skus=[{"code": "POT", "price": POT, "stock": 50}])
        paid("web", {"TEA": 3}, 1)
        paid("web", {"TEA": 2, "CUP": 1}, 2)
        cups = paid("web", {"CUP": 4}, 3)
        orders.refund(cups, lines={"CUP": 1})  # one of the four given back
        paid("tb-a", {"TEA": 1}, 4)
        orders.place(channel="web", lines=[{"sku": "POT", "quantity": 5}])  # never paid
        pots = paid("web", {"POT": 2}, 5)
        orders.request_refund(pots, reason="changed my mind")
        orders.refund(pots)  # refunded as a whole
        old = paid("web", {"TEA": 7}, 6)
        with unit_of_work() as session:  # paid 40 days ago: outside the last 30 days
            session.execute(
                update(Order)
                .where(Order.number == old)
                .values(paid_at=datetime.now(funnel_stats.zone()) - timedelta(days=40))
            )


def by_code(ranking: best_sellers.Ranking) -> dict[str, best_sellers.BestSeller]:
    return {row.sku_code: row for row in ranking.rows}


def test_units_are_paid_units_less_refunds_per_sku_and_channel(make_app, database_url):
    app = make_app(database_url)
    shop(app)
    with app.app_context():
        today = funnel_stats.today()
        month = best_sellers.ranking(today - timedelta(days=29), today)
        rows = by_code(month)
        assert [row.sku_code for row in month.rows] == ["TEA", "CUP"]  # no pot was kept
        tea, cup = rows["TEA"], rows["CUP"]
        assert (tea.units, tea.sales, tea.orders) == (6, 6 * TEA, 3)
        assert tea.by_channel == {"web": 5, "tb-a": 1}
        assert (cup.units, cup.sales, cup.orders) == (4, 4 * CUP, 2)
        assert (month.units, month.sales, month.skus) == (10, 6 * TEA + 4 * CUP, 2)
        assert month.channels == ["web", "tb-a"]
        # Available now at the default location: 100 - 13 held for paid orders; 10 - 4 held
        # (the refunded cup went back to the shelf).
        assert (tea.available, cup.available) == (87, 6)
        assert tea.days_left == round(87 / (6 / 30), 1) and cup.days_left == 45.0

        assert [r.sku_code for r in best_sellers.ranking(today, today, sort="sales").rows] == [
            "CUP",
            "TEA",
        ]
        soonest = best_sellers.ranking(today - timedelta(days=29), today, sort="days_left")
        assert [row.sku_code for row in soonest.rows] == ["CUP", "TEA"]
        taobao = best_sellers.ranking(today, today, channel="tb-a")
        assert [(r.sku_code, r.units) for r in taobao.rows] == [("TEA", 1)]
        scoped = best_sellers.ranking(today, today, channels=["tb-a"])
        assert [(r.sku_code, r.units) for r in scoped.rows] == [("TEA", 1)]
        quarter = by_code(best_sellers.ranking(today - timedelta(days=59), today))
        assert quarter["TEA"].units == 13 and quarter["TEA"].orders == 4
        assert best_sellers.ranking(today, today, limit=1).rows[0].sku_code == "TEA"
        assert best_sellers.ranking(today, today, limit=1).skus == 2


def test_a_sold_out_sku_has_no_days_left_and_comes_first_when_running_out(make_app, database_url):
    app = make_app(database_url)
    with app.app_context():
        catalog.create_product(title="Cup", skus=[{"code": "CUP", "price": CUP, "stock": 2}])
        catalog.create_product(title="Tea", skus=[{"code": "TEA", "price": TEA, "stock": 100}])
        paid("web", {"CUP": 2, "TEA": 5}, 1)
        today = funnel_stats.today()
        ranking = best_sellers.ranking(today, today, sort="days_left")
        assert [(r.sku_code, r.available, r.days_left) for r in ranking.rows] == [
            ("CUP", 0, 0.0),
            ("TEA", 95, 19.0),
        ]


def test_the_page_ranks_within_the_members_scope_and_exports_csv(make_app, database_url):
    app = make_app(database_url)
    shop(app)
    with app.app_context():
        staff.grant("staff:boss", "owner", email="boss@shop.cn", password=PASSWORD)
        staff.grant("staff:ware", "warehouse", email="ware@shop.cn", password=PASSWORD)
        staff.grant("staff:tb", "viewer", channels=["tb-a"], email="tb@shop.cn", password=PASSWORD)
    boss = login(app, "boss@shop.cn")
    response = boss.get("/shop-admin/best-sellers")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.findall(r'<tr data-sku="(\w+)"', page) == ["TEA", "CUP"]
    assert re.search(r'data-sku="TEA">.*?<td class="kd-units"[^>]*>6</td>', page, re.S)
    assert re.search(r'data-sku="TEA">.*?kd-by-channel[^>]*>web 5 · tb-a 1</td>', page, re.S)
    assert 'href="/shop-admin/best-sellers"' in page  # in the menu
    assert 'id="best-sellers-csv"' in page

    by_sales = boss.get("/shop-admin/best-sellers?sort=sales").get_data(as_text=True)
    assert re.findall(r'<tr data-sku="(\w+)"', by_sales) == ["CUP", "TEA"]
    for nonsense in ("sort=cheapest", "from=yesterday&to=2026-13-45", "channel=nowhere"):
        again = boss.get(f"/shop-admin/best-sellers?{nonsense}")
        assert again.status_code == 200, nonsense  # taken as the defaults, as the funnel does
        assert re.findall(r'<tr data-sku="(\w+)"', again.get_data(as_text=True)) == ["TEA", "CUP"]

    export = boss.get("/shop-admin/best-sellers.csv?sort=units")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert "attachment; filename=best-sellers-" in export.headers["Content-Disposition"]
    text = export.get_data(as_text=True)
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0] == [
        "sku",
        "product",
        "variant",
        "units",
        "sales_yuan",
        "orders",
        "available",
        "days_left",
        "units_web",
        "units_tb-a",
    ]
    assert table[1] == ["TEA", "Tea", "", "6", "120.00", "3", "87", "435.0", "5", "1"]
    assert table[2] == ["CUP", "Cup", "", "4", "396.00", "2", "6", "45.0", "4", "0"]
    assert len(table) == 3

    ware = login(app, "ware@shop.cn")  # sees orders, may not export them
    ware_page = ware.get("/shop-admin/best-sellers").get_data(as_text=True)
    assert re.findall(r'<tr data-sku="(\w+)"', ware_page) == ["TEA", "CUP"]
    assert 'id="best-sellers-csv"' not in ware_page
    assert ware.get("/shop-admin/best-sellers.csv").status_code == 403

    taobao_only = login(app, "tb@shop.cn").get("/shop-admin/best-sellers").get_data(as_text=True)
    assert re.findall(r'<tr data-sku="(\w+)"', taobao_only) == ["TEA"]
    assert re.search(r"kd-by-channel[^>]*>tb-a 1</td>", taobao_only)
    assert "<option>web</option>" not in taobao_only


def test_an_empty_shop_says_nothing_sold(make_app, database_url):
    app = make_app(database_url)
    with app.app_context():
        staff.grant("staff:boss", "owner", email="boss@shop.cn", password=PASSWORD)
    page = login(app, "boss@shop.cn").get("/shop-admin/best-sellers").get_data(as_text=True)
    assert 'class="kd-empty"' in page and "<tr data-sku=" not in page


def test_the_api_ranks_within_the_keys_channels_and_refuses_a_bad_range(make_app, database_url):
    app = make_app(database_url)
    shop(app)
    with app.app_context():
        staff.grant(OWNER, "owner")
        today = funnel_stats.today()
    client = app.test_client()
    every = make_key(app, ["orders.view"])
    answer = client.get(f"{API}/reports/best-sellers", headers=every)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["from"], body["to"], body["days"]) == (
        (today - timedelta(days=29)).isoformat(),
        today.isoformat(),
        30,
    )
    assert (body["units"], body["sales"], body["skus"]) == (10, 6 * TEA + 4 * CUP, 2)
    tea = body["items"][0]
    assert (tea["sku"], tea["units"], tea["orders"], tea["available"]) == ("TEA", 6, 3, 87)
    assert tea["by_channel"] == {"web": 5, "tb-a": 1} and tea["days_left"] == 435.0
    by_sales = client.get(f"{API}/reports/best-sellers?sort=sales&limit=1", headers=every)
    assert by_sales.status_code == 200, by_sales.get_json()
    assert [item["sku"] for item in by_sales.get_json()["items"]] == ["CUP"]

    taobao = make_key(app, ["orders.view"], channels=["tb-a"])
    scoped = client.get(f"{API}/reports/best-sellers?channel=web", headers=taobao).get_json()
    assert scoped["items"] == [] and scoped["units"] == 0  # web is not the key's to see
    scoped = client.get(f"{API}/reports/best-sellers", headers=taobao).get_json()
    assert [(item["sku"], item["by_channel"]) for item in scoped["items"]] == [("TEA", {"tb-a": 1})]

    for query, field in (
        ("from=2026-02-30", "from"),
        (f"from={today.isoformat()}&to={(today - timedelta(days=1)).isoformat()}", "from"),
        ("from=2024-01-01&to=2025-06-01", "from"),
        ("sort=cheapest", "sort"),
        ("limit=0", "limit"),
    ):
        refused = client.get(f"{API}/reports/best-sellers?{query}", headers=every)
        assert refused.status_code == 422, query
        assert field in refused.get_json()["errors"], (query, refused.get_json())
    stock_only = make_key(app, ["stock.adjust"])
    assert client.get(f"{API}/reports/best-sellers", headers=stock_only).status_code == 403
