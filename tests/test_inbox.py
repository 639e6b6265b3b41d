"""The WeChat customer-service inbox and the auto-reply admin, against the WeChat sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.connectors.sandbox.wechat import CustomMessage, WechatSandbox
from koudai_flask.connectors.sandbox.wechat_push import OAPusher
from koudai_flask.errors import ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import AuditEntry, AutoReplyRule, WechatFollower, WechatMessage
from koudai_flask.models.base import utcnow
from koudai_flask.services import channels, inbox, staff
from tests.test_admin import PASSWORD, login

TOKEN = "inboxT0ken"


class Shop:
    def __init__(self, app: Flask, wechat: WechatSandbox, pusher: OAPusher) -> None:
        self.app, self.wechat, self.pusher = app, wechat, pusher

    def customer_of(self, openid: str) -> int:
        with self.app.app_context():
            session = get_state().session
            customer_id = session.scalar(
                select(WechatFollower.customer_id).where(WechatFollower.openid == openid)
            )
            session.rollback()
            assert customer_id is not None
            return int(customer_id)

    def count(self, model: Any, *where: Any) -> int:
        with self.app.app_context():
            session = get_state().session
            value = session.scalar(select(func.count()).select_from(model).where(*where))
            session.rollback()
            return int(value)


@pytest.fixture
def shop(make_app: Any, database_url: str) -> Iterator[Shop]:
    wechat = WechatSandbox()
    app = make_app(database_url, KOUDAI_WECHAT={**wechat.settings_for_client(), "token": TOKEN})
    with app.app_context():
        for role in ("customer_service", "viewer", "marketing"):
            staff.grant(f"staff:{role}@shop.cn", role, email=f"{role}@shop.cn", password=PASSWORD)
        channels.create("taobao", "tb-a", settings={})
        channels.create("wechat", "wechat-oa", settings={})
        staff.grant(
            "staff:agent@shop.cn",
            "customer_service",
            channels=["tb-a"],
            email="agent@shop.cn",
            password=PASSWORD,
        )
        staff.grant(
            "staff:wxagent@shop.cn",
            "customer_service",
            channels=["wechat-oa"],
            email="wxagent@shop.cn",
            password=PASSWORD,
        )
    server = LoopbackServer(app)
    pusher = OAPusher(f"{server.url}/shop-hooks/wechat/oa", token=TOKEN, appid=wechat.api.appid)
    yield Shop(app, wechat, pusher)
    server.stop()
    wechat.stop()


def test_an_agent_reads_the_buyers_message_and_replies_through_customer_service(shop):
    assert shop.pusher.text("oBuyer", "我的快递到哪了?").status == 200
    customer_id = shop.customer_of("oBuyer")
    agent = login(shop.app, "customer_service")
    listing = agent.get("/shop-admin/inbox").get_data(as_text=True)
    assert 'data-openid="oBuyer" class="kd-unread"' in listing
    assert "我的快递到哪了?" in listing
    page = agent.get(f"/shop-admin/inbox/{customer_id}")
    assert page.status_code == 200
    assert "我的快递到哪了?" in page.get_data(as_text=True)
    assert shop.count(WechatFollower, WechatFollower.unread > 0) == 0  # read now
    answer = agent.post(
        f"/shop-admin/inbox/{customer_id}/reply",
        data={"csrf_token": agent.csrf, "text": "  今天下午送到  "},
    )
    assert (answer.status_code, answer.headers["Location"]) == (
        303,
        f"/shop-admin/inbox/{customer_id}",
    )
    assert shop.wechat.api.custom_messages == [CustomMessage("oBuyer", "今天下午送到")]
    assert (
        shop.count(
            WechatMessage,
            WechatMessage.direction == "out",
            WechatMessage.status == "sent",
            WechatMessage.author == "staff:customer_service@shop.cn",
        )
        == 1
    )
    assert shop.count(AuditEntry, AuditEntry.action == "wechat.reply") == 1
    thread = agent.get(f"/shop-admin/inbox/{customer_id}").get_data(as_text=True)
    assert "今天下午送到" in thread


def test_a_reply_without_csrf_or_without_customers_edit_sends_nothing(shop):
    shop.pusher.text("oBuyer", "hello")
    customer_id = shop.customer_of("oBuyer")
    agent = login(shop.app, "customer_service")
    assert (
        agent.post(f"/shop-admin/inbox/{customer_id}/reply", data={"text": "x"}).status_code == 400
    )
    viewer = login(shop.app, "viewer")
    assert viewer.get(f"/shop-admin/inbox/{customer_id}").status_code == 200
    denied = viewer.post(
        f"/shop-admin/inbox/{customer_id}/reply", data={"csrf_token": viewer.csrf, "text": "x"}
    )
    assert denied.status_code == 403
    assert shop.wechat.api.custom_messages == []
    assert shop.count(WechatMessage, WechatMessage.direction == "out") == 0


def test_staff_scoped_to_other_channels_do_not_see_the_inbox(shop):
    shop.pusher.text("oBuyer", "hello")
    customer_id = shop.customer_of("oBuyer")
    outsider = login(shop.app, "agent")
    assert "oBuyer" not in outsider.get("/shop-admin/inbox").get_data(as_text=True)
    assert outsider.get(f"/shop-admin/inbox/{customer_id}").status_code == 404
    refused = outsider.post(
        f"/shop-admin/inbox/{customer_id}/reply", data={"csrf_token": outsider.csrf, "text": "x"}
    )
    assert refused.status_code == 404
    assert shop.wechat.api.custom_messages == []
    insider = login(shop.app, "wxagent")
    assert 'data-openid="oBuyer"' in insider.get("/shop-admin/inbox").get_data(as_text=True)
    assert insider.get(f"/shop-admin/inbox/{customer_id}").status_code == 200


def test_wechat_refusing_a_reply_is_recorded_and_shown(shop):
    shop.pusher.text("oBuyer", "hello")
    customer_id = shop.customer_of("oBuyer")
    shop.wechat.api.close_window("oBuyer")
    agent = login(shop.app, "customer_service")
    agent.post(
        f"/shop-admin/inbox/{customer_id}/reply", data={"csrf_token": agent.csrf, "text": "hi"}
    )
    assert shop.count(WechatMessage, WechatMessage.status == "failed") == 1
    page = agent.get(f"/shop-admin/inbox/{customer_id}").get_data(as_text=True)
    assert "45015" in page
    assert shop.wechat.api.custom_messages == []


def test_no_reply_after_the_48_hour_window(shop):
    shop.pusher.text("oBuyer", "hello")
    customer_id = shop.customer_of("oBuyer")
    with shop.app.app_context():
        session = get_state().session
        session.execute(
            update(WechatFollower).values(last_inbound_at=utcnow() - timedelta(hours=49))
        )
        session.commit()
        with pytest.raises(ValidationError, match="48 hours"):
            inbox.reply("staff:customer_service@shop.cn", customer_id, "late")
    agent = login(shop.app, "customer_service")
    page = agent.get(f"/shop-admin/inbox/{customer_id}").get_data(as_text=True)
    assert 'id="window-closed"' in page and 'id="reply-form"' not in page
    assert shop.wechat.api.send_calls == 0 and shop.wechat.api.custom_messages == []


def test_a_customer_without_a_conversation_has_an_empty_thread(shop):
    agent = login(shop.app, "customer_service")
    with shop.app.app_context():
        from koudai_flask.services import customers

        buyer = customers.register(password="buyer-pass-1", email="b@buyers.cn", name="B")
    page = agent.get(f"/shop-admin/inbox/{buyer.id}")
    assert page.status_code == 200
    assert 'id="no-thread"' in page.get_data(as_text=True)
    assert agent.get("/shop-admin/inbox/99999").status_code == 404


def test_marketing_sets_keyword_replies_that_the_account_answers(shop):
    marketing = login(shop.app, "marketing")
    saved = marketing.post(
        "/shop-admin/autoreplies",
        data={
            "csrf_token": marketing.csrf,
            "trigger": "keyword",
            "keyword": "营业时间",
            "match": "contains",
            "reply": "每天 9:00-18:00",
        },
    )
    assert saved.status_code == 303
    bad = marketing.post(
        "/shop-admin/autoreplies",
        data={"csrf_token": marketing.csrf, "trigger": "keyword", "keyword": "", "reply": "x"},
    )
    assert bad.status_code == 422
    assert shop.count(AutoReplyRule) == 1
    result = shop.pusher.text("oAsker", "请问营业时间?")
    assert result.reply is not None and result.reply["Content"] == "每天 9:00-18:00"
    agent = login(shop.app, "customer_service")
    assert agent.get("/shop-admin/autoreplies").status_code == 403
    with shop.app.app_context():
        rule_id = get_state().session.scalar(select(AutoReplyRule.id))
    assert (
        marketing.post(
            "/shop-admin/autoreplies/delete",
            data={"csrf_token": marketing.csrf, "rule_id": rule_id},
        ).status_code
        == 303
    )
    assert shop.count(AutoReplyRule) == 0
    assert shop.pusher.text("oAsker", "请问营业时间?").body == "success"
