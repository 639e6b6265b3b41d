"""Packing slips (发货单) and the pick list (拣货单): what is printed, who may, and the marks.

Over the back office's pages on SQLite and PostgreSQL: staff who ship tick orders (or take
every paid order not printed yet) and get one document with the pick list and a slip per
order; only what is still to send is on it, each print is remembered on the order and
audited, and nothing is marked when nothing could be printed.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, PackingSlip
from koudai_flask.services import catalog, orders, packing
from koudai_flask.services.order_search import OrderFilters, order_query
from koudai_flask.services.staff import get_member
from tests.test_admin import build, login
from tests.test_refusals_said import said


def text(response: Any) -> str:
    page = response.get_data(as_text=True)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def slips(response: Any) -> list[str]:
    """The order numbers of the printed slips, in their order."""
    return re.findall(r'class="kd-sheet kd-slip" data-number="([^"]+)"', response.get_data(True))


def marks(app: Flask) -> dict[str, tuple[int, str]]:
    """Order number -> (times printed, by whom)."""
    from koudai_flask.models import Order

    with app.app_context():
        rows = get_state().session.execute(
            select(Order.number, PackingSlip.times, PackingSlip.printed_by).join(
                PackingSlip, PackingSlip.order_id == Order.id
            )
        )
        return {number: (times, by) for number, times, by in rows}


def print_slips(client: Any, which: str, numbers: tuple[str, ...] | list[str] = ()) -> Any:
    return client.post(
        "/shop-admin/orders/slips",
        data={"csrf_token": client.csrf, "which": which, "numbers": list(numbers)},
    )


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, dict[str, str]]:
    app, numbers = build(make_app, database_url)
    with app.app_context():
        catalog.create_product(title="Mug", skus=[{"code": "MUG", "price": 2500, "stock": 9}])
        order = orders.place(
            channel="web",
            lines=[{"sku": "KET", "quantity": 3}, {"sku": "MUG", "quantity": 1}],
            address={"name": "韩梅梅", "phone": "13900139000", "street": "文三路 1 号"},
            note="请用纸箱",
        )
        orders.mark_paid(order.number, amount=order.total, transaction_id="p1", provider="offline")
        # One kettle went out already: two are left to pack.
        orders.ship(order.number, carrier="shunfeng", tracking_number="SF1", lines={"KET": 1})
        numbers["partly"] = order.number
    return app, numbers


def test_the_ticked_orders_print_with_their_pick_list_and_are_marked(shop):
    app, numbers = shop
    client = login(app, "warehouse")
    ticked = [numbers["partly"], numbers["web"], numbers["pending"]]
    response = print_slips(client, "ticked", ticked)
    assert response.status_code == 200
    page = text(response)
    assert slips(response) == [numbers["partly"], numbers["web"]]  # as ticked
    assert "共 2 张发货单，4 件商品。" in page  # 2 kettles and a mug left, and 1 kettle
    # The pick list adds up the shelves: 2 + 1 kettles for two orders, one mug.
    picked = re.findall(
        r'<tr data-sku="(\w+)">.*?kd-pick-quantity">(\d+)</td><td>(\d+)</td>',
        response.get_data(True),
    )
    assert picked == [("KET", "3", "2"), ("MUG", "1", "1")]
    assert "韩梅梅 13900139000" in page and "买家留言: 请用纸箱" in page
    assert f"{numbers['pending']} (待付款)" in page  # left out, saying why
    assert marks(app) == {
        numbers["partly"]: (1, "staff:warehouse@shop.cn"),
        numbers["web"]: (1, "staff:warehouse@shop.cn"),
    }
    with app.app_context():
        entry = (
            get_state()
            .session.scalars(select(AuditEntry).where(AuditEntry.action == "orders.slips_printed"))
            .one()
        )
        assert entry.after == {"orders": [numbers["partly"], numbers["web"]]}

    again = print_slips(login(app, "owner"), "ticked", [numbers["web"]])
    assert "第 2 次打印" in text(again)
    assert marks(app)[numbers["web"]] == (2, "staff:owner@shop.cn")

    listed = client.get("/shop-admin/orders?slip=unprinted").get_data(as_text=True)
    assert numbers["tb-a"] in listed and numbers["web"] not in listed
    assert "发货单已打印" in client.get("/shop-admin/orders").get_data(as_text=True)


def test_every_paid_order_not_printed_yet_prints_once(shop):
    app, numbers = shop
    client = login(app, "owner")
    print_slips(client, "ticked", [numbers["tb-a"]])
    response = print_slips(client, "unprinted")
    # Oldest first, the one printed before left out; unpaid ones are not packed.
    assert slips(response) == [numbers["web"], numbers["tb-b"], numbers["partly"]]
    with app.app_context():
        member = get_member("staff:owner@shop.cn")
        unprinted = OrderFilters(status="paid", slip_unprinted=True)
        assert get_state().session.scalars(order_query(member, unprinted)).all() == []
    before = marks(app)
    refused = client.post(
        "/shop-admin/orders/slips",
        data={"csrf_token": client.csrf, "which": "unprinted"},
        follow_redirects=True,
    )
    assert "这些订单都不是有待发商品的已付款订单，没有可打印的发货单。" in said(refused)
    assert marks(app) == before


def test_staff_print_only_what_they_may_ship(shop):
    app, numbers = shop
    agent = login(app, "agent")  # customer service on tb-a only
    response = print_slips(agent, "ticked", [numbers["tb-b"], numbers["tb-a"]])
    assert slips(response) == [numbers["tb-a"]]
    assert numbers["tb-b"] in text(response)  # named as not printed, nothing said of it
    assert "Buyer tb-b" not in text(response)
    assert set(marks(app)) == {numbers["tb-a"]}

    assert print_slips(login(app, "viewer"), "ticked", [numbers["web"]]).status_code == 403
    assert print_slips(login(app, "marketing"), "unprinted").status_code == 403
    no_token = login(app, "owner").post(
        "/shop-admin/orders/slips", data={"which": "ticked", "numbers": [numbers["web"]]}
    )
    assert no_token.status_code == 400
    assert print_slips(login(app, "owner"), "everything").status_code == 400
    assert set(marks(app)) == {numbers["tb-a"]}


def test_too_many_at_once_is_refused_and_marks_nothing(shop):
    app, numbers = shop
    client = login(app, "owner")
    many = [numbers["web"]] + [f"KD-NONE-{i}" for i in range(packing.MAX_ORDERS)]
    response = client.post(
        "/shop-admin/orders/slips",
        data={"csrf_token": client.csrf, "which": "ticked", "numbers": many},
        follow_redirects=True,
    )
    assert "每次最多打印 200 个订单，请分批打印。" in said(response)
    assert marks(app) == {}
    with app.app_context():
        actions = get_state().session.scalars(select(AuditEntry.action)).all()
        assert "orders.slips_printed" not in actions


def test_two_prints_of_one_order_at_once_both_count(shop):
    """Two members printing the same slip at the same moment: one row, printed twice."""
    from concurrent.futures import ThreadPoolExecutor

    app, numbers = shop

    def one(who: str) -> int:
        with app.app_context():
            run = packing.print_slips(who, [numbers["web"]])
            return run.slips[0].times

    with ThreadPoolExecutor(2) as pool:
        seen = sorted(pool.map(one, ["staff:owner@shop.cn", "staff:admin@shop.cn"]))
    assert seen == [1, 2]
    assert marks(app)[numbers["web"]][0] == 2


def test_the_dashboard_counts_the_slips_left_to_print(shop):
    app, numbers = shop
    client = login(app, "warehouse")
    figure = re.compile(r'<dd id="slips-to-print"><a href="([^"]+)">(\d+)</a>')
    link, count = figure.search(client.get("/shop-admin/").get_data(as_text=True)).groups()
    assert count == "4"  # four paid orders, one of them partly shipped
    listed = client.get(html.unescape(link)).get_data(as_text=True)
    assert all(numbers[name] in listed for name in ("web", "tb-a", "tb-b", "partly"))
    print_slips(client, "ticked", [numbers["web"], numbers["partly"]])
    assert figure.search(client.get("/shop-admin/").get_data(as_text=True)).group(2) == "2"
    # An agent on one Taobao shop counts that shop's only.
    agent = login(app, "agent").get("/shop-admin/").get_data(as_text=True)
    assert figure.search(agent).group(2) == "1"


def test_scan_a_slip_then_the_waybill_to_ship(shop):
    """At the packing table: the slip's barcode finds the order, the waybill ships it, and
    the page is back for the next slip with the same carrier chosen."""
    from koudai_flask.models import Order, Shipment

    app, numbers = shop
    client = login(app, "warehouse")
    page = client.get(f"/shop-admin/orders/scan?number={numbers['partly']}")
    assert page.status_code == 200
    shown = text(page)
    assert "韩梅梅 13900139000" in shown and "KET Kettle 2 MUG Mug 1" in shown  # what goes in
    assert re.search(r'name="tracking_number"[^>]*autofocus', page.get_data(True))
    done = client.post(
        f"/shop-admin/orders/{numbers['partly']}/ship",
        data={
            "csrf_token": client.csrf,
            "next": "scan",
            "carrier": "zhongtong",
            "tracking_number": "ZT2000",
        },
    )
    assert done.status_code == 303 and done.headers["Location"] == "/shop-admin/orders/scan"
    after = client.get("/shop-admin/orders/scan").get_data(as_text=True)
    assert "已发货。请扫描下一张发货单。" in after
    nxt = client.get(f"/shop-admin/orders/scan?number={numbers['web']}").get_data(as_text=True)
    assert '<option value="zhongtong" selected>' in nxt  # the last carrier again
    with app.app_context():
        session = get_state().session
        parcel = session.execute(
            select(Order.status, Shipment.carrier, Shipment.tracking_number)
            .join(Shipment, Shipment.order_id == Order.id)
            .where(Order.number == numbers["partly"], Shipment.tracking_number == "ZT2000")
        ).one()
        assert tuple(parcel) == ("shipped", "zhongtong", "ZT2000")


def test_scanning_what_cannot_be_shipped_says_why_and_ships_nothing(shop):
    from koudai_flask.models import Shipment

    app, numbers = shop
    client = login(app, "warehouse")
    unknown = client.get("/shop-admin/orders/scan?number=KD000")
    assert unknown.status_code == 404 and "没有订单 KD000。" in text(unknown)
    unpaid = text(client.get(f"/shop-admin/orders/scan?number={numbers['pending']}"))
    assert "这里只能发货已付款的订单；此订单当前为「待付款」。" in unpaid
    agent = login(app, "agent")  # tb-a only: tb-b's order is not there for them
    other = agent.get(f"/shop-admin/orders/scan?number={numbers['tb-b']}")
    assert other.status_code == 404 and "Buyer tb-b" not in text(other)
    refused = client.post(
        f"/shop-admin/orders/{numbers['web']}/ship",
        data={
            "csrf_token": client.csrf,
            "next": "scan",
            "carrier": "shunfeng",
            "tracking_number": "x",
        },
        follow_redirects=True,
    )
    assert refused.request.path == "/shop-admin/orders/scan"  # the same order, to try again
    assert refused.request.args["number"] == numbers["web"]
    assert any("运单号" in words or "快递单号" in words for words in said(refused)), said(refused)
    assert login(app, "viewer").get("/shop-admin/orders/scan").status_code == 403
    with app.app_context():
        count = get_state().session.scalars(select(Shipment.tracking_number)).all()
        assert "x" not in count and len(count) == 1  # only the partly shipped order's parcel


def test_a_printing_system_lists_what_to_pack_and_records_its_prints(shop):
    """Through the REST API: the paid orders never printed, then "printed" for one of
    them, which the back office's list and filter then show."""
    from tests.api_support import API, make_key

    app, numbers = shop
    key = make_key(app, ["orders.view", "orders.ship"])
    limited = make_key(app, ["orders.view", "orders.ship"], channels=["tb-a"])
    reader = make_key(app, ["orders.view"])
    api = app.test_client()

    def call(method: str, path: str, headers: dict[str, str]) -> Any:
        return api.open(f"{API}{path}", method=method, headers=headers)

    def listed(query: str) -> set[str]:
        return {o["number"] for o in call("GET", f"/orders?{query}", key).get_json()["items"]}

    to_pack = listed("status=paid&slip=unprinted")
    assert to_pack == {numbers[n] for n in ("web", "tb-a", "tb-b", "partly")}
    printed = call("POST", f"/orders/{numbers['partly']}/slip", key)
    assert printed.status_code == 200
    assert printed.get_json() == {
        "number": numbers["partly"],
        "times": 1,
        "lines": [
            {"sku": "KET", "title": "Kettle", "variant": "", "quantity": 2},
            {"sku": "MUG", "title": "Mug", "variant": "", "quantity": 1},
        ],
    }
    assert listed("slip=printed") == {numbers["partly"]}
    assert numbers["partly"] not in listed("status=paid&slip=unprinted")
    assert marks(app)[numbers["partly"]] == (1, "staff:owner@shop.cn")

    assert call("POST", f"/orders/{numbers['tb-b']}/slip", limited).status_code == 404
    assert call("POST", f"/orders/{numbers['web']}/slip", reader).status_code == 403
    unpaid = call("POST", f"/orders/{numbers['pending']}/slip", key)
    assert unpaid.status_code == 422 and unpaid.get_json()["code"] == "ValidationError"
    assert set(marks(app)) == {numbers["partly"]}


def test_a_channel_order_id_finds_its_order_at_the_scan_page(shop):
    """A slip printed from the marketplace's own tools carries its order id (the Taobao
    订单号), not ours: the scan finds the order by it, within the member's channels."""
    app, numbers = shop
    client = login(app, "warehouse")
    page = client.get("/shop-admin/orders/scan?number=T-tb-a")
    assert page.status_code == 200
    assert re.search(rf'id="scanned" data-number="{numbers["tb-a"]}"', page.get_data(True))
    assert re.search(r'name="tracking_number"[^>]*autofocus', page.get_data(True))
    agent = login(app, "agent")  # tb-a only
    assert agent.get("/shop-admin/orders/scan?number=T-tb-a").status_code == 200
    hidden = agent.get("/shop-admin/orders/scan?number=T-tb-b")
    assert hidden.status_code == 404 and "没有订单 T-tb-b。" in text(hidden)
    assert 'id="scanned"' not in hidden.get_data(True)


def test_a_channel_order_id_two_channels_carry_offers_both(shop):
    from koudai_flask.services import orders as order_service

    app, numbers = shop
    with app.app_context():
        twin = order_service.place(
            channel="tb-b",
            lines=[{"sku": "KET", "quantity": 1, "unit_price": 9900}],
            external_id="T-tb-a",  # the same id on the other shop
        ).number
    client = login(app, "warehouse")
    page = client.get("/shop-admin/orders/scan?number=T-tb-a")
    assert page.status_code == 409
    assert "有 2 个订单的渠道订单号是 T-tb-a，请选择一个：" in text(page)
    offered = re.findall(r"/shop-admin/orders/scan\?number=(KD\w+)", page.get_data(True))
    assert offered == sorted([numbers["tb-a"], twin])
    assert 'id="scanned"' not in page.get_data(True)
    # The agent works on tb-a only: for them the id names one order.
    agent = login(app, "agent")
    mine = agent.get("/shop-admin/orders/scan?number=T-tb-a")
    assert mine.status_code == 200 and f'data-number="{numbers["tb-a"]}"' in mine.get_data(True)
