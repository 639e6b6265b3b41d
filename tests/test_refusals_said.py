"""The back office's forms refuse bad input in the staff's language and change nothing.

Each case posts what a hurried shop owner might type into a form of the back office (in
Chinese, the default language) and reads the refusal the page shows: it must be the Chinese
sentence, with the figures in it, and the database must be as it was.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import func, select

from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import PermissionDenied, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import (
    ApiKey,
    AutoReplyRule,
    Campaign,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    Order,
    Role,
    Segment,
    Shipment,
    StaffMember,
    Tag,
    WebhookSubscription,
    WeiboKeywordRule,
)
from koudai_flask.services import (
    api_keys,
    catalog,
    channels,
    customers,
    inbox,
    orders,
    rule_tags,
    staff,
    tags,
    theme,
)
from tests.test_admin import PASSWORD, login

SHOWN = re.compile(r'class="[^"]*\b(?:kd-flash|kd-error|kd-errors)\b[^"]*"[^>]*>(.*?)</', re.S)


def said(response: Any) -> list[str]:
    """The refusals and notices a page shows, as text."""
    page = response.get_data(as_text=True)
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m)).split()) for m in SHOWN.findall(page)
    ]


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return get_state().session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def shop(make_app: Any, database_url: str) -> tuple[Flask, Any, dict[str, Any]]:
    app = make_app(database_url, KOUDAI_WEBHOOKS=True, KOUDAI_OFFLINE_PAYMENT=False)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 5}])
        buyer = customers.register(password="buyer-pass-1", email="li@buyers.cn", name="Li")
        paid = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}], customer=buyer)
        orders.mark_paid(paid.number, amount=paid.total, transaction_id="t1", provider="offline")
        by_card = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}])
        orders.mark_paid(by_card.number, amount=by_card.total, transaction_id="c1", provider="gone")
        rule_tags.save_rule_tag("staff:owner@shop.cn", "老客", None)
        facts = {"paid": paid.number, "by_card": by_card.number, "customer": buyer.id}
    return app, login(app, "owner"), facts


def post(client: Any, path: str, **form: Any) -> Any:
    return client.post(
        f"/shop-admin{path}", data={"csrf_token": client.csrf, **form}, follow_redirects=True
    )


@pytest.mark.parametrize(
    ("path", "form", "words", "model"),
    [
        ("/staff/roles", {"name": "", "rank": "10"}, "角色名需要 1 到 40 个字符。", Role),
        ("/staff/roles", {"name": "x" * 41, "rank": "10"}, "角色名需要 1 到 40 个字符。", Role),
        ("/staff/roles", {"name": "owner", "rank": "10"}, "角色 店主 已存在或为内置角色。", Role),
        (
            "/staff/roles",
            {"name": "packer", "rank": "0"},
            "自定义角色的级别是 1 到 99 之间的整数。",
            Role,
        ),
        (
            "/api-keys",
            {"name": "", "scopes": "orders.view", "owner": "staff:owner@shop.cn"},
            "请为密钥填写名称，1 到 120 个字符。",
            ApiKey,
        ),
        (
            "/api-keys",
            {"name": "ERP", "owner": "staff:owner@shop.cn"},
            "请为密钥至少选择一项权限范围。",
            ApiKey,
        ),
        ("/customers/tags", {"name": "老客"}, "已有名为 老客 的标签。", None),
        (
            "/customers/tags",
            {"name": "回头客", "description": "买过两次以上" * 40},
            "描述最多 200 个字符。",
            None,
        ),
        (
            "/customers/segments",
            {"name": "大客户", "min_spent_yuan": "五百"},
            "消费至少（元）必须是整数。",
            Segment,
        ),
        (
            "/webhooks",
            {"url": "ftp://erp.example.com/hook", "events": "order.paid"},
            "网址须以 https:// 或 http:// 开头。",
            WebhookSubscription,
        ),
        (
            "/webhooks",
            {"url": "https://user:pw@erp.example.com/hook", "events": "order.paid"},
            "网址中不能带用户名或密码：每次推送都会带签名。",
            WebhookSubscription,
        ),
        (
            "/autoreplies",
            {"trigger": "keyword", "match": "exact", "keyword": "", "reply": "您好"},
            "关键词为必填项。",
            AutoReplyRule,
        ),
        (
            "/weibo/rules",
            {"keyword": "x" * 65, "severity": "warning"},
            "关键词最多 64 个字符。",
            WeiboKeywordRule,
        ),
        (
            "/campaigns/new",
            {"name": "", "channel": "sms", "rate_per_minute": "60", "body": "新品上架"},
            "请为活动填写名称，最多 120 个字符。",
            Campaign,
        ),
        (
            "/campaigns/new",
            {"name": "上新", "channel": "sms", "rate_per_minute": "0", "body": "新品上架"},
            "每分钟发送 1 到 100000 条。",
            Campaign,
        ),
        (
            "/campaigns/new",
            {"name": "上新", "channel": "sms", "rate_per_minute": "60", "body": "{{ nmae }"},
            "文案无法使用（unexpected '}'）；可以使用的变量：shop_name, name, link。",
            Campaign,
        ),
    ],
)
def test_a_form_refusal_is_said_in_chinese_and_writes_nothing(
    shop: tuple[Flask, Any, dict[str, Any]], path: str, form: dict[str, str], words: str, model: Any
) -> None:
    app, client, _ = shop
    before = count(app, model) if model is not None else count(app, Tag)
    response = post(client, path, **form)
    assert response.status_code in (200, 400, 422)
    assert any(words in text for text in said(response)), said(response)
    assert (count(app, model) if model is not None else count(app, Tag)) == before


def test_a_note_without_words_is_refused_in_chinese(shop: tuple[Flask, Any, dict[str, Any]]):
    app, client, facts = shop
    response = post(client, f"/customers/{facts['customer']}/notes", body="  ")
    assert "备注需要 1 到 2000 个字符。" in said(response)
    assert count(app, CustomerNote) == 0


def test_the_logo_and_colour_of_the_profile_are_refused_in_chinese(
    shop: tuple[Flask, Any, dict[str, Any]],
):
    app, client, _ = shop
    with app.app_context():
        before = (theme.current().name, theme.current().primary_color)
    bad_logo = post(
        client, "/onboarding/profile", name="茶铺", primary_color="#12ab34", logo_url="ftp://x"
    )
    assert bad_logo.status_code == 400
    assert any("店标地址须以 https://、http:// 或 / 开头" in t for t in said(bad_logo))
    bad_colour = post(client, "/onboarding/profile", name="茶铺", primary_color="red", logo_url="")
    assert "颜色请写成 #rrggbb，如 #c0392b。" in said(bad_colour)
    with app.app_context():
        assert (theme.current().name, theme.current().primary_color) == before


def test_a_tracking_number_no_carrier_prints_is_refused(shop: tuple[Flask, Any, dict[str, Any]]):
    app, client, facts = shop
    response = post(
        client, f"/orders/{facts['paid']}/ship", carrier="shunfeng", tracking_number="?!<> 1"
    )
    assert "运单号 ?!<> 1 不是快递公司的运单号格式：应为 4 到 64 位字母、数字或 -。" in said(
        response
    )
    assert count(app, Shipment) == 0
    shipped = post(
        client, f"/orders/{facts['paid']}/ship", carrier="shunfeng", tracking_number="SF-1234567"
    )
    assert "已发货。" in said(shipped)
    assert count(app, Shipment) == 1


def test_money_taken_offline_is_refunded_offline_without_the_offline_checkout(
    shop: tuple[Flask, Any, dict[str, Any]],
):
    """Staff recorded a bank transfer while the shop offers no offline payment at checkout:
    the refund goes back by hand and is recorded; an order paid through a provider the
    shop no longer has is refused in Chinese and stays as it was."""
    app, client, facts = shop
    assert not app.config["KOUDAI_OFFLINE_PAYMENT"]
    refunded = post(client, f"/orders/{facts['paid']}/refund", amount="", reason="退货")
    assert "已退款。" in said(refunded)
    kept = post(client, f"/orders/{facts['by_card']}/refund", amount="", reason="退货")
    assert "本店已不再配置 gone：请在 gone 手动退款。" in said(kept)
    with app.app_context():
        session = get_state().session
        paid = session.scalar(select(Order).where(Order.number == facts["paid"]))
        assert (paid.status, paid.refunded_amount) == ("refunded", 9900)
        card = session.scalar(select(Order).where(Order.number == facts["by_card"]))
        assert (card.status, card.refunded_amount) == ("paid", 0)


def test_a_thing_is_named_and_a_person_has_a_full_name(shop: tuple[Flask, Any, dict[str, Any]]):
    """ "Name" of a category, tag or coupon reads 名称; a person's name reads 姓名."""
    app, client, _ = shop
    response = post(client, "/categories", name="x" * 121, slug="teaware")
    assert any(text.startswith("名称") for text in said(response)), said(response)
    customers_page = client.get("/shop-admin/customers").get_data(as_text=True)
    assert "<th>姓名</th>" in customers_page


def test_delegation_refusals_name_the_role_and_the_permissions(
    shop: tuple[Flask, Any, dict[str, Any]],
):
    app, _, _ = shop
    with app.app_context():
        staff.grant("staff:admin@shop.cn", "admin", email="admin@shop.cn", password=PASSWORD)
        before = count(app, StaffMember)
    manager = login(app, "admin")
    above = post(manager, "/staff/grant", email="new@shop.cn", password=PASSWORD, role="owner")
    assert "只能授予低于自己的角色；店主 不低于您的角色。" in said(above)
    mine = post(manager, "/staff/revoke", user_id="staff:admin@shop.cn")
    assert "不能更改自己的角色、渠道或权限。" in said(mine)
    boss = post(manager, "/staff/revoke", user_id="staff:owner@shop.cn")
    assert "owner@shop.cn 的级别不低于您，您不能更改。" in said(boss)
    assert count(app, StaffMember) == before + 0
    with app.app_context():
        assert staff.get_member("staff:owner@shop.cn").active


def test_merge_refusals_stay_on_the_customer_page(shop: tuple[Flask, Any, dict[str, Any]]):
    """A mistyped customer number is said on the page (422), not a missing page."""
    app, client, facts = shop
    customer = facts["customer"]
    itself = post(client, f"/customers/{customer}/merge", source_id=str(customer))
    assert "客户不能与自己合并。" in said(itself)
    typo = client.post(
        f"/shop-admin/customers/{customer}/merge",
        data={"csrf_token": client.csrf, "source_id": "#99999"},
    )
    assert typo.status_code == 422
    assert "没有客户 #99999。" in said(typo)
    with app.app_context():
        assert get_state().session.scalar(select(func.count()).select_from(CustomerMerge)) == 0


def test_a_rule_tag_cannot_be_put_on_by_hand(shop: tuple[Flask, Any, dict[str, Any]]):
    app, client, facts = shop
    with app.app_context():
        rule_tags.save_rule_tag("staff:owner@shop.cn", "大户", "total_spent >= 100000")
    response = post(client, f"/customers/{facts['customer']}/tags", tag="大户")
    assert "标签 大户 由规则自动给出，请修改规则。" in said(response)
    with app.app_context():
        assert "大户" not in tags.tags_of(facts["customer"])


def test_channel_and_inbox_refusals_have_words(shop: tuple[Flask, Any, dict[str, Any]]):
    app, _, facts = shop
    with app.app_context(), force_locale("zh"):
        channels.create("taobao", "tb-main", settings={})
        with pytest.raises(ValidationError) as taken:
            channels.create("taobao", "tb-main", settings={})
        assert refusal_text(taken.value) == "已有名为 tb-main 的渠道。"
        staff.grant("staff:viewer@shop.cn", "viewer", email="viewer@shop.cn", password=PASSWORD)
        with pytest.raises(PermissionDenied) as lacking:
            api_keys.create("staff:viewer@shop.cn", "ERP", ["orders.view", "orders.refund"])
        assert lacking.value.detail == {"permissions": ["orders.refund"]}
        assert refusal_text(lacking.value) == (
            "密钥所属员工没有以下权限：订单退款；密钥只能拥有其所属员工已有的权限。"
        )
        with pytest.raises(ValidationError) as off:
            inbox.reply("staff:owner@shop.cn", facts["customer"], "您好")
        assert refusal_text(off.value) == "尚未配置微信公众号，无法发送回复。"


def test_a_weibo_user_id_that_is_not_a_number_is_refused(shop: tuple[Flask, Any, dict[str, Any]]):
    app, client, facts = shop
    before = count(app, CustomerIdentity)
    response = post(client, "/weibo/link", customer_id=str(facts["customer"]), uid="李雷的微博")
    assert "微博用户 ID 是一串数字（即其微博主页网址中的数字）。" in said(response)
    assert count(app, CustomerIdentity) == before


def test_something_deleted_meanwhile_is_said_so(shop: tuple[Flask, Any, dict[str, Any]]):
    """A page open in another tab, its webhook deleted since: the 404 says so in Chinese."""
    app, client, _ = shop
    before = count(app, WebhookSubscription)
    response = post(client, "/webhooks/424242/delete")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "内容已不存在，可能刚被删除。请刷新页面。" in page
    assert "no webhook subscription" not in page
    assert count(app, WebhookSubscription) == before


def test_a_paused_channel_is_not_imported_and_says_why(shop: tuple[Flask, Any, dict[str, Any]]):
    app, client, _ = shop
    with app.app_context():
        channels.create("taobao", "tb-main", settings={})
        channels.set_active("tb-main", False)
    response = post(client, "/channels/tb-main/import")
    assert "渠道 tb-main 已暂停：请先恢复，再导入商品。" in said(response)
    with app.app_context():
        assert "catalog_import" not in channels.info("tb-main").settings
