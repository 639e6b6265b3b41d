"""Logistics tracking: the Kuaidi100 adapter, its push callback, polling and the carrier table,
and a buyer's return parcel, tracked like ours.

Everything talks over real loopback sockets: the Kuaidi100 sandbox on one port, the shop
app (for pushes) on another.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from koudai_flask.blueprints.shop.common import GUEST_ORDERS_KEY
from koudai_flask.connectors.errors import PermanentFailure, TemporaryFailure
from koudai_flask.connectors.logistics import carriers
from koudai_flask.connectors.logistics.kuaidi100 import (
    Kuaidi100Client,
    callback_sign,
    dumps,
    parse_time,
    query_sign,
)
from koudai_flask.connectors.sandbox.kuaidi100 import Kuaidi100Sandbox
from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.errors import ConfigError, NotFound, ValidationError
from koudai_flask.jobs import schedules
from koudai_flask.models import Order, OrderEvent, OutboxEvent, Shipment, TrackingEvent
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, logistics, order_states, orders, returns
from koudai_flask.services.transaction import current_session
from tests.test_notifications import SmtpServer, mail_settings

WAYBILL = "YT9693083639795"
SALT = "k100-salt-0123456789abcdefghijkl"
HOOK = "/shop-hooks/kuaidi100/callback"
EVENTS = [
    {
        "time": "2026-11-24 09:15:00",
        "context": "【杭州市】圆通速递 西湖区公司 已揽收",
        "location": "杭州市",
    },
    {
        "time": "2026-11-24 21:40:00",
        "context": "【杭州市】快件已发往 上海转运中心",
        "location": "杭州市",
    },
    {
        "time": "2026-11-25 06:05:00",
        "context": "【上海市】快件已到达 上海转运中心",
        "location": "上海市",
    },
]
SIGNED = {
    "time": "2026-11-25 18:04:00",
    "context": "【上海市】快件已签收 签收人: 本人",
    "location": "上海市",
}
ADDRESS = {"name": "李雷", "phone": "13800138000", "city": "上海市", "street": "南京西路 1 号"}


# -- fixtures --------------------------------------------------------------------------------


class LiveServer:
    """The shop app on a loopback port; the app is set after the port is known."""

    def __init__(self) -> None:
        self.app: Flask | None = None
        self.server = LoopbackServer(self)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def sandbox() -> Iterator[Kuaidi100Sandbox]:
    server = Kuaidi100Sandbox().start()
    yield server
    server.stop()


@pytest.fixture
def live() -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.stop()


def _tracking_app(make_app: Any, url: str, sandbox: Kuaidi100Sandbox, live: LiveServer) -> Flask:
    app = make_app(
        url,
        KOUDAI_KUAIDI100=sandbox.settings(callback_url=live.url + HOOK, salt=SALT),
    )
    live.app = app
    with app.app_context():
        catalog.create_product(
            title="Oxford shirt",
            options=["color"],
            skus=[
                {"code": "SHIRT-W", "price": 12900, "attributes": {"color": "white"}, "stock": 10}
            ],
        )
    return app


@pytest.fixture
def shop(
    make_app: Any, database_url: str, sandbox: Kuaidi100Sandbox, live: LiveServer
) -> Iterator[Flask]:
    """A shop with Kuaidi100 pointed at the sandbox and pushes coming back to ``live``."""
    app = _tracking_app(make_app, database_url, sandbox, live)
    with app.app_context():
        yield app


def ship_order(waybill: str = WAYBILL, carrier: str = "yuantong") -> tuple[str, int]:
    """Place, pay and ship one order through the services: (order number, shipment id)."""
    order = orders.place(channel="web", lines=[{"sku": "SHIRT-W", "quantity": 1}], address=ADDRESS)
    orders.mark_paid(
        order.number, amount=order.total, transaction_id=f"t-{waybill}", provider="offline"
    )
    orders.ship(order.number, carrier=carrier, tracking_number=waybill)
    shipment_id = current_session().scalar(
        select(Shipment.id).where(Shipment.tracking_number == waybill)
    )
    assert shipment_id is not None
    current_session().rollback()
    return order.number, shipment_id


def stored_events(shipment_id: int) -> list[tuple[Any, ...]]:
    session = current_session()
    session.rollback()
    rows = session.execute(
        select(TrackingEvent.occurred_at, TrackingEvent.context, TrackingEvent.location)
        .where(TrackingEvent.shipment_id == shipment_id)
        .order_by(TrackingEvent.occurred_at)
    ).all()
    session.rollback()
    return [tuple(row) for row in rows]


def order_status(number: str) -> str:
    session = current_session()
    session.rollback()
    status = session.scalar(select(Order.status).where(Order.number == number))
    session.rollback()
    assert status is not None
    return status


def push_form(
    events: list[dict[str, str]], *, state: str = "0", status: str = "polling"
) -> dict[str, str]:
    """A signed push exactly as Kuaidi100 sends it, for the test client."""
    data = [
        {"time": e["time"], "ftime": e["time"], "context": e["context"], "location": e["location"]}
        for e in events
    ]
    param = dumps(
        {
            "status": status,
            "billstatus": "got",
            "message": "",
            "autoCheck": "0",
            "comOld": "",
            "comNew": "",
            "lastResult": {
                "message": "ok",
                "state": state,
                "status": "200",
                "condition": "F00",
                "ischeck": "0",
                "com": "yuantong",
                "nu": WAYBILL,
                "data": data,
            },
        }
    )
    return {"param": param, "sign": callback_sign(param, SALT)}


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


# -- signatures and the adapter --------------------------------------------------------------


def test_the_derived_sign_vectors_of_protocols_section_5():
    param = '{"com":"yuantong","num":"YT9693083639795"}'
    assert query_sign(param, "testkey", "TESTCUSTOMER") == "AD6AD77E9C389B78E1A3A97E52384EEE"
    push = (
        '{"status":"polling","message":"","lastResult":{"state":"0","com":"yuantong",'
        '"nu":"YT9693083639795","data":[]}}'
    )
    assert callback_sign(push, "testsalt") == "DB4A03A66B624B7F6AE4A61E4C1619EF"


def test_kuaidi100_times_are_china_local_and_stored_as_utc():
    assert parse_time("2026-11-25 18:04:00") == datetime(2026, 11, 25, 10, 4, tzinfo=UTC)


def test_query_against_the_sandbox_maps_state_and_checkpoints(sandbox):
    sandbox.register("yuantong", WAYBILL, EVENTS, state="0")
    with Kuaidi100Client(
        sandbox.customer, sandbox.key, sandbox.query_url, sandbox.subscribe_url, 5
    ) as client:
        result = client.query("yuantong", WAYBILL)
    assert (result.carrier, result.tracking_number, result.state, result.signed) == (
        "yuantong",
        WAYBILL,
        "0",
        False,
    )
    assert [(c.occurred_at, c.context, c.location) for c in result.checkpoints] == [
        (utc("2026-11-24 22:05:00"), EVENTS[2]["context"], "上海市"),
        (utc("2026-11-24 13:40:00"), EVENTS[1]["context"], "杭州市"),
        (utc("2026-11-24 01:15:00"), EVENTS[0]["context"], "杭州市"),
    ]
    assert sandbox.requests["/poll/query.do"] == 1


def test_query_refusals_are_typed(sandbox):
    sandbox.register("shunfeng", "SF1001", EVENTS, phone="13800138000")
    wrong = Kuaidi100Client(sandbox.customer, "wrong-key", sandbox.query_url)
    with wrong, pytest.raises(PermanentFailure, match="returnCode 503"):
        wrong.query("yuantong", WAYBILL)
    with Kuaidi100Client(sandbox.customer, sandbox.key, sandbox.query_url) as client:
        with pytest.raises(TemporaryFailure, match="returnCode 500"):
            client.query("yuantong", "YT-NOT-YET-SCANNED")
        with pytest.raises(PermanentFailure, match="returnCode 408"):
            client.query("shunfeng", "SF1001")  # 顺丰 needs the receiver's phone
        assert len(client.query("shunfeng", "SF1001", phone="13800138000").checkpoints) == 3
    closed = Kuaidi100Sandbox().start()
    dead_url = closed.query_url
    closed.stop()
    gone = Kuaidi100Client(sandbox.customer, sandbox.key, dead_url, timeout=2)
    with gone, pytest.raises(TemporaryFailure, match="ConnectionError"):
        gone.query("yuantong", WAYBILL)


def test_subscribe_records_the_callback_and_a_duplicate_is_not_an_error(sandbox):
    with Kuaidi100Client(
        sandbox.customer, sandbox.key, sandbox.query_url, sandbox.subscribe_url
    ) as client:
        url = "https://shop.example.com/shop-hooks/kuaidi100/callback"
        assert client.subscribe("yuantong", WAYBILL, callback_url=url, salt=SALT) == "subscribed"
        assert client.subscribe("yuantong", WAYBILL, callback_url=url, salt=SALT) == "duplicate"
    subscription = sandbox.subscriptions[WAYBILL]
    assert (subscription.company, subscription.callback_url, subscription.salt) == (
        "yuantong",
        url,
        SALT,
    )
    assert sandbox.requests["/poll"] == 2
    with (
        Kuaidi100Client(
            sandbox.customer, "wrong-key", subscribe_url=sandbox.subscribe_url
        ) as client,
        pytest.raises(PermanentFailure, match="returnCode 600"),
    ):
        client.subscribe("yuantong", "YT2", callback_url=url, salt=SALT)
    assert list(sandbox.subscriptions) == [WAYBILL]


# -- the push callback -----------------------------------------------------------------------


def test_ship_subscribes_and_pushes_over_real_sockets_deliver_the_order(shop, sandbox, live):
    number, shipment_id = ship_order()
    subscription = sandbox.subscriptions[WAYBILL]
    assert (subscription.callback_url, subscription.salt) == (live.url + HOOK, SALT)
    assert current_session().get(Shipment, shipment_id).subscribed_at is not None
    assert logistics.subscribe_shipment(shipment_id) == "skipped"
    assert sandbox.requests["/poll"] == 1

    response = sandbox.push(WAYBILL, EVENTS, state="0")
    assert (response.status_code, response.json()) == (
        200,
        {"result": True, "returnCode": "200", "message": "成功"},
    )
    assert len(stored_events(shipment_id)) == 3
    assert order_status(number) == "shipped"

    response = sandbox.push(WAYBILL, [*EVENTS, SIGNED], state="3", status="shutdown")
    assert response.json() == {"result": True, "returnCode": "200", "message": "成功"}
    assert len(stored_events(shipment_id)) == 4
    assert order_status(number) == "delivered"
    session = current_session()
    shipment = session.get(Shipment, shipment_id)
    assert (shipment.status, shipment.tracking_state) == ("delivered", "3")
    assert shipment.delivered_at == utc("2026-11-25 10:04:00")
    delivered = session.scalars(select(OrderEvent).where(OrderEvent.to_status == "delivered")).all()
    assert [(e.from_status, e.actor) for e in delivered] == [("shipped", "kuaidi100")]


def test_a_push_replayed_50_times_stores_each_checkpoint_once(shop):
    number, shipment_id = ship_order()
    client = shop.test_client()
    form = push_form(EVENTS)
    for _ in range(50):
        response = client.post(HOOK, data=form)
        assert (response.status_code, response.get_json()) == (
            200,
            {"result": True, "returnCode": "200", "message": "成功"},
        )
    assert stored_events(shipment_id) == [
        (utc("2026-11-24 01:15:00"), EVENTS[0]["context"], "杭州市"),
        (utc("2026-11-24 13:40:00"), EVENTS[1]["context"], "杭州市"),
        (utc("2026-11-24 22:05:00"), EVENTS[2]["context"], "上海市"),
    ]
    assert current_session().get(Shipment, shipment_id).tracking_state == "0"


def test_twenty_concurrent_copies_of_a_signed_push_on_postgresql(
    make_app, postgres_url, sandbox, live
):
    app = _tracking_app(make_app, postgres_url, sandbox, live)
    with app.app_context():
        number, shipment_id = ship_order()
    form = push_form([*EVENTS, SIGNED], state="3", status="shutdown")
    start = threading.Barrier(20)
    answers: list[tuple[int, Any]] = []

    def deliver() -> None:
        client = app.test_client()  # each request runs in its own app context
        start.wait()
        response = client.post(HOOK, data=form)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [(200, {"result": True, "returnCode": "200", "message": "成功"})] * 20
    with app.app_context():
        assert len(stored_events(shipment_id)) == 4
        assert order_status(number) == "delivered"
        session = current_session()
        assert (
            session.scalar(
                select(func.count())
                .select_from(OrderEvent)
                .where(OrderEvent.to_status == "delivered")
            )
            == 1
        )


@pytest.mark.parametrize(
    "tamper",
    ["bad sign", "missing sign", "tampered param", "sign made with another salt"],
)
def test_unsigned_or_tampered_pushes_are_refused_with_one_log_line(shop, caplog, tamper):
    number, shipment_id = ship_order()
    form = push_form([*EVENTS, SIGNED], state="3", status="shutdown")
    if tamper == "bad sign":
        form["sign"] = "0" * 32
    elif tamper == "missing sign":
        del form["sign"]
    elif tamper == "tampered param":
        form["param"] = form["param"].replace("已签收", "已丢失")
    else:
        form["sign"] = callback_sign(form["param"], "another-salt")
    caplog.set_level(logging.INFO, logger="koudai_flask.logistics")
    response = shop.test_client().post(HOOK, data=form)
    assert response.status_code == 400
    body = response.get_json()
    assert (body["result"], body["returnCode"]) == (False, "500")
    assert stored_events(shipment_id) == []
    assert order_status(number) == "shipped"
    lines = [r for r in caplog.records if r.name == "koudai_flask.logistics"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    message = lines[0].getMessage()
    assert SALT not in message and "已签收" not in message
    assert form.get("sign", "-") not in message


def test_a_push_for_an_unknown_waybill_is_accepted_and_logged(shop, caplog):
    caplog.set_level(logging.WARNING, logger="koudai_flask.logistics")
    response = shop.test_client().post(HOOK, data=push_form(EVENTS))
    assert (response.status_code, response.get_json()) == (
        200,
        {"result": True, "returnCode": "200", "message": "成功"},
    )
    assert [r.getMessage() for r in caplog.records if r.name == "koudai_flask.logistics"] == [
        f"kuaidi100 push for unknown waybill yuantong {WAYBILL} ignored"
    ]
    assert current_session().scalar(select(func.count()).select_from(TrackingEvent)) == 0


def test_the_callback_is_404_when_kuaidi100_is_not_configured(make_app, database_url):
    app = make_app(database_url)
    response = app.test_client().post(HOOK, data=push_form(EVENTS))
    assert response.status_code == 404
    assert response.get_json()["result"] is False


def test_an_order_of_two_parcels_is_delivered_when_both_are_signed_for(shop):
    number, shipment_id = ship_order()
    session = current_session()
    order_id = session.scalar(select(Order.id).where(Order.number == number))
    session.add(Shipment(order_id=order_id, carrier="yuantong", tracking_number="YT-SECOND"))
    session.commit()
    first = logistics.record_tracking("yuantong", WAYBILL, events=[], state="3", source="test")
    assert (first.shipment_delivered, first.order_delivered) == (True, False)
    assert order_status(number) == "shipped"
    second = logistics.record_tracking(
        "yuantong", "YT-SECOND", events=[], state="301", source="test"
    )
    assert (second.shipment_delivered, second.order_delivered) == (True, True)
    assert order_status(number) == "delivered"
    again = logistics.record_tracking("yuantong", "YT-SECOND", events=[], state="3", source="test")
    assert (again.shipment_delivered, again.order_delivered) == (False, False)


# -- polling ---------------------------------------------------------------------------------


def test_polling_respects_the_30_minute_window(shop, sandbox):
    number, shipment_id = ship_order()
    sandbox.register("yuantong", WAYBILL, EVENTS)
    assert logistics.poll_shipment(shipment_id) == "polled"
    assert sandbox.requests["/poll/query.do"] == 1
    assert len(stored_events(shipment_id)) == 3

    assert logistics.poll_shipment(shipment_id) == "skipped"
    assert logistics.poll_due() == 0
    assert sandbox.requests["/poll/query.do"] == 1

    def polled_ago(minutes: int) -> None:
        session = current_session()
        session.execute(
            update(Shipment)
            .where(Shipment.id == shipment_id)
            .values(last_polled_at=utcnow() - timedelta(minutes=minutes))
        )
        session.commit()

    polled_ago(29)
    assert logistics.poll_shipment(shipment_id) == "skipped"
    assert sandbox.requests["/poll/query.do"] == 1
    polled_ago(31)
    sandbox.register("yuantong", WAYBILL, [*EVENTS, SIGNED], state="3")
    assert logistics.poll_shipment(shipment_id) == "polled"
    assert sandbox.requests["/poll/query.do"] == 2
    assert len(stored_events(shipment_id)) == 4
    assert order_status(number) == "delivered"
    assert logistics.poll_shipment(shipment_id) == "delivered"
    assert sandbox.requests["/poll/query.do"] == 2


def test_poll_due_picks_undelivered_recent_unpolled_shipments(shop, sandbox):
    _, fresh = ship_order("YT-FRESH")
    _, old = ship_order("YT-OLD")
    _, done = ship_order("YT-DONE")
    session = current_session()
    session.execute(
        update(Shipment).where(Shipment.id == old).values(created_at=utcnow() - timedelta(days=31))
    )
    session.execute(update(Shipment).where(Shipment.id == done).values(status="delivered"))
    session.commit()
    assert list(logistics.due_shipments()) == [fresh]
    sandbox.register("yuantong", "YT-FRESH", EVENTS)
    assert logistics.poll_due() == 1
    assert sandbox.queries == {"YT-FRESH": 1}
    assert list(logistics.due_shipments()) == []


def test_the_poll_job_is_scheduled_only_when_kuaidi100_is_configured(make_app, tmp_path, sandbox):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    plain = make_app(url)
    names = [name for name, _, _ in schedules.periodic_jobs(plain)]
    assert "koudai-kuaidi100-poll" not in names
    assert names[:2] == ["koudai-expire-reservations", "koudai-outbox-relay"]
    tracked = make_app(url, KOUDAI_KUAIDI100=sandbox.settings(poll_interval=900))
    assert [(name, every) for name, _, every in schedules.periodic_jobs(tracked)][-1] == (
        "koudai-kuaidi100-poll",
        900,
    )


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"key": "s3cret-key"}, "'customer' is required"),
        ({"customer": "C1"}, "'key' is required"),
        (
            {"customer": "C1", "key": "s3cret-key", "callback_url": "https://x.example/cb"},
            "'salt' is required when 'callback_url' is set",
        ),
        (
            {"customer": "C1", "key": "s3cret-key", "query_url": "ftp://x.example/q"},
            "'query_url' must be an http(s) URL",
        ),
        (
            {"customer": "C1", "key": "s3cret-key", "callback_url": "/relative", "salt": "s"},
            "'callback_url' must be an http(s) URL or None",
        ),
        ({"customer": "C1", "key": "s3cret-key", "sault": "s"}, "unknown key(s) 'sault'"),
        ("customer=C1", "must be a dict"),
    ],
)
def test_kuaidi100_settings_are_checked_at_init_without_echoing_secrets(
    make_app, tmp_path, settings, message
):
    with pytest.raises(ConfigError) as caught:
        make_app(f"sqlite:///{tmp_path / 'k.db'}", KOUDAI_KUAIDI100=settings)
    assert str(caught.value).startswith("KOUDAI_KUAIDI100: ")
    assert message in str(caught.value)
    assert "s3cret-key" not in str(caught.value)


def test_kuaidi100_settings_get_their_defaults(make_app, tmp_path):
    app = make_app(
        f"sqlite:///{tmp_path / 'k.db'}", KOUDAI_KUAIDI100={"customer": "C1", "key": "K"}
    )
    assert app.config["KOUDAI_KUAIDI100"] == {
        "customer": "C1",
        "key": "K",
        "salt": None,
        "callback_url": None,
        "query_url": "https://poll.kuaidi100.com/poll/query.do",
        "subscribe_url": "https://poll.kuaidi100.com/poll",
        "timeout": 10,
        "poll_interval": 600,
        "poll_batch": 50,
    }


# -- the carrier table -----------------------------------------------------------------------


def test_top_codes_of_the_main_carriers():
    assert {
        code: carriers.top_code(code)
        for code in (
            "shunfeng",
            "yuantong",
            "zhongtong",
            "yunda",
            "shentong",
            "ems",
            "jd",
            "youzhengguonei",
            "jtexpress",
            "huitongkuaidi",
            "zhaijisong",
            "debangkuaidi",
            "debangwuliu",
            "youshuwuliu",
        )
    } == {
        "shunfeng": "SF",
        "yuantong": "YTO",
        "zhongtong": "ZTO",
        "yunda": "YUNDA",
        "shentong": "STO",
        "ems": "EMS",
        "jd": "JD",
        "youzhengguonei": "POSTB",
        "jtexpress": "JTSD",
        "huitongkuaidi": "HTKY",
        "zhaijisong": "ZJS",
        "debangkuaidi": "DBKD",
        "debangwuliu": "DBL",
        "youshuwuliu": "UC",
    }
    assert {"jd", "jtexpress"} == carriers.UNVERIFIED_TOP_CODES
    assert carriers.is_known("shunfeng") and not carriers.is_known("SF")


def test_an_unknown_carrier_is_a_typed_error():
    with pytest.raises(carriers.UnknownCarrier) as caught:
        carriers.top_code("pigeonpost")
    assert caught.value.code == "pigeonpost"
    assert isinstance(caught.value, PermanentFailure)


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("shunfeng", "shunfeng"),
        ("SF", "shunfeng"),
        ("顺丰", "shunfeng"),
        (" 顺丰速运 ", "shunfeng"),
        ("sf express", "shunfeng"),
        ("圆通", "yuantong"),
        ("yto", "yuantong"),
        ("EMS", "ems"),
        ("邮政", "youzhengguonei"),
        ("极兔速递", "jtexpress"),
    ],
)
def test_a_carrier_is_found_by_code_taobao_code_or_name(written, code):
    assert carriers.resolve_carrier(written) == code


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("德邦", "carrier '德邦' could be debangkuaidi or debangwuliu"),
        ("顺", "unknown carrier '顺'"),  # one character names nothing
        ("pigeonpost", "unknown carrier 'pigeonpost'"),
    ],
)
def test_an_ambiguous_or_unknown_carrier_name_is_refused(written, message):
    with pytest.raises(carriers.UnknownCarrier, match=message):
        carriers.resolve_carrier(written)


def test_carrier_labels_come_from_the_table(make_app, tmp_path):
    from koudai_flask.i18n import CARRIERS, carrier_label

    assert CARRIERS["jtexpress"] == ("极兔速递", "J&T Express")
    app = make_app(f"sqlite:///{tmp_path / 'k.db'}")
    with app.test_request_context("/?lang=en"):
        assert carrier_label("shunfeng") == "SF Express"
        assert carrier_label("pigeonpost") == "pigeonpost"


# -- the buyer's page ------------------------------------------------------------------------


def test_the_buyers_order_page_shows_the_trace_newest_first(shop):
    number, shipment_id = ship_order()
    client = shop.test_client()
    assert (
        client.post(
            HOOK, data=push_form([*EVENTS, SIGNED], state="3", status="shutdown")
        ).status_code
        == 200
    )
    with client.session_transaction() as session:
        session[GUEST_ORDERS_KEY] = [number]
    page = client.get(f"/shop/orders/{number}?lang=zh_CN").get_data(as_text=True)
    steps = re.findall(r'<li class="kd-tracking-step">(.*?)</li>', page)
    assert [re.sub(r"<[^>]+>", "", step) for step in steps] == [
        f"2026-11-25 18:04 上海市 {SIGNED['context']}",
        f"2026-11-25 06:05 上海市 {EVENTS[2]['context']}",
        f"2026-11-24 21:40 杭州市 {EVENTS[1]['context']}",
        f"2026-11-24 09:15 杭州市 {EVENTS[0]['context']}",
    ]
    assert "圆通速递 " + WAYBILL in page


# -- the buyer's return parcel, tracked like ours ----------------------------------------------


BACK = "YT7001002003004"
RETURN_TO = {"name": "售后组", "phone": "0571-88886666", "address": "杭州市文三路 90 号"}
RETURN_SIGNED = {
    "time": "2026-11-28 15:30:00",
    "context": "【杭州市】快件已签收 签收人: 商家仓库",
    "location": "杭州市",
}


def asked_to_return(waybill: str = WAYBILL) -> str:
    """A shipped order whose buyer asks to send it back: its number."""
    number, _ = ship_order(waybill)
    orders.request_refund(number, reason="尺码不合适", actor="buyer", returning=True)
    returns.agree(number, actor="staff:owner", address=RETURN_TO)
    return number


def return_parcels(number: str) -> list[tuple[str, str, str]]:
    session = current_session()
    session.rollback()
    rows = session.execute(
        select(Shipment.tracking_number, Shipment.status, Shipment.direction)
        .join(Shipment.order)
        .where(Shipment.direction == "return")
        .order_by(Shipment.id)
    ).all()
    session.rollback()
    return [tuple(row) for row in rows]


def topics(topic: str) -> list[dict[str, Any]]:
    session = current_session()
    session.rollback()
    found = [
        event.payload
        for event in session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        )
    ]
    session.rollback()
    return found


def test_a_return_parcel_is_subscribed_and_its_signed_push_is_told_not_delivered(
    shop: Flask, sandbox: Kuaidi100Sandbox, live: LiveServer
) -> None:
    number = asked_to_return()
    returns.send_back(number, carrier="yuantong", tracking_number=BACK)
    assert return_parcels(number) == [(BACK, "shipped", "return")]
    subscription = sandbox.subscriptions[BACK]
    assert (subscription.company, subscription.callback_url) == ("yuantong", live.url + HOOK)

    assert sandbox.push(BACK, EVENTS, state="0").json()["result"] is True
    parcel_id = current_session().scalar(
        select(Shipment.id).where(Shipment.tracking_number == BACK)
    )
    assert len(stored_events(parcel_id)) == 3
    assert topics("order.return_arrived") == []

    response = sandbox.push(BACK, [*EVENTS, RETURN_SIGNED], state="3", status="shutdown")
    assert response.json() == {"result": True, "returnCode": "200", "message": "成功"}
    assert return_parcels(number) == [(BACK, "delivered", "return")]
    assert order_status(number) == "refunding"  # staff refund it; the parcel does not
    session = current_session()
    arrived = session.scalars(
        select(OrderEvent).where(OrderEvent.note.startswith("return arrived"))
    ).all()
    assert [(e.actor, e.from_status, e.to_status, e.step) for e in arrived] == [
        ("kuaidi100", "refunding", "refunding", "return_arrived")
    ]
    [payload] = topics("order.return_arrived")
    assert (payload["number"], payload["carrier"], payload["tracking_number"]) == (
        number,
        "yuantong",
        BACK,
    )
    order = order_states.get_order(session, number)
    assert order.open_refund_request["return_waybill"] == {
        "carrier": "yuantong",
        "tracking_number": BACK,
        "status": "delivered",
        "delivered_at": utc("2026-11-28 07:30:00"),
    }
    session.rollback()

    # The push replayed tells nothing twice.
    sandbox.push(BACK, [*EVENTS, RETURN_SIGNED], state="3", status="shutdown")
    assert len(topics("order.return_arrived")) == 1
    assert order_status(number) == "refunding"


def test_a_corrected_waybill_replaces_the_one_before(shop: Flask) -> None:
    number = asked_to_return()
    returns.send_back(number, carrier="yuantong", tracking_number="YT0000000001")
    logistics.record_tracking("yuantong", "YT0000000001", events=[], state="0", source="test")
    returns.send_back(number, carrier="zhongtong", tracking_number=BACK)
    returns.send_back(number, carrier="zhongtong", tracking_number=BACK)  # the same again
    assert return_parcels(number) == [(BACK, "shipped", "return")]
    session = current_session()
    assert (
        session.scalar(select(Shipment).where(Shipment.tracking_number == "YT0000000001")) is None
    )
    session.rollback()
    # Kuaidi100 may still push the first waybill: accepted, logged, nothing stored.
    with pytest.raises(NotFound, match="no shipment yuantong YT0000000001"):
        logistics.record_tracking("yuantong", "YT0000000001", events=[], state="3", source="t")
    order = order_states.get_order(current_session(), number)
    assert order.open_refund_request["return_waybill"]["carrier"] == "zhongtong"


@pytest.mark.parametrize(
    ("waybill", "reason"),
    [(WAYBILL, "return_waybill_ours"), ("YT5550001112", "tracking_taken")],
)
def test_a_waybill_already_on_a_parcel_is_refused_and_nothing_is_written(
    shop: Flask, waybill: str, reason: str
) -> None:
    other = asked_to_return("YT4440001112")
    returns.send_back(other, carrier="yuantong", tracking_number="YT5550001112")
    number = asked_to_return()
    session = current_session()
    events_before = session.scalar(select(OrderEvent.id).order_by(OrderEvent.id.desc()).limit(1))
    session.rollback()
    with pytest.raises(ValidationError) as refused:
        returns.send_back(number, carrier="yuantong", tracking_number=waybill)
    assert refused.value.reason == reason
    session = current_session()
    session.rollback()
    assert (
        session.scalar(select(OrderEvent.id).order_by(OrderEvent.id.desc()).limit(1))
        == events_before
    )
    assert return_parcels(number) == [("YT5550001112", "shipped", "return")]  # the other's


def test_a_return_parcel_on_the_way_does_not_keep_the_order_from_delivery(shop: Flask) -> None:
    number = asked_to_return()
    returns.send_back(number, carrier="yuantong", tracking_number=BACK)
    orders.decline_refund(number, reason="已超过七天无理由退货期限", actor="staff:owner")
    assert order_status(number) == "shipped"
    update = logistics.record_tracking(
        "yuantong", WAYBILL, events=[], state="3", source="kuaidi100-poll"
    )
    assert update.order_delivered is True
    assert order_status(number) == "delivered"
    # The declined return's parcel, signed for later, tells nothing: no request waits on it.
    late = logistics.record_tracking("yuantong", BACK, events=[], state="3", source="t")
    assert (late.shipment_delivered, late.order_delivered) == (True, False)
    assert topics("order.return_arrived") == []
    assert order_status(number) == "delivered"


def test_the_buyer_and_staff_see_where_the_return_parcel_is(
    make_app: Any, database_url: str, sandbox: Kuaidi100Sandbox, live: LiveServer
) -> None:
    from koudai_flask.services import staff
    from tests.test_admin import PASSWORD, login

    app = _tracking_app(make_app, database_url, sandbox, live)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        number = asked_to_return()
        returns.send_back(number, carrier="yuantong", tracking_number=BACK)
    client = app.test_client()
    with client.session_transaction() as session:
        session[GUEST_ORDERS_KEY] = [number]
    page = client.get(f"/shop/orders/{number}?lang=zh_CN").get_data(as_text=True)
    assert "运输中。" in page
    assert 'id="return-tracking"' not in page
    assert 'id="return-form"' in page and 'id="withdraw-refund"' in page

    with app.app_context():
        logistics.record_tracking(
            "yuantong",
            BACK,
            events=logistics_checkpoints([*EVENTS, RETURN_SIGNED]),
            state="3",
            source="t",
        )
    page = client.get(f"/shop/orders/{number}?lang=zh_CN").get_data(as_text=True)
    status = re.search(r'<span class="kd-return-status" data-status="delivered">(.*?)</span>', page)
    assert status is not None
    assert re.sub(r"<[^>]+>", "", status.group(1)) == "已签收 2026-11-28 15:30"
    trace = re.search(r'<ol class="kd-timeline kd-tracking" id="return-tracking">(.*?)</ol>', page)
    assert trace is not None
    assert re.sub(r"<[^>]+>", "", trace.group(1).split("</li>")[0]) == (
        f"2026-11-28 15:30 杭州市 {RETURN_SIGNED['context']}"
    )
    # The goods are at the shop: the buyer can no longer change the waybill or withdraw.
    assert 'id="return-form"' not in page and 'id="withdraw-refund"' not in page
    # The parcel we sent is under "delivery"; the return is not.
    delivery = page.split('id="tracking"')[1]
    assert WAYBILL in delivery and BACK not in delivery

    staff_client = login(app, "owner")
    admin = staff_client.get(f"/shop-admin/orders/{number}?lang=zh_CN").get_data(as_text=True)
    assert 'data-status="delivered">已签收 <time' in admin
    assert 'id="restock" checked' in admin  # the parcel came back: the form says so already
    found = staff_client.get(f"/shop-admin/orders?tracking_number={BACK}").get_data(as_text=True)
    assert number in found
    # The dashboard counts the requests whose goods are back, linking to just those.
    home = staff_client.get("/shop-admin/?lang=zh_CN").get_data(as_text=True)
    assert re.search(r'<dd id="returns-arrived"><a href="[^"]*returns=arrived[^"]*">1</a>', home)
    listed = staff_client.get("/shop-admin/orders?returns=arrived").get_data(as_text=True)
    assert f'data-number="{number}"' in listed
    every = staff_client.get("/shop-admin/orders?lang=zh_CN").get_data(as_text=True)
    row = every.split(f'data-number="{number}"')[1].split("</tr>")[0]
    assert '<small class="kd-muted kd-return-arrived">退货已签收</small>' in row


def logistics_checkpoints(events: list[dict[str, str]]) -> list[Any]:
    from koudai_flask.connectors.logistics.kuaidi100 import TrackingCheckpoint, parse_time

    return [
        TrackingCheckpoint(parse_time(e["time"]), e["context"], e["location"], "") for e in events
    ]


def test_staff_are_told_when_the_return_parcel_is_signed_for(
    make_app: Any, database_url: str
) -> None:
    from koudai_flask.services import catalog, staff
    from tests.test_staff_alerts import PASSWORD

    smtp = SmtpServer()
    try:
        app = make_app(
            database_url, KOUDAI_MAIL=mail_settings(smtp), SERVER_NAME="shop.example.com"
        )
        with app.app_context():
            catalog.create_product(
                title="Oxford shirt", skus=[{"code": "SHIRT-W", "price": 12900, "stock": 10}]
            )
            staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
            staff.grant("staff:wh@shop.cn", "warehouse", email="wh@shop.cn", password=PASSWORD)
            number = asked_to_return()
            returns.send_back(number, carrier="yuantong", tracking_number=BACK)
            before = len(smtp.state.received)
            logistics.record_tracking("yuantong", BACK, events=[], state="3", source="t")
            mails = smtp.state.received[before:]
            assert [mail.rcpt_tos for mail in mails] == [["owner@shop.cn"]]
            message = mails[0].message
            assert message["Subject"] == f"退货已签收：订单 {number}"
            text = message.get_body(("plain",)).get_content()
            assert f"订单 {number} 的退货（圆通速递，运单号 {BACK}）已签收。" in text
            assert f"http://shop.example.com/shop-admin/orders/{number}" in text
            # Replayed, the parcel is already delivered: nobody is told twice.
            logistics.record_tracking("yuantong", BACK, events=[], state="3", source="t")
            assert len(smtp.state.received) == before + 1
    finally:
        smtp.stop()


def test_tracking_events_of_a_replaced_waybill_go_with_it(shop: Flask) -> None:
    number = asked_to_return()
    returns.send_back(number, carrier="yuantong", tracking_number="YT0000000009")
    first = logistics.record_tracking(
        "yuantong", "YT0000000009", events=logistics_checkpoints(EVENTS), state="0", source="t"
    )
    assert len(stored_events(first.shipment_id)) == 3
    returns.send_back(number, carrier="yuantong", tracking_number=BACK)
    session = current_session()
    session.rollback()
    left = session.scalars(
        select(TrackingEvent.id).where(TrackingEvent.shipment_id == first.shipment_id)
    ).all()
    assert left == []


def test_once_the_return_arrived_the_buyer_can_neither_correct_nor_withdraw(shop: Flask) -> None:
    number = asked_to_return()
    returns.send_back(number, carrier="yuantong", tracking_number=BACK)
    logistics.record_tracking("yuantong", BACK, events=[], state="3", source="t")
    session = current_session()
    session.rollback()
    events_before = session.scalar(select(func.count(OrderEvent.id)))
    session.rollback()
    with pytest.raises(ValidationError) as refused:
        returns.send_back(number, carrier="yuantong", tracking_number="YT0000000007")
    assert refused.value.reason == "return_arrived"
    with pytest.raises(ValidationError) as refused:
        orders.withdraw_refund(number, actor="buyer")
    assert refused.value.reason == "return_arrived"
    session = current_session()
    session.rollback()
    assert session.scalar(select(func.count(OrderEvent.id))) == events_before
    assert return_parcels(number) == [(BACK, "delivered", "return")]
    assert order_status(number) == "refunding"
    # Staff still answer it: refunded with the parcel back, or declined.
    orders.decline_refund(number, reason="商品已使用，不支持退货", actor="staff:owner")
    assert order_status(number) == "shipped"


def test_goods_arrived_counts_the_request_waiting_now_only(shop: Flask) -> None:
    def waiting_with_goods() -> list[str]:
        session = current_session()
        session.rollback()
        found = list(session.scalars(select(Order.number).where(returns.goods_arrived())))
        session.rollback()
        return found

    number = asked_to_return()
    other = asked_to_return("YT4440001113")  # a return still on its way
    returns.send_back(other, carrier="yuantong", tracking_number="YT5550001113")
    returns.send_back(number, carrier="yuantong", tracking_number=BACK)
    assert waiting_with_goods() == []
    logistics.record_tracking("yuantong", BACK, events=[], state="3", source="t")
    assert waiting_with_goods() == [number]
    orders.decline_refund(number, reason="商品已使用，不支持退货", actor="staff:owner")
    assert waiting_with_goods() == []
    # Asked again: the parcel that came back for the first request is not this one's.
    orders.request_refund(number, reason="还是想退", actor="buyer", returning=True)
    assert waiting_with_goods() == []
    returns.agree(number, actor="staff:owner", address=RETURN_TO)
    assert waiting_with_goods() == []


def test_agreeing_to_a_return_waits_for_the_order_s_lock_on_postgresql(
    make_app, postgres_url, sandbox, live
):
    """Two clicks on "agree" (or a waybill given meanwhile) apply one after the other: while
    another transaction holds the order's row, agreeing waits (here: gives up after 300 ms),
    writing nothing; once it is released, it goes through, once. The holder takes FOR NO
    KEY UPDATE, which the timeline entry's foreign-key check (KEY SHARE) does not wait on:
    only the order lock taken on purpose does."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    assert postgres_url.endswith("synchronous_commit%3Doff")  # options come last
    app = _tracking_app(make_app, postgres_url + "%20-clock_timeout%3D300", sandbox, live)
    with app.app_context():
        number, _ = ship_order()
        orders.request_refund(number, reason="尺码不合适", actor="buyer", returning=True)
    holder = create_engine(postgres_url)
    try:
        with holder.connect() as connection, connection.begin():
            connection.execute(
                text("SELECT id FROM koudai_order WHERE number = :n FOR NO KEY UPDATE"),
                {"n": number},
            )
            with app.app_context(), pytest.raises(OperationalError, match="lock timeout"):
                returns.agree(number, actor="staff:owner", address=RETURN_TO)
        with app.app_context():
            assert topics("order.return_agreed") == []
            returns.agree(number, actor="staff:owner", address=RETURN_TO)
            assert len(topics("order.return_agreed")) == 1
    finally:
        holder.dispose()
