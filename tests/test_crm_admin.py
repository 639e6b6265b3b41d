"""Segments (saved filters, live counts, CSV) and the CRM pages of the back office."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.errors import PermissionDenied, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, CustomerMerge, CustomerNote, Segment
from koudai_flask.services import channels, identities, segments, staff, tags
from tests.crm_support import add_order

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PASSWORD = "correct-horse-battery"


def test_filters_become_a_rule():
    assert segments.rule_from_filters(
        {
            "tag": 'v"ip',
            "channel": "tb-a",
            "min_spent_yuan": "500",
            "min_rfm_r": "4",
            "last_order_from": "2026-01-01",
            "rule": "order_count > 1 or city == 'x'",
        }
    ) == (
        'tag == "v\\"ip" and channel == "tb-a" and total_spent >= 50000 and rfm_r >= 4 and '
        "last_order_date >= \"2026-01-01\" and (order_count > 1 or city == 'x')"
    )
    with pytest.raises(ValidationError, match="at least one filter"):
        segments.rule_from_filters({})
    with pytest.raises(ValidationError, match="min_orders must be a whole number"):
        segments.rule_from_filters({"min_orders": "-1"})


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Flask:
    app = make_app(database_url)
    with app.app_context():
        for who, role in (("boss", "owner"), ("viewer", "viewer"), ("market", "marketing")):
            staff.grant(f"staff:{who}@shop.cn", role, email=f"{who}@shop.cn", password=PASSWORD)
        channels.create("taobao", "tb-a", settings={})
        channels.create("taobao", "tb-b", settings={})
        staff.grant(
            "staff:agent@shop.cn",
            "customer_service",
            channels=["tb-a"],
            email="agent@shop.cn",
            password=PASSWORD,
        )
        a = identities.link_identity("taobao_nick", "=cmd|calc", name="=HYPERLINK()")
        add_order(a, total=70000, channel="tb-a")
        b = identities.link_identity("taobao_nick", "nick_b", name="Buyer B")
        add_order(b, total=90000, channel="tb-b")
        c = identities.link_identity("web", "user-c", name="Buyer C")
        add_order(c, total=100, channel="web")
        tags.add_tag(a, "vip")
        tags.add_tag(b, "vip")
    app.config["ids"] = {"a": a, "b": b, "c": c}
    return app


def login(app: Flask, who: str) -> Any:
    client = app.test_client()
    token = TOKEN.search(client.get("/shop-admin/login").get_data(as_text=True)).group(1)
    response = client.post(
        "/shop-admin/login",
        data={"email": f"{who}@shop.cn", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    client.csrf = token
    return client


def test_segments_count_live_and_list_their_customers(shop):
    ids = shop.config["ids"]
    with shop.app_context():
        segment = segments.save(
            "staff:boss@shop.cn", {"min_spent_yuan": "600"}, name="Big spenders"
        )
        assert segment.rule == "total_spent >= 60000"
        assert segments.count(segment.id) == 2
        assert segments.customer_ids(segment.id) == sorted([ids["a"], ids["b"]])
        add_order(ids["c"], total=60000)
        assert segments.count(segment.id) == 3  # live, never cached
        with pytest.raises(PermissionDenied):
            segments.save("staff:viewer@shop.cn", {"tag": "vip"}, name="VIP")
        with pytest.raises(ValidationError, match="unknown field"):
            segments.save("staff:boss@shop.cn", {"rule": "spend > 1"}, name="Broken")
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(Segment)) == 1


def test_segment_pages_count_within_the_staff_scope_and_export_csv(shop):
    ids = shop.config["ids"]
    with shop.app_context():
        segment = segments.save("staff:boss@shop.cn", {"tag": "vip"}, name="VIP")
    boss, agent = login(shop, "boss"), login(shop, "agent")
    assert boss.get(f"/shop-admin/customers/segments/{segment.id}").status_code == 200
    page = boss.get("/shop-admin/customers/segments").get_data(as_text=True)
    assert '<td class="kd-count">2</td>' in page
    agent_page = agent.get("/shop-admin/customers/segments").get_data(as_text=True)
    assert '<td class="kd-count">1</td>' in agent_page  # only tb-a's buyer

    csv = boss.get(f"/shop-admin/customers/segments/{segment.id}/export.csv")
    assert csv.status_code == 200
    lines = csv.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == (
        "id,name,phone,email,order_count,total_spent_yuan,last_order_at,rfm,tags,identities"
    )
    rows = sorted(line.split(",") for line in lines[1:])
    assert [r[0] for r in rows] == sorted([str(ids["a"]), str(ids["b"])])
    first = next(r for r in rows if r[0] == str(ids["a"]))
    assert first[1] == "'=HYPERLINK()"  # a formula is written as text
    assert (first[4], first[5], first[7], first[8], first[9]) == (
        "1",
        "700.00",
        "513",
        "vip",
        "taobao_nick",
    )
    agent_csv = agent.get(f"/shop-admin/customers/segments/{segment.id}/export.csv")
    assert agent_csv.status_code == 403  # customer service may not export
    viewer = login(shop, "viewer")
    assert viewer.get(f"/shop-admin/customers/segments/{segment.id}/export.csv").status_code == 403


def test_a_bad_rule_in_the_forms_is_a_422_with_the_message_and_nothing_saved(shop):
    boss = login(shop, "boss")
    response = boss.post(
        "/shop-admin/customers/tags",
        data={"csrf_token": boss.csrf, "name": "big", "kind": "rule", "rule": "spent >= 1"},
    )
    assert response.status_code == 422
    said = "没有名为 spent 的字段（第 1 个字符处）；可用字段见下方说明。"
    assert said in response.get_data(as_text=True)
    response = boss.post(
        "/shop-admin/customers/segments",
        data={"csrf_token": boss.csrf, "name": "S", "rule": "order_count >"},
    )
    assert response.status_code == 422
    assert "order_count 只能与整数比较（第 14 个字符处）。" in response.get_data(as_text=True)
    response = boss.post(
        "/shop-admin/customers/segments?lang=en",
        data={"csrf_token": boss.csrf, "name": "S", "rule": '(tag == "vip"'},
    )
    assert "The rule ends too early: ) should follow." in response.get_data(as_text=True)
    with shop.app_context():
        session = get_state().session
        assert session.scalar(select(func.count()).select_from(Segment)) == 0
        assert tags.find("big") is None


def test_a_rule_tag_saved_in_the_admin_tags_its_customers(shop):
    ids = shop.config["ids"]
    boss = login(shop, "boss")
    response = boss.post(
        "/shop-admin/customers/tags",
        data={
            "csrf_token": boss.csrf,
            "name": "taobao big",
            "kind": "rule",
            "rule": 'channel == "taobao" and total_spent >= 80000',
        },
    )
    assert response.status_code == 303
    with shop.app_context():
        assert tags.tags_of(ids["b"]) == ["taobao big", "vip"]
        assert tags.tags_of(ids["a"]) == ["vip"]
    page = boss.get("/shop-admin/customers?tag=taobao+big").get_data(as_text=True)
    assert f'data-id="{ids["b"]}"' in page
    assert f'data-id="{ids["a"]}"' not in page


def test_the_customer_page_shows_the_profile(shop):
    ids = shop.config["ids"]
    boss = login(shop, "boss")
    page = boss.get(f"/shop-admin/customers/{ids['b']}").get_data(as_text=True)
    assert 'id="order-count">1<' in page
    assert "R5 F1 M3" in page
    assert 'data-tag="vip"' in page
    assert 'data-kind="taobao_nick"' in page
    assert 'id="customer-addresses"' not in page  # no saved address: no section


def test_the_customer_page_shows_the_saved_addresses_default_first(shop):
    from koudai_flask.services import customers

    ids = shop.config["ids"]
    with shop.app_context():
        home = {"name": "李雷", "phone": "13800138000", "province": "浙江省"}
        customers.add_address(ids["b"], **home, street="文三路 1 号")
        newer = customers.add_address(ids["b"], **home, street="龙井路 2 号", is_default=True)
    page = login(shop, "boss").get(f"/shop-admin/customers/{ids['b']}").get_data(as_text=True)
    section = page[page.index('id="customer-addresses"') :]
    rows = re.findall(r'<tr data-id="(\d+)">(.*?)</tr>', section)
    assert [int(row_id) for row_id, _ in rows[:2]] == [newer.id, newer.id - 1]
    assert "浙江省龙井路 2 号" in rows[0][1] and "默认" in rows[0][1]
    assert "默认" not in rows[1][1]


def test_staff_actions_on_a_customer_need_csrf_permission_and_scope(shop):
    ids = shop.config["ids"]
    boss, viewer, agent = login(shop, "boss"), login(shop, "viewer"), login(shop, "agent")
    url = f"/shop-admin/customers/{ids['a']}/notes"
    assert boss.post(url, data={"body": "no token"}).status_code == 400
    assert viewer.post(url, data={"csrf_token": viewer.csrf, "body": "x"}).status_code == 403
    other = f"/shop-admin/customers/{ids['b']}/notes"
    assert agent.post(other, data={"csrf_token": agent.csrf, "body": "x"}).status_code == 404
    assert agent.post(url, data={"csrf_token": agent.csrf, "body": "called"}).status_code == 303
    empty = boss.post(url, data={"csrf_token": boss.csrf, "body": "  "})
    assert empty.status_code == 422
    tagged = boss.post(
        f"/shop-admin/customers/{ids['c']}/tags", data={"csrf_token": boss.csrf, "tag": "regular"}
    )
    assert tagged.status_code == 303
    with shop.app_context():
        session = get_state().session
        assert session.scalars(select(CustomerNote.body)).all() == ["called"]
        assert tags.tags_of(ids["c"]) == ["regular"]
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("customers.%"))
        ).all()
        assert sorted(actions) == ["customers.note", "customers.tag_add"]
    page = boss.get(f"/shop-admin/customers/{ids['c']}").get_data(as_text=True)
    assert 'data-kind="tag_added"' in page


def test_merge_and_undo_from_the_customer_page(shop):
    ids = shop.config["ids"]
    boss = login(shop, "boss")
    response = boss.post(
        f"/shop-admin/customers/{ids['b']}/merge",
        data={"csrf_token": boss.csrf, "source_id": str(ids["c"])},
    )
    assert response.status_code == 303
    assert (
        boss.get(f"/shop-admin/customers/{ids['c']}")
        .headers["Location"]
        .endswith(f"/customers/{ids['b']}")
    )
    page = boss.get(f"/shop-admin/customers/{ids['b']}").get_data(as_text=True)
    assert 'id="order-count">2<' in page
    with shop.app_context():
        merge_id = get_state().session.scalar(select(CustomerMerge.id))
    bad = boss.post(
        f"/shop-admin/customers/{ids['b']}/merge",
        data={"csrf_token": boss.csrf, "source_id": "abc"},
    )
    assert bad.status_code == 422
    undo = boss.post(
        f"/shop-admin/customers/{ids['b']}/merges/{merge_id}/split",
        data={"csrf_token": boss.csrf},
    )
    assert undo.status_code == 303
    assert boss.get(f"/shop-admin/customers/{ids['c']}").status_code == 200
    with shop.app_context():
        assert identities.resolve(ids["c"]) == ids["c"]


def test_the_rule_help_explains_every_field_in_the_staff_language(shop):
    from koudai_flask.blueprints.admin.rule_help import FIELD_HELP, KIND_LABELS
    from koudai_flask.services import tag_rules

    assert set(FIELD_HELP) == set(tag_rules.FIELDS)  # a new field gets its words here too
    assert set(KIND_LABELS) == {kind for kind, _ in tag_rules.FIELDS.values()}
    boss = login(shop, "boss")
    for url in ("/shop-admin/customers/tags", "/shop-admin/customers/segments/new"):
        page = boss.get(url).get_data(as_text=True)
        help_table = page[page.index('id="rule-help"') :]
        assert "计入订单的消费额（分），已扣除退款" in help_table, url
        assert "spend on counted orders" not in help_table, url
        english = boss.get(f"{url}?lang=en").get_data(as_text=True)
        assert "spend on counted orders, in fen, less refunds" in english, url
        boss.get(f"{url}?lang=zh_CN")
