"""The funnel: tracked links, buffered steps, daily rollups and the dashboard."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError

from koudai_flask.connectors.sandbox.wechat import WechatSandbox
from koudai_flask.extension import get_state
from koudai_flask.models import FunnelDaily, FunnelEvent, Order
from koudai_flask.services import campaigns, catalog, channels, funnel, funnel_stats, orders, staff
from koudai_flask.services.transaction import unit_of_work
from tests.shop_client import ShopClient
from tests.test_campaigns import (
    PASSWORD,
    draft,
    login,
    make_customers,
    shop_app,
    tag_segment,
)

SLUG = "oxford-shirt"
STEPS = (
    "push_sent",
    "push_clicked",
    "visit",
    "product_viewed",
    "cart_added",
    "checkout_started",
    "order_placed",
    "order_paid",
)


@pytest.fixture
def wechat() -> Iterator[WechatSandbox]:
    sandbox = WechatSandbox(appid="wx0123456789abcdef", secret="sandbox-secret-0123")
    yield sandbox
    sandbox.stop()


def session() -> Any:
    current = get_state().session
    current.expire_all()
    return current


def shirt() -> None:
    catalog.create_product(
        title="Oxford shirt",
        slug=SLUG,
        skus=[{"code": "SHIRT-W", "price": 12900, "stock": 10}],
    )


def visitors(result: funnel_stats.Funnel) -> dict[str, int]:
    return {s.event: s.visitors for s in result.steps}


def events(result: funnel_stats.Funnel) -> dict[str, int]:
    return {s.event: s.events for s in result.steps}


def count_events(**where: Any) -> int:
    query = select(func.count()).select_from(FunnelEvent)
    for name, value in where.items():
        query = query.where(getattr(FunnelEvent, name) == value)
    return int(session().scalar(query) or 0)


def tracked_link(message: Any) -> str:
    """The shop path of a message's tracked link (``/r/<token>``)."""
    return "/r/" + message.url.rsplit("/r/", 1)[1]


# -- a campaign's whole way ---------------------------------------------------------------------


def test_a_click_then_a_purchase_moves_the_campaign_funnel_exactly(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        shirt()
        ids = make_customers(3, tag="vip")
        campaign = draft(tag_segment("vip"), target=f"/products/{SLUG}")
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert len(wechat.api.messages) == 3
    clicked = next(m for m in wechat.api.messages if m.touser == f"o{ids[1]:06d}")

    buyer = ShopClient(app)
    landing = buyer.get(tracked_link(clicked))
    assert landing.status_code == 302
    assert landing.headers["Location"] == f"/shop/products/{SLUG}"
    assert buyer.get(f"/products/{SLUG}").status_code == 200
    assert buyer.add_to_cart("SHIRT-W").status_code == 302
    placed = buyer.checkout()
    assert placed.status_code == 302
    number = placed.headers["Location"].split("/orders/")[1].split("/")[0]
    passer_by = ShopClient(app)  # someone with no campaign
    assert passer_by.get(f"/products/{SLUG}").status_code == 200

    with app.app_context():
        order = session().scalar(select(Order).where(Order.number == number))
        orders.mark_paid(number, amount=order.total, transaction_id="T-1", provider="offline")
        today = funnel_stats.today()
        result = funnel_stats.funnel(today, today, campaign_id=campaign.id)
        assert visitors(result) == dict.fromkeys(STEPS, 1) | {"push_sent": 3}
        assert events(result) == dict.fromkeys(STEPS, 1) | {"push_sent": 3}
        assert result.step("order_paid").amount == order.total
        assert result.step("order_placed").amount == order.total
        assert result.step("push_clicked").rate == pytest.approx(1 / 3)
        assert result.step("order_paid").rate == 1.0

        everyone = funnel_stats.funnel(today, today)
        assert visitors(everyone)["visit"] == 2
        assert visitors(everyone)["product_viewed"] == 2
        assert visitors(everyone)["order_paid"] == 1

        # The payment's event replayed by the outbox adds nothing.
        payload = {"number": number, "channel": "web", "total": order.total, "customer_id": None}
        funnel.on_order_paid("order.paid", payload)
        assert count_events(event="order_paid") == 1
        # The click was the buyer's: every step after it carries that customer.
        who = set(
            session().scalars(
                select(FunnelEvent.visitor).where(
                    FunnelEvent.campaign_id == campaign.id, FunnelEvent.event != "push_sent"
                )
            )
        )
        assert who == {f"c{ids[1]}"}

        # The day's rollup says the same.
        funnel_stats.rollup_day(today)
        rolled = {
            row.event: (row.events, row.visitors)
            for row in session().scalars(
                select(FunnelDaily).where(FunnelDaily.campaign_id == campaign.id)
            )
        }
        assert rolled == dict.fromkeys(STEPS, (1, 1)) | {"push_sent": (3, 3)}
        staff.grant("staff:boss", "owner", email="boss@shop.cn", password=PASSWORD)

    boss = login(app, "boss@shop.cn")
    page = boss.get(f"/shop-admin/funnel?campaign={campaign.id}").get_data(as_text=True)
    for step in STEPS:
        expected = 3 if step == "push_sent" else 1
        assert re.search(
            rf'<tr data-step="{step}"><td>[^<]+</td><td class="kd-visitors">{expected}</td>', page
        ), step
    assert '<td class="kd-rate">33.3%</td>' in page


def test_a_bad_or_old_link_lands_on_the_home_page_and_counts_nothing(
    make_app, database_url, wechat
):
    app = shop_app(make_app, database_url, wechat, KOUDAI_CAMPAIGN_LINK_MAX_AGE=60)
    with app.app_context():
        token = campaigns.link_token(1, 1, "/products/x")
    client = ShopClient(app)
    response = client.get(f"/r/{token}x")
    assert (response.status_code, response.headers["Location"]) == (302, "/shop/")
    response = client.get("/r/not-a-token")
    assert (response.status_code, response.headers["Location"]) == (302, "/shop/")
    with app.app_context():
        funnel.flush()
        assert count_events() == 0
        fresh = campaigns._serializer().dumps([1, 1, "/"])
        two_minutes_ago = int(time.time()) - 120
        with mock.patch.object(TimestampSigner, "get_timestamp", return_value=two_minutes_ago):
            old = campaigns._serializer().dumps([1, 1, "/"])
        assert campaigns.read_link(fresh) == campaigns.Link(1, 1, "/")
        assert campaigns.read_link(old) is None
    response = client.get(f"/r/{old}")
    assert (response.status_code, response.headers["Location"]) == (302, "/shop/")
    with app.app_context():
        funnel.flush()
        assert count_events() == 0


def test_an_edited_target_cannot_send_the_buyer_elsewhere(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        serializer = campaigns._serializer()
        # Signed by us but naming another site (not something we write): refused.
        token = serializer.dumps([1, 1, "//evil.example.com/"])
    response = ShopClient(app).get(f"/r/{token}")
    assert (response.status_code, response.headers["Location"]) == (302, "/shop/")


# -- recording ----------------------------------------------------------------------------------


def test_steps_wait_in_the_buffer_until_a_batch_is_full_or_the_process_ends(make_app, database_url):
    app = make_app(database_url, KOUDAI_FUNNEL_BATCH=4, KOUDAI_FUNNEL_FLUSH_INTERVAL=3600)
    with app.app_context():
        shirt()
    client = ShopClient(app)
    client.get(f"/products/{SLUG}")  # visit + product_viewed: 2 buffered
    client.get(f"/products/{SLUG}")  # 3
    with app.app_context():
        assert count_events() == 0
        assert len(funnel.buffer()) == 3
    client.get(f"/products/{SLUG}")  # 4: the batch is written after this request
    with app.app_context():
        assert funnel.buffer().settle()  # by the writer thread
        assert count_events(event="product_viewed") == 3
        assert count_events(event="visit") == 1
        assert len(funnel.buffer()) == 0
    client.get(f"/products/{SLUG}")
    with app.app_context():
        assert count_events() == 4
    funnel._flush_all_at_exit()  # what atexit runs when the process ends
    with app.app_context():
        assert count_events() == 5


def test_stopping_the_app_writes_its_buffer_and_the_exit_then_has_nothing_to_write(
    make_app, database_url, monkeypatch
):
    app = make_app(database_url, KOUDAI_FUNNEL_FLUSH_INTERVAL=3600)
    with app.app_context():
        funnel.record("visit", visitor="v1")
        funnel.record("visit", visitor="v2")
    get_state(app).stop(app)  # an app going away while the process lives on
    with app.app_context():
        assert count_events(event="visit") == 2
        funnel.record("visit", visitor="v3")  # a stopped app records nothing more
        assert len(funnel.buffer()) == 0

    flushed: list[funnel.EventBuffer] = []
    monkeypatch.setattr(funnel.EventBuffer, "flush", lambda self: flushed.append(self) or 0)
    with app.app_context():
        funnel.buffer().add(funnel.event_row("visit", visitor="late"))  # refused: closed
        funnel.buffer()._rows.append(funnel.event_row("visit", visitor="stray"))
    funnel._flush_all_at_exit()  # what atexit runs: the stopped app's buffer is left alone
    assert funnel.buffer(app) not in flushed


def test_a_buffer_that_cannot_be_written_keeps_its_rows(make_app, database_url, monkeypatch):
    app = make_app(database_url)
    with app.app_context():
        funnel.record("visit", visitor="v1")
        funnel.record("visit", visitor="v2")

        def down(*args: Any) -> None:
            raise OperationalError("INSERT", {}, Exception("database is down"))

        monkeypatch.setattr(funnel, "insert_events", down)
        assert funnel.flush() == 0
        assert len(funnel.buffer()) == 2
        monkeypatch.undo()
        assert funnel.flush() == 2
        assert sorted(session().scalars(select(FunnelEvent.visitor))) == ["v1", "v2"]


def test_recording_off_records_nothing_and_links_still_work(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat, KOUDAI_FUNNEL_EVENTS=False)
    with app.app_context():
        shirt()
        ids = make_customers(1, tag="vip")
        campaign = draft(tag_segment("vip"), target=f"/products/{SLUG}")
        campaigns.send_campaign(campaign.id, actor="staff:owner")
    client = ShopClient(app)
    response = client.get(tracked_link(wechat.api.messages[0]))
    assert response.headers["Location"] == f"/shop/products/{SLUG}"
    client.get(f"/products/{SLUG}")
    client.add_to_cart("SHIRT-W")
    with app.app_context():
        assert len(funnel.buffer()) == 0
        funnel.flush()
        assert count_events() == 0
        assert campaigns.progress(campaign.id)["sent"] == len(ids)


# -- rollups ------------------------------------------------------------------------------------


def add_events(rows: list[dict[str, Any]]) -> None:
    with unit_of_work() as s:
        s.execute(insert(FunnelEvent), [funnel.event_row(**row) for row in rows])


def test_a_rollup_counts_the_shop_s_day_and_running_it_again_changes_nothing(
    make_app, database_url
):
    app = make_app(database_url)  # Asia/Shanghai: UTC+8
    with app.app_context():
        add_events(
            [
                # 23:30 on 1 March in Shanghai
                {"event": "visit", "visitor": "v1", "at": datetime(2026, 3, 1, 15, 30, tzinfo=UTC)},
                {"event": "visit", "visitor": "v1", "at": datetime(2026, 3, 1, 15, 40, tzinfo=UTC)},
                {"event": "visit", "visitor": "", "at": datetime(2026, 3, 1, 15, 45, tzinfo=UTC)},
                {
                    "event": "order_paid",
                    "campaign_id": 7,
                    "visitor": "c1",
                    "amount": 500,
                    "at": datetime(2026, 3, 1, 15, 50, tzinfo=UTC),
                },
                # 00:30 on 2 March in Shanghai
                {"event": "visit", "visitor": "v2", "at": datetime(2026, 3, 1, 16, 30, tzinfo=UTC)},
            ]
        )
        march_1, march_2 = date(2026, 3, 1), date(2026, 3, 2)
        never_rolled = funnel_stats.funnel(march_1, march_2)
        assert funnel_stats.rollup_day(march_1) == 2
        first = sorted(
            (r.campaign_id, r.channel, r.event, r.events, r.visitors, r.amount)
            for r in session().scalars(select(FunnelDaily))
        )
        assert first == [(0, "web", "visit", 3, 1, 0), (7, "web", "order_paid", 1, 1, 500)]
        assert funnel_stats.rollup_day(march_1) == 2
        again = sorted(
            (r.campaign_id, r.channel, r.event, r.events, r.visitors, r.amount)
            for r in session().scalars(select(FunnelDaily))
        )
        assert again == first
        funnel_stats.rollup_day(march_2)
        rolled = funnel_stats.funnel(march_1, march_2)
        assert rolled == never_rolled
        assert events(rolled)["visit"] == 4
        assert visitors(rolled)["visit"] == 2  # one a day
        assert funnel_stats.funnel(march_1, march_2, campaign_id=7).step("order_paid").amount == 500
        assert funnel_stats.funnel(march_2, march_2, campaign_id=7).empty


# -- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_renders_for_an_empty_shop(make_app, database_url):
    app = make_app(database_url)
    with app.app_context():
        staff.grant("staff:boss", "owner", email="boss@shop.cn", password=PASSWORD)
        staff.grant("staff:ware", "warehouse", email="ware@shop.cn", password=PASSWORD)
    boss = login(app, "boss@shop.cn")
    response = boss.get("/shop-admin/funnel")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="funnel-empty"' in page and 'id="funnel-chart"' in page
    assert page.count('class="kd-visitors">0<') == len(STEPS)
    assert 'id="sales-chart"' not in page and "kd-empty" in page
    assert boss.get("/shop-admin/funnel?from=nonsense&to=2026-13-45&campaign=x").status_code == 200
    assert boss.get("/shop-admin/campaigns").status_code == 200
    assert login(app, "ware@shop.cn").get("/shop-admin/funnel").status_code == 403


def test_the_dashboard_of_a_busy_shop_shows_each_step_and_each_channel(make_app, database_url):
    app = make_app(database_url)
    with app.app_context():
        staff.grant("staff:boss", "owner", email="boss@shop.cn", password=PASSWORD)
        channels.create("taobao", "tb-a", settings={})
        staff.grant(
            "staff:mkt", "marketing", channels=["tb-a"], email="mkt@shop.cn", password=PASSWORD
        )
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 500}])
        today = funnel_stats.today()
        noon = datetime.combine(today, datetime.min.time(), tzinfo=funnel_stats.zone()) + timedelta(
            hours=12
        )
        rows = []
        for day in range(7):  # a week: 100 visitors a day, each viewing 3 products
            at = noon - timedelta(days=day)
            for v in range(100):
                rows.append({"event": "visit", "visitor": f"v{v}", "at": at})
                rows += [{"event": "product_viewed", "visitor": f"v{v}", "at": at}] * 3
                if v < 30:
                    rows.append({"event": "cart_added", "visitor": f"v{v}", "at": at})
                if v < 10:
                    rows.append({"event": "checkout_started", "visitor": f"v{v}", "at": at})
        add_events(rows)
        for day in range(1, 7):
            funnel_stats.rollup_day(today - timedelta(days=day))
        paid = []
        for n, channel in enumerate(["web"] * 3 + ["tb-a"] * 2):
            extra: dict[str, Any] = {} if channel == "web" else {"external_id": f"T{n}"}
            line: dict[str, Any] = {"sku": "KET", "quantity": 1}
            if channel != "web":
                line["unit_price"] = 9900
            order = orders.place(channel=channel, lines=[line], **extra)
            orders.mark_paid(
                order.number, amount=order.total, transaction_id=f"x{n}", provider="offline"
            )
            paid.append((order.number, order.total))
        with unit_of_work() as s:  # two of them paid two days ago
            s.execute(
                update(Order)
                .where(Order.number.in_([paid[0][0], paid[3][0]]))
                .values(paid_at=noon - timedelta(days=2))
            )
    boss = login(app, "boss@shop.cn")
    start = (today - timedelta(days=6)).isoformat()
    page = boss.get(f"/shop-admin/funnel?from={start}&to={today.isoformat()}").get_data(
        as_text=True
    )
    expected = {"visit": (700, 700), "product_viewed": (700, 2100), "cart_added": (210, 210)}
    expected["checkout_started"] = (70, 70)
    for step, (people, count) in expected.items():
        assert re.search(
            rf'data-step="{step}"><td>[^<]+</td><td class="kd-visitors">{people}</td>'
            rf'<td class="kd-events">{count}</td>',
            page,
        ), step
    assert '<td class="kd-rate">30.0%</td>' in page  # cart / product views
    assert page.count("<polyline") == 2
    assert re.search(r'data-channel="tb-a"><td>.*?</td><td>2</td><td>¥198.00</td>', page)
    assert re.search(r'data-channel="web"><td>.*?</td><td>3</td><td>¥297.00</td>', page)
    two_days = boss.get(
        f"/shop-admin/funnel?from={today.isoformat()}&to={today.isoformat()}&channel=web"
    ).get_data(as_text=True)
    assert re.search(r'data-channel="web"><td>.*?</td><td>2</td>', two_days)
    assert 'data-channel="tb-a"><td>' in two_days  # its sales chart is not filtered by it
    assert re.search(r'data-step="visit"><td>[^<]+</td><td class="kd-visitors">100<', two_days)
    scoped = (
        login(app, "mkt@shop.cn").get(f"/shop-admin/funnel?from={start}").get_data(as_text=True)
    )
    assert 'data-channel="tb-a"' in scoped and 'data-channel="web"' not in scoped
