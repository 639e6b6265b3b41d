"""The back office: the permission matrix, delegation, channel scope, audit, CSV."""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, insert, select

from koudai_flask.blueprints.admin import PUBLIC_VIEWS, VIEW_PERMISSIONS
from koudai_flask.errors import PermissionDenied, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, Order, Payment, Shipment, StockMovement
from koudai_flask.models.base import utcnow
from koudai_flask.services import (
    backoffice,
    catalog,
    channels,
    customers,
    inventory,
    order_csv,
    order_search,
    orders,
    staff,
)
from koudai_flask.services.staff import ROLES
from tests.helpers import fresh_sqlite_url

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PASSWORD = "correct-horse-battery"


def build(make_app: Any, url: str) -> tuple[Flask, dict[str, str]]:
    """An app with a member of every built-in role, and orders on three channels."""
    app = make_app(url, KOUDAI_OFFLINE_PAYMENT=True)
    numbers: dict[str, str] = {}
    with app.app_context():
        for role in ROLES:
            staff.grant(f"staff:{role}@shop.cn", role, email=f"{role}@shop.cn", password=PASSWORD)
        channels.create("taobao", "tb-a", settings={})
        channels.create("taobao", "tb-b", settings={})
        staff.grant(
            "staff:agent@shop.cn",
            "customer_service",
            channels=["tb-a"],
            email="agent@shop.cn",
            password=PASSWORD,
        )
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 50}])
        for name, channel in (("web", "web"), ("tb-a", "tb-a"), ("tb-b", "tb-b")):
            extra = {} if channel == "web" else {"external_id": f"T-{name}"}
            line: dict[str, Any] = {"sku": "KET", "quantity": 1}
            if channel != "web":
                line["unit_price"] = 9900
            buyer = customers.register(
                password="buyer-pass-1", email=f"{name}@buyers.cn", name=f"Buyer {name}"
            )
            order = orders.place(
                channel=channel,
                lines=[line],
                customer=buyer,
                address={"name": f"Buyer {name}", "phone": "13800138000", "street": "1 Road"},
                **extra,
            )
            orders.mark_paid(
                order.number, amount=order.total, transaction_id=f"x-{name}", provider="offline"
            )
            numbers[name] = order.number
        numbers["pending"] = orders.place(
            channel="web", lines=[{"sku": "KET", "quantity": 1}]
        ).number
    return app, numbers


def login(app: Flask, who: str) -> Any:
    client = app.test_client()
    page = client.get("/shop-admin/login").get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    response = client.post(
        "/shop-admin/login",
        data={"email": f"{who}@shop.cn", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302, who
    client.csrf = token  # type: ignore[attr-defined]
    return client


@pytest.fixture
def sqlite_url(tmp_path: Any, sqlite_template: Any) -> str:
    return fresh_sqlite_url(sqlite_template, tmp_path, "admin.db")


def admin_rules(app: Flask) -> list[Any]:
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("koudai_admin.")]


def test_a_visitor_is_sent_to_sign_in_and_back_to_the_page_asked_for(make_app, sqlite_url):
    app, _ = build(make_app, sqlite_url)
    client = app.test_client()
    assert client.get("/shop-admin/").headers["Location"] == "/shop-admin/login?next=/shop-admin/"
    asked = client.get("/shop-admin/orders?status=paid")
    assert asked.headers["Location"] == "/shop-admin/login?next=/shop-admin/orders?status%3Dpaid"
    page = client.get(asked.headers["Location"]).get_data(as_text=True)
    signed_in = client.post(
        asked.headers["Location"],
        data={"email": "owner@shop.cn", "password": PASSWORD, "csrf_token": TOKEN.search(page)[1]},
    )
    assert signed_in.headers["Location"] == "/shop-admin/orders?status=paid"


def test_the_staff_login_speaks_the_staff_language_and_refuses_a_wrong_password(
    make_app, sqlite_url
):
    app, _ = build(make_app, sqlite_url)
    for lang, title, wrong, short in (
        ("", "员工登录", "邮箱或密码错误。", "请输入邮箱和至少 8 位的密码。"),
        ("?lang=en", "Staff login", "Wrong email or password.", "Enter your email and a password"),
    ):
        client = app.test_client()
        page = client.get(f"/shop-admin/login{lang}").get_data(as_text=True)
        assert f"<h1>{title}</h1>" in page
        token = TOKEN.search(page)[1]
        refused = client.post(
            "/shop-admin/login",
            data={"email": "owner@shop.cn", "password": "not-the-password", "csrf_token": token},
        )
        assert refused.status_code == 401 and wrong in refused.get_data(as_text=True)
        invalid = client.post(
            "/shop-admin/login", data={"email": "owner", "password": "x", "csrf_token": token}
        )
        assert invalid.status_code == 400 and short in invalid.get_data(as_text=True)
        assert client.get("/shop-admin/").status_code == 302  # still signed out


def test_every_admin_view_declares_its_permission(make_app, sqlite_url):
    app, _ = build(make_app, sqlite_url)
    missing = [
        rule.endpoint
        for rule in admin_rules(app)
        if app.view_functions[rule.endpoint].__name__ not in VIEW_PERMISSIONS
        and app.view_functions[rule.endpoint].__name__ not in PUBLIC_VIEWS
    ]
    assert missing == []
    assert len(admin_rules(app)) >= 10


# GET views that answer other than 200 when called bare: a callback with no OAuth state.
BARE_GET_STATUS = {
    "channel_oauth_callback": 400,
    "onboarding_taobao_callback": 400,
    "stock_labels": 303,  # nothing ticked: back to the stock list, saying so
    # The order pages' bare POSTs, registered before it, refunded the order by then: its
    # address can no longer change, and the page sends back to the order saying so.
    "order_address_edit": 303,
}


def _names_no_object(rule: Any) -> bool:
    """Whether the rule's path names an object the test shop does not have (id 999999)."""
    return any(name not in KNOWN_VALUES for name in rule.arguments)


KNOWN_VALUES = ("number", "notification_id", "customer_id", "product_id", "code", "event")
KNOWN_VALUES += ("channel", "name")


def _url_for_rule(rule: Any, numbers: dict[str, str]) -> str:
    values = {
        "number": numbers["web"],
        "notification_id": 1,
        "customer_id": 1,
        "product_id": 1,
        "code": "KET",
        "event": "paid",
        "channel": "sms",
        "name": "tb-a",
    }
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(values.get(name, 999999)), path)
    return path


@pytest.mark.parametrize("role", list(ROLES))
def test_permission_matrix(make_app, sqlite_url, role):
    """Every admin endpoint × this role: 403 exactly when the role lacks the permission."""
    app, numbers = build(make_app, sqlite_url)
    client = login(app, role)
    held = ROLES[role][1]
    checked = 0
    wrong: list[tuple[str, int, int]] = []
    for rule in admin_rules(app):
        name = app.view_functions[rule.endpoint].__name__
        if name in PUBLIC_VIEWS:
            continue
        needed = VIEW_PERMISSIONS[name]
        allowed = needed == "" or needed in held
        path = _url_for_rule(rule, numbers)
        if "GET" in rule.methods:
            status = client.get(path).status_code
            expected = BARE_GET_STATUS.get(name, 404 if _names_no_object(rule) else 200)
            expected = expected if allowed else 403
            if status != expected:
                wrong.append((path, expected, status))
        else:
            with app.app_context():
                before = get_state().session.scalar(select(func.count()).select_from(AuditEntry))
            status = client.post(path, data={"csrf_token": client.csrf}).status_code
            if allowed and status == 403:
                wrong.append((path, 0, status))
            elif not allowed:
                if status != 403:
                    wrong.append((path, 403, status))
                with app.app_context():
                    after = get_state().session.scalar(select(func.count()).select_from(AuditEntry))
                assert after == before, path  # nothing changed
        checked += 1
    assert wrong == [], "\n".join(map(str, wrong))
    assert checked >= 10


def test_a_role_without_refund_cannot_refund_by_any_route(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    client = login(app, "warehouse")
    assert (
        client.post(
            f"/shop-admin/orders/{numbers['web']}/refund", data={"csrf_token": client.csrf}
        ).status_code
        == 403
    )
    with app.app_context(), pytest.raises(PermissionDenied):
        backoffice.refund("staff:warehouse@shop.cn", numbers["web"], amount=None, reason="x")
    with app.app_context():
        assert (
            get_state().session.scalar(select(Order.status).where(Order.number == numbers["web"]))
            == "paid"
        )


def test_delegation_cannot_escalate(make_app, sqlite_url):
    app, _ = build(make_app, sqlite_url)
    with app.app_context():
        owner, admin = "staff:owner@shop.cn", "staff:admin@shop.cn"
        with pytest.raises(PermissionDenied):
            staff.grant("u-new", "owner", granted_by=admin)  # upwards
        with pytest.raises(PermissionDenied):
            staff.grant("u-new", "admin", granted_by=admin)  # sideways
        with pytest.raises(PermissionDenied):
            staff.grant(admin, "viewer", granted_by=admin)  # oneself
        with pytest.raises(PermissionDenied):
            staff.grant("u-new", "viewer", granted_by="staff:customer_service@shop.cn")
        staff.create_role(
            "supervisor",
            ["orders.view", "orders.ship", "customers.view", "staff.manage"],
            rank=60,
            created_by=owner,
        )
        staff.grant("u-sup", "supervisor", granted_by=admin)
        staff.grant("u-wh", "warehouse", granted_by=admin)
        with pytest.raises(PermissionDenied, match="lack"):
            staff.grant("u-new", "warehouse", granted_by="u-sup")  # stock.adjust: not held
        with pytest.raises(PermissionDenied):
            staff.create_role("boss", ["catalog.edit"], rank=50, created_by="u-sup")
        staff.grant("u-v", "viewer", granted_by="u-sup")
        with pytest.raises(PermissionDenied):
            staff.revoke("u-sup", revoked_by="u-v")
        staff.grant("u-scoped", "admin", channels=["tb-a"])
        with pytest.raises(PermissionDenied, match="channels"):
            staff.grant("u-x", "viewer", channels=["tb-b"], granted_by="u-scoped")
        with pytest.raises(PermissionDenied, match="channels"):
            staff.grant("u-x", "viewer", granted_by="u-scoped")  # unscoped = every channel
        staff.grant("u-x", "viewer", channels=["tb-a"], granted_by="u-scoped")
        assert staff.can("u-x", "orders.view", channel="tb-a")
        assert not staff.can("u-x", "orders.view", channel="tb-b")
        actions = (
            get_state()
            .session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("staff.%")))
            .all()
        )
        assert actions.count("staff.create_role") == 1


def test_channel_scope_isolation(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    agent = login(app, "agent")
    page = agent.get("/shop-admin/orders").get_data(as_text=True)
    assert re.findall(r'data-number="([^"]+)"', page) == [numbers["tb-a"]]
    assert agent.get(f"/shop-admin/orders/{numbers['web']}").status_code == 404
    assert agent.get(f"/shop-admin/orders/{numbers['tb-a']}").status_code == 200
    response = agent.post(
        f"/shop-admin/orders/{numbers['tb-b']}/cancel", data={"csrf_token": agent.csrf}
    )
    assert response.status_code == 404
    with app.app_context():
        assert (
            order_search.order_query(
                staff.get_member("staff:agent@shop.cn"), order_search.OrderFilters()
            ).whereclause
            is not None
        )


def test_customer_scope_isolation(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    agent = login(app, "agent")
    page = agent.get("/shop-admin/customers").get_data(as_text=True)
    with app.app_context():
        session = get_state().session
        tb_a = session.scalar(select(Order.customer_id).where(Order.number == numbers["tb-a"]))
        web = session.scalar(select(Order.customer_id).where(Order.number == numbers["web"]))
    assert re.findall(r'data-id="(\d+)"', page) == [str(tb_a)]
    assert agent.get(f"/shop-admin/customers/{web}").status_code == 404
    detail = agent.get(f"/shop-admin/customers/{tb_a}").get_data(as_text=True)
    assert re.findall(r'data-number="([^"]+)"', detail) == [numbers["tb-a"]]
    owner = login(app, "owner")
    everyone = owner.get("/shop-admin/customers").get_data(as_text=True)
    assert len(re.findall(r'data-id="(\d+)"', everyone)) == 3


def test_ship_from_the_order_page_is_audited_and_shown_to_the_buyer(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    client = login(app, "warehouse")
    number = numbers["web"]
    response = client.post(
        f"/shop-admin/orders/{number}/ship",
        data={"csrf_token": client.csrf, "carrier": "zhongtong", "tracking_number": "ZT100200"},
    )
    assert response.status_code == 303
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'data-status="shipped"' in page and "ZT100200" in page
    with app.app_context():
        entry = get_state().session.scalar(
            select(AuditEntry).where(AuditEntry.action == "orders.ship")
        )
        assert entry.actor == "staff:staff:warehouse@shop.cn"
        assert entry.before["status"] == "paid" and entry.after["status"] == "shipped"
        assert entry.after["tracking_number"] == "ZT100200"


def test_a_tracking_number_on_another_parcel_is_refused_in_the_staff_language(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    client = login(app, "warehouse")
    with app.app_context():
        other = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}])
        orders.mark_paid(other.number, amount=other.total, transaction_id="p9", provider="offline")
        other_number = other.number
    form = {"csrf_token": client.csrf, "carrier": "zhongtong", "tracking_number": "ZT700007"}
    assert client.post(f"/shop-admin/orders/{numbers['web']}/ship", data=form).status_code == 303
    refused = client.post(
        f"/shop-admin/orders/{other_number}/ship", data=form, follow_redirects=True
    ).get_data(as_text=True)
    assert "该快递公司的运单号 ZT700007 已用于其他包裹。" in refused
    with app.app_context():
        status = get_state().session.scalar(
            select(Order.status).where(Order.number == other_number)
        )
        assert status == "paid"


def test_partial_shipment_keeps_the_order_paid(make_app, sqlite_url):
    app, _ = build(make_app, sqlite_url)
    with app.app_context():
        order = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 3}])
        orders.mark_paid(order.number, amount=order.total, transaction_id="p3", provider="offline")
        backoffice.ship(
            "staff:owner@shop.cn",
            order.number,
            carrier="yunda",
            tracking_number="YD100001",
            lines={"KET": 2},
        )
        session = get_state().session
        assert session.scalar(select(Order.status).where(Order.id == order.id)) == "paid"
        backoffice.ship(
            "staff:owner@shop.cn", order.number, carrier="yunda", tracking_number="YD200002"
        )
        assert session.scalar(select(Order.status).where(Order.id == order.id)) == "shipped"
        assert (
            session.scalar(
                select(func.count()).select_from(Shipment).where(Shipment.order_id == order.id)
            )
            == 2
        )


def test_notes_cancel_and_refund_through_the_offline_provider(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    client = login(app, "customer_service")
    number = numbers["web"]
    client.post(
        f"/shop-admin/orders/{number}/note",
        data={"csrf_token": client.csrf, "body": "buyer called"},
    )
    client.post(
        f"/shop-admin/orders/{number}/refund", data={"csrf_token": client.csrf, "amount": "10.00"}
    )
    client.post(
        f"/shop-admin/orders/{numbers['pending']}/cancel",
        data={"csrf_token": client.csrf, "reason": "duplicate"},
    )
    with app.app_context():
        session = get_state().session
        web = session.scalar(select(Order).where(Order.number == number))
        assert (web.status, web.refunded_amount) == ("paid", 1000)
        assert (
            session.scalar(select(Order.status).where(Order.number == numbers["pending"]))
            == "cancelled"
        )
        actions = sorted(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.action.like("orders.%"))
            ).all()
        )
        assert actions == ["orders.cancel", "orders.note", "orders.refund"]
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert "buyer called" in page


def test_ship_from_csv_reports_each_row(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    text = "\n".join(
        [
            "number,carrier,tracking_number",
            f"{numbers['web']},shunfeng,SF001",
            f"{numbers['tb-a']},yuantong,YT001",
            f"{numbers['tb-a']},yuantong,YT001",
            f"{numbers['pending']},shunfeng,SF002",
            "KDNOPE,shunfeng,SF003",
            f"{numbers['tb-b']},shunfeng",
        ]
    )
    with app.app_context():
        results = order_csv.ship_from_csv("staff:warehouse@shop.cn", text)
        assert [(r.row, r.ok) for r in results] == [
            (2, True),
            (3, True),
            (4, False),
            (5, False),
            (6, False),
            (7, False),
        ]
        assert results[2].message == "duplicate row"
        assert "cannot ship" in results[3].message
        assert "unknown order" in results[4].message
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(Shipment)) == 2
        assert session.scalar(select(Order.status).where(Order.number == numbers["tb-b"])) == "paid"
    client = login(app, "warehouse")
    from io import BytesIO

    page = client.post(
        "/shop-admin/orders/ship-csv",
        data={
            "csrf_token": client.csrf,
            "file": (BytesIO(f"{numbers['tb-b']},ems,E1000001\n".encode()), "ship.csv"),
        },
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "1 rows shipped, 0 refused." in page or "1 行已发货" in page
    assert "<td>已发货：EMS E1000001</td>" in page
    refused = client.post(
        "/shop-admin/orders/ship-csv",
        data={
            "csrf_token": client.csrf,
            "file": (
                BytesIO(
                    f"KDNOPE,ems,E2\n{numbers['web']},ems,E3000003\n{numbers['web']},ems,E3000003\n".encode()
                ),
                "ship.csv",
            ),
        },
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "没有订单 KDNOPE。" in refused
    assert "与前面某行是同一个包裹。" in refused


def test_an_order_action_its_state_refuses_is_said_in_the_staff_language(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    client = login(app, "owner")
    number = numbers["pending"]
    client.post(f"/shop-admin/orders/{number}/cancel", data={"csrf_token": client.csrf})
    response = client.post(
        f"/shop-admin/orders/{number}/ship",
        data={"csrf_token": client.csrf, "carrier": "shunfeng", "tracking_number": "SF900009"},
    )
    assert response.status_code == 303
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert f"订单 {number} 当前为「已取消」，不能发货。" in page
    with app.app_context():
        assert get_state().session.scalar(select(func.count()).select_from(Shipment)) == 0


def test_money_that_came_after_a_cancel_shows_on_the_order_page_with_its_refund(
    make_app, sqlite_url
):
    from koudai_flask.payments.base import PaymentNotice
    from koudai_flask.services.payments import apply_notice

    app, numbers = build(make_app, sqlite_url)
    number = numbers["pending"]
    with app.app_context():
        total = orders.cancel(number, reason="buyer cancelled").total
        late = PaymentNotice("offline", number, "LATE-1", total, True)
        assert apply_notice(late).status == "cancelled"
        assert apply_notice(late).status == "cancelled"  # delivered again: nothing more
        other = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}]).number
        orders.cancel(other, reason="buyer cancelled")
        with pytest.raises(ValidationError, match=f"LATE-1 already paid order {number}"):
            apply_notice(PaymentNotice("offline", other, "LATE-1", total, True))
        order = get_state().session.scalar(select(Order).where(Order.number == number))
        assert (order.paid_amount, order.refunded_amount, len(order.refunds)) == (total, total, 1)
    page = login(app, "owner").get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert "LATE-1" in page and "paid after the order was cancelled" in page


def test_a_refund_after_a_cancel_that_the_provider_refused_is_shown_until_it_goes_through(
    make_app, sqlite_url, monkeypatch
):
    from koudai_flask.jobs.outbox import relay_outbox
    from koudai_flask.payments.base import PaymentNotice, RefundResult
    from koudai_flask.payments.offline import OfflineProvider
    from koudai_flask.services.payments import apply_notice

    app, numbers = build(make_app, sqlite_url)
    number = numbers["pending"]
    client = login(app, "owner")
    refusing = lambda self, *args, **kwargs: RefundResult("", "failed")  # noqa: E731
    monkeypatch.setattr(OfflineProvider, "refund", refusing)
    with app.app_context():
        total = orders.cancel(number, reason="buyer cancelled").total
        apply_notice(PaymentNotice("offline", number, "LATE-2", total, True))
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert f"这笔订单取消后又收到了付款：¥{total // 100}.00 尚未退回。" in page
    monkeypatch.undo()
    with app.app_context():
        assert relay_outbox() == 1  # the refund is tried again, and goes through
    page = client.get(f"/shop-admin/orders/{number}").get_data(as_text=True)
    assert 'id="money-held"' not in page


def test_bulk_cancel_cancels_the_unpaid_and_counts_the_rest(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    client = login(app, "owner")
    ticked = [numbers["pending"], numbers["web"], numbers["tb-a"], "KDNOPE"]
    with app.app_context():
        held = inventory.available("KET")
    refused = client.post(
        "/shop-admin/orders/bulk",
        data={"csrf_token": client.csrf, "action": "ship", "numbers": ticked},
    )
    assert refused.status_code == 400
    response = client.post(
        "/shop-admin/orders/bulk",
        data={"csrf_token": client.csrf, "action": "cancel", "numbers": ticked},
    )
    assert response.status_code == 302
    page = client.get("/shop-admin/orders").get_data(as_text=True)
    assert "已取消 1 个，3 个未能取消。" in page
    with app.app_context():
        session = get_state().session
        found = dict(session.execute(select(Order.number, Order.status)).all())
        assert found[numbers["pending"]] == "cancelled"
        assert found[numbers["web"]] == found[numbers["tb-a"]] == "paid"
        assert inventory.available("KET") == held + 1  # the cancelled order's unit is back


def test_a_chinese_spreadsheet_ships_by_carrier_names(make_app, sqlite_url):
    """Saved by a spreadsheet on a Chinese Windows: GB18030, a Chinese header, carriers by
    the names the warehouse writes."""
    from io import BytesIO

    app, numbers = build(make_app, sqlite_url)
    rows = [
        "订单号,快递公司,快递单号",
        f"{numbers['web']},顺丰,SF100",
        f"{numbers['tb-a']},圆通速递,YT100",
        f"{numbers['tb-b']},德邦,DB100",
        f"{numbers['tb-b']},闪送侠,XX100",
        "KD-NOT-OURS,顺丰,SF200",
    ]
    client = login(app, "warehouse")
    page = client.post(
        "/shop-admin/orders/ship-csv",
        data={
            "csrf_token": client.csrf,
            "file": (BytesIO("\r\n".join(rows).encode("gb18030")), "发货.csv"),
        },
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    # Each refusal in the warehouse's language, naming what the row said.
    assert "「德邦」可能是 德邦快递、德邦物流：请写快递公司全称。" in page
    assert "无法识别快递公司「闪送侠」：请写快递公司名称，如 顺丰 或 中通。" in page
    assert "没有订单 KD-NOT-OURS。" in page
    assert "没有订单 订单号" not in page  # the header row is not an order
    with app.app_context():
        shipped = get_state().session.execute(
            select(Order.number, Shipment.carrier, Shipment.tracking_number)
            .join(Shipment, Shipment.order_id == Order.id)
            .order_by(Shipment.id)
        )
        assert [tuple(row) for row in shipped] == [
            (numbers["web"], "shunfeng", "SF100"),
            (numbers["tb-a"], "yuantong", "YT100"),
        ]
        status = select(Order.status).where(Order.number == numbers["tb-b"])
        assert get_state().session.scalar(status) == "paid"


def test_csv_export_of_10000_orders_in_bounded_memory(make_app, database_url):
    app = make_app(database_url)
    with app.app_context():
        staff.grant("staff:boss", "owner")
        engine = get_state().get_engine()
        now = utcnow()
        with engine.begin() as connection:
            connection.execute(
                insert(Order),
                [
                    {
                        "number": f"KDX{n:08d}",
                        "status": "paid",
                        "channel": "web",
                        "request_digest": "",
                        "note": "",
                        "subtotal": 1000 + n,
                        "shipping_fee": 0,
                        "discount": 0,
                        "total": 1000 + n,
                        "created_at": now,
                        "updated_at": now,
                        "address": {"name": "买家", "phone": "13800138000", "street": "x"},
                    }
                    for n in range(10_000)
                ],
            )
        tracemalloc.start()
        size = rows = 0
        for chunk in order_csv.export_orders("staff:boss", order_search.OrderFilters()):
            size += len(chunk.encode())
            rows += chunk.count("\n")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert rows == 10_001
        assert size > 700_000
        # Everything at once would hold 10,000 ORM objects (tens of MB); batches hold 500.
        assert peak < 12 * 1024 * 1024, peak


def test_csv_export_keeps_a_buyers_formula_as_text(make_app, sqlite_url):
    """A buyer's address typed as a formula stays text in the spreadsheet the shop opens."""
    app = make_app(sqlite_url)
    with app.app_context():
        staff.grant("staff:boss", "owner")
        now = utcnow()
        with get_state().get_engine().begin() as connection:
            connection.execute(
                insert(Order),
                [
                    {
                        "number": "KDX00000001",
                        "status": "paid",
                        "channel": "web",
                        "external_id": "@SUM(1)",
                        "request_digest": "",
                        "note": "",
                        "subtotal": 1000,
                        "shipping_fee": 0,
                        "discount": 0,
                        "total": 1000,
                        "created_at": now,
                        "updated_at": now,
                        "address": {
                            "name": '=HYPERLINK("http://x","y")',
                            "phone": "+8613800138000",
                            "street": "-2+3",
                        },
                    }
                ],
            )
        text = "".join(order_csv.export_orders("staff:boss", order_search.OrderFilters()))
    header, row = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    cells = dict(zip(header, row, strict=True))
    assert cells["buyer"] == '\'=HYPERLINK("http://x","y")'
    assert (cells["phone"], cells["address"]) == ("'+8613800138000", "'-2+3")
    assert cells["external_id"] == "'@SUM(1)" and cells["total_yuan"] == "10.00"


def test_stock_and_payments_are_untouched_by_refused_actions(make_app, sqlite_url):
    app, numbers = build(make_app, sqlite_url)
    client = login(app, "viewer")
    with app.app_context():
        session = get_state().session
        movements = session.scalar(select(func.count()).select_from(StockMovement))
        payments_before = session.scalar(select(func.count()).select_from(Payment))
    for action in ("ship", "cancel", "refund"):
        assert (
            client.post(
                f"/shop-admin/orders/{numbers['web']}/{action}", data={"csrf_token": client.csrf}
            ).status_code
            == 403
        )
    with app.app_context():
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(StockMovement)) == movements
        assert session.scalar(select(func.count()).select_from(Payment)) == payments_before
