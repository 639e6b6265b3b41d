"""The seller's memo and flag on an order (卖家备注, 旗帜): by the service, from the order page
and the list by staff who may, through the REST API and its webhook; refused with nothing
written for a bad memo, flag or order; never shown to the buyer; on SQLite and PostgreSQL.
(The sync with a Taobao trade's memo is in test_taobao_memo.)"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Order, OrderMemo, OutboxEvent
from koudai_flask.services import order_memo, order_sync
from koudai_flask.services.webhooks import TOPIC_EVENTS
from tests.api_support import API, make_key
from tests.shop_client import ShopClient
from tests.test_admin import build, login


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, dict[str, str]]:
    return build(make_app, database_url)


def written(app: Flask) -> dict[str, Any]:
    """Everything a refused change must leave as it was."""
    with app.app_context():
        session = get_state().session
        return {
            "memos": sorted(
                (row.order_id, row.memo, row.flag, row.version)
                for row in session.scalars(select(OrderMemo))
            ),
            "events": session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.topic == order_memo.TOPIC)
            ),
            "audit": session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "order.memo")
            ),
        }


def memo_row(app: Flask, number: str) -> OrderMemo | None:
    with app.app_context():
        session = get_state().session
        order_id = session.scalar(select(Order.id).where(Order.number == number))
        row = session.get(OrderMemo, order_id)
        if row is not None:
            session.expunge(row)
        return row


def test_a_memo_and_flag_are_kept_audited_and_sent_as_one_event(shop):
    app, numbers = shop
    number = numbers["web"]
    with app.app_context():
        order_memo.set_memo(number, memo="  送礼，不要放发票  ", flag=1, actor="staff:cs")
    row = memo_row(app, number)
    assert row is not None
    assert (row.memo, row.flag, row.version, row.updated_by) == (
        "送礼，不要放发票",
        1,
        1,
        "staff:cs",
    )
    assert row.push_pending is False  # the own shop's order: nowhere to push it
    with app.app_context():
        session = get_state().session
        event = session.scalar(select(OutboxEvent).where(OutboxEvent.topic == order_memo.TOPIC))
        assert event.payload == {
            "number": number,
            "channel": "web",
            "memo": "送礼，不要放发票",
            "flag": 1,
            "previous": {"memo": "", "flag": 0},
            "actor": "staff:cs",
            "origin": None,
            "push": False,
        }
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "order.memo"))
        assert (entry.before, entry.after) == (
            {"memo": "", "flag": 0},
            {"memo": "送礼，不要放发票", "flag": 1},
        )
        assert TOPIC_EVENTS[order_memo.TOPIC] == "order.memo_changed"
        # Only the flag changes: the memo stays; the event says what it was.
        order_memo.set_memo(number, flag="3", actor="staff:cs")
        events = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.topic == order_memo.TOPIC)
            .order_by(OutboxEvent.id)
        ).all()
        assert events[-1].payload["previous"] == {"memo": "送礼，不要放发票", "flag": 1}
        assert (events[-1].payload["memo"], events[-1].payload["flag"]) == ("送礼，不要放发票", 3)
    before = written(app)
    with app.app_context():  # the same values again: nothing is written
        order_memo.set_memo(number, memo="送礼，不要放发票", flag=3, actor="staff:other")
        order_memo.set_memo(number, actor="staff:other")
    assert written(app) == before
    assert memo_row(app, number).version == 2


@pytest.mark.parametrize(
    ("memo", "flag", "reason"),
    [
        ("x" * (order_memo.MAX_MEMO + 1), None, "memo_long"),
        (None, 6, "memo_flag"),
        (None, -1, "memo_flag"),
        (None, "red", "memo_flag"),
        (None, True, "memo_flag"),
        (12, None, "memo"),
    ],
)
def test_a_bad_memo_or_flag_is_refused_with_nothing_written(shop, memo, flag, reason):
    app, numbers = shop
    with app.app_context():
        order_memo.set_memo(numbers["web"], memo="first", flag=2)
    before = written(app)
    with app.app_context(), pytest.raises(ValidationError) as refused:
        order_memo.set_memo(numbers["web"], memo=memo, flag=flag)
    assert refused.value.reason == reason
    assert written(app) == before


def test_an_unknown_order_is_not_found_and_a_bulk_flag_with_one_is_refused_whole(shop):
    app, numbers = shop
    before = written(app)
    with app.app_context():
        with pytest.raises(NotFound):
            order_memo.set_memo("NO-SUCH", memo="x")
        with pytest.raises(NotFound):
            order_memo.set_flags([numbers["web"], "NO-SUCH", numbers["tb-a"]], 1)
        with pytest.raises(ValidationError):
            order_memo.set_flags([" ", ""], 1)
    assert written(app) == before
    with app.app_context():
        assert order_memo.set_flags([numbers["web"], numbers["tb-a"], numbers["web"]], 4) == 2
        assert order_memo.set_flags([numbers["web"], numbers["tb-b"]], 4) == 1
    assert [memo_row(app, numbers[n]).flag for n in ("web", "tb-a", "tb-b")] == [4, 4, 4]


def test_a_change_from_the_channel_waits_behind_one_made_here_until_it_went_out(shop):
    app, numbers = shop
    number = numbers["tb-a"]
    with app.app_context():
        order_sync.bind("tb-a", number, "T-tb-a", direction="import")
        assert (
            order_memo.synced_channel(
                get_state().session.scalar(select(Order).where(Order.number == number))
            )
            == "tb-a"
        )
        order_memo.set_memo(number, memo="先打电话", flag=1, actor="staff:cs")
    row = memo_row(app, number)
    assert row.push_pending and row.version == 1
    with app.app_context():
        push = order_memo.to_push("tb-a", number)
        assert (push.external_id, push.memo, push.flag, push.version) == (
            "T-tb-a",
            "先打电话",
            1,
            1,
        )
        # The trade is read again before the push went out: Taobao's old memo loses.
        order_memo.set_memo(number, memo="", flag=0, actor="channel:tb-a", origin="tb-a")
        assert order_memo.to_push("tb-b", number) is None  # another channel's: not its order
        # A second change while the first was on its way: that push does not clear it.
        order_memo.set_memo(number, flag=2, actor="staff:cs")
        assert order_memo.record_pushed(number, 1) is False
    row = memo_row(app, number)
    assert (row.memo, row.flag, row.version, row.push_pending) == ("先打电话", 2, 2, True)
    with app.app_context():
        assert order_memo.record_pushed(number, 2) is True
        assert order_memo.to_push("tb-a", number) is None
        # Now what Taobao says is the latest: it wins, and is not pushed back.
        order_memo.set_memo(
            number, memo="买家改约周六", flag=3, actor="channel:tb-a", origin="tb-a"
        )
        event = (
            get_state()
            .session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.topic == order_memo.TOPIC)
                .order_by(OutboxEvent.id.desc())
            )
            .first()
        )
        assert (event.payload["origin"], event.payload["push"]) == ("tb-a", False)
    row = memo_row(app, number)
    assert (row.memo, row.flag, row.push_pending) == ("买家改约周六", 3, False)


# -- the back office ---------------------------------------------------------------------------


def test_service_staff_set_it_on_the_order_page_and_the_list_shows_and_filters_it(shop):
    app, numbers = shop
    number = numbers["web"]
    client = login(app, "customer_service")
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="memo-form"' in page and "卖家备注" in page
    saved = client.post(
        f"/shop-admin/orders/{number}/memo",
        data={"csrf_token": client.csrf, "memo": "<b>易碎</b> 多包一层", "flag": "1"},
        follow_redirects=True,
    )
    text = saved.get_data(as_text=True)
    assert "备注已保存。" in text
    assert "&lt;b&gt;易碎&lt;/b&gt; 多包一层" in text and "<b>易碎</b>" not in text
    row = memo_row(app, number)
    assert (row.memo, row.flag, row.updated_by) == (
        "<b>易碎</b> 多包一层",
        1,
        "staff:staff:customer_service@shop.cn",
    )
    listed = client.get("/shop-admin/orders").get_data(as_text=True)
    assert 'class="kd-flag kd-flag-1"' in listed and "多包一层" in listed
    for flag, shown in (("1", {number}), ("any", {number}), ("2", set()), ("none", None)):
        page = client.get(f"/shop-admin/orders?flag={flag}").get_data(as_text=True)
        found = {n for n in numbers.values() if f'data-number="{n}"' in page}
        if shown is None:
            assert number not in found and found == set(numbers.values()) - {number}
        else:
            assert found == shown, flag
    assert 'data-number="' not in client.get("/shop-admin/orders?flag=9").get_data(as_text=True)


def test_the_ticked_orders_are_flagged_at_once_and_the_list_comes_back_filtered(shop):
    app, numbers = shop
    client = login(app, "owner")
    response = client.post(
        "/shop-admin/orders/flag",
        data={
            "csrf_token": client.csrf,
            "numbers": [numbers["web"], numbers["tb-a"]],
            "flag": "5",
            "list-status": "paid",
            "list-page": "",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/shop-admin/orders?status=paid")
    assert [memo_row(app, numbers[n]).flag for n in ("web", "tb-a")] == [5, 5]
    assert memo_row(app, numbers["tb-b"]) is None
    before = written(app)
    refused = client.post(
        "/shop-admin/orders/flag",
        data={"csrf_token": client.csrf, "numbers": [numbers["web"]], "flag": "8"},
        follow_redirects=True,
    )
    assert "请选择旗帜：无、红、黄、绿、蓝或紫。" in refused.get_data(as_text=True)
    none = client.post(
        "/shop-admin/orders/flag",
        data={"csrf_token": client.csrf, "flag": "1"},
        follow_redirects=True,
    )
    assert "请至少勾选一个要插旗的订单。" in none.get_data(as_text=True)
    assert written(app) == before


def test_who_may_not_edit_orders_sees_the_memo_but_cannot_change_it(shop):
    app, numbers = shop
    number = numbers["web"]
    with app.app_context():
        order_memo.set_memo(number, memo="加急", flag=1)
    before = written(app)
    warehouse = login(app, "warehouse")  # ships, but does not edit orders
    page = warehouse.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert "加急" in page and 'id="memo-form"' not in page
    assert 'id="flag-ticked"' not in warehouse.get("/shop-admin/orders").get_data(as_text=True)
    posted = warehouse.post(
        f"/shop-admin/orders/{number}/memo", data={"csrf_token": warehouse.csrf, "memo": "x"}
    )
    assert posted.status_code == 403
    flagged = warehouse.post(
        "/shop-admin/orders/flag",
        data={"csrf_token": warehouse.csrf, "numbers": [number], "flag": "2"},
    )
    assert flagged.status_code == 403
    agent = login(app, "agent")  # customer service for tb-a only: the web order is not theirs
    assert (
        agent.post(
            f"/shop-admin/orders/{number}/memo", data={"csrf_token": agent.csrf, "memo": "x"}
        ).status_code
        == 404
    )
    mixed = agent.post(
        "/shop-admin/orders/flag",
        data={"csrf_token": agent.csrf, "numbers": [numbers["tb-a"], number], "flag": "2"},
        follow_redirects=True,
    )
    assert mixed.status_code == 200
    service = login(app, "customer_service")
    assert service.post(f"/shop-admin/orders/{number}/memo", data={"memo": "x"}).status_code == 400
    assert written(app) == before


def test_the_order_csv_carries_the_flag_and_a_formula_safe_memo(shop):
    app, numbers = shop
    with app.app_context():
        order_memo.set_memo(numbers["web"], memo="=HYPERLINK(1)", flag=2)
    client = login(app, "owner")
    text = client.get("/shop-admin/orders/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = {row["number"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows[numbers["web"]]["seller_flag"] == "2"
    assert rows[numbers["web"]]["seller_memo"] == "'=HYPERLINK(1)"
    assert (rows[numbers["tb-a"]]["seller_flag"], rows[numbers["tb-a"]]["seller_memo"]) == ("0", "")


def test_the_buyer_never_sees_the_sellers_memo(shop):
    app, numbers = shop
    number = numbers["web"]
    with app.app_context():
        order_memo.set_memo(number, memo="难缠的买家 小心处理", flag=1)
    buyer = ShopClient(app)
    buyer.get("/account/login")
    buyer.post("/account/login", {"login": "web@buyers.cn", "password": "buyer-pass-1"})
    page = buyer.text(f"/orders/{number}")
    assert number in page and "难缠的买家" not in page and "kd-flag" not in page
    assert "难缠的买家" not in buyer.text("/orders")


# -- the REST API ------------------------------------------------------------------------------


def test_the_api_sets_reads_and_filters_it_and_refuses_bad_input(shop):
    app, numbers = shop
    number = numbers["web"]
    with app.app_context():
        from koudai_flask.services import staff

        staff.grant("staff:owner@shop.cn", "owner")
    headers = make_key(app, ["orders.view", "orders.edit"], owner="staff:owner@shop.cn")
    client = app.test_client()
    url = f"{API}/orders/{number}/memo"
    changed = client.put(url, json={"memo": "周末不收货", "flag": 4}, headers=headers)
    assert changed.status_code == 200
    body = changed.get_json()
    assert (body["seller_memo"], body["seller_flag"]) == ("周末不收货", 4)
    only_flag = client.put(url, json={"flag": 0}, headers=headers).get_json()
    assert (only_flag["seller_memo"], only_flag["seller_flag"]) == ("周末不收货", 0)
    client.put(url, json={"flag": 3}, headers=headers)
    listed = client.get(f"{API}/orders?flag=3", headers=headers).get_json()
    assert [o["number"] for o in listed["items"]] == [number]
    unflagged = client.get(f"{API}/orders?flag=none", headers=headers).get_json()
    assert number not in [o["number"] for o in unflagged["items"]]
    assert all(o["seller_flag"] == 0 for o in unflagged["items"])
    assert client.get(f"{API}/orders?flag=7", headers=headers).status_code == 422
    before = written(app)
    for bad in ({}, {"flag": 6}, {"flag": "1"}, {"memo": "x" * 1001}, {"memo": None, "flag": None}):
        refused = client.put(url, json=bad, headers=headers)
        assert refused.status_code == 422, bad
    assert (
        client.put(f"{API}/orders/NO-SUCH/memo", json={"flag": 1}, headers=headers).status_code
        == 404
    )
    reader = make_key(app, ["orders.view"], owner="staff:owner@shop.cn")
    assert client.put(url, json={"flag": 1}, headers=reader).status_code == 403
    assert written(app) == before
