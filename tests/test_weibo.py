"""Weibo reputation monitoring: the client, polling by since_id, rules, alerts, the admin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.connectors.errors import AuthExpired, PermanentFailure, RateLimited
from koudai_flask.connectors.sandbox.weibo import WeiboSandbox
from koudai_flask.connectors.weibo.client import WeiboClient, parse_created_at
from koudai_flask.connectors.weibo.settings import validate_weibo
from koudai_flask.errors import ConfigError
from koudai_flask.extension import get_state
from koudai_flask.jobs.schedules import periodic_jobs
from koudai_flask.models import CustomerIdentity, WeiboAlert, WeiboCursor, WeiboPost
from koudai_flask.services import staff, weibo_monitor
from tests.test_admin import PASSWORD, login


@pytest.fixture
def weibo() -> Iterator[WeiboSandbox]:
    sandbox = WeiboSandbox(search=True)
    yield sandbox
    sandbox.stop()


def client_for(sandbox: WeiboSandbox, **extra: Any) -> WeiboClient:
    settings = validate_weibo(sandbox.settings_for_client(**extra))
    assert settings is not None
    return WeiboClient(settings)


# -- the client ------------------------------------------------------------------------------


def test_created_at_is_read_as_utc():
    assert parse_created_at("Tue May 31 17:46:55 +0800 2011") == datetime(
        2011, 5, 31, 9, 46, 55, tzinfo=UTC
    )
    assert parse_created_at("yesterday") is None


def test_the_client_pages_through_everything_newer_than_since_id(weibo):
    ids = [weibo.api.mention(f"190000000{i}", f"user{i}", f"@品牌 post {i}") for i in range(5)]
    with client_for(weibo, count=2) as client:
        records = client.stream("mentions", "0")
        assert [r.weibo_id for r in records] == ids  # oldest first, across 3 pages
        assert client.stream("mentions", ids[2]) == records[3:]
        assert client.stream("mentions", ids[-1]) == []
    assert (records[0].uid, records[0].screen_name, records[0].kind) == (
        "1900000000",
        "user0",
        "mention",
    )
    assert weibo.api.calls == 3 + 2 + 1


def test_the_client_raises_typed_errors(weibo):
    with client_for(weibo) as client:
        weibo.api.rate_limit_next(1)
        with pytest.raises(RateLimited) as limited:
            client.stream("mentions", "0")
        assert 0 < limited.value.retry_after <= 3600
        weibo.api.expire_token()
        with pytest.raises(AuthExpired, match="21327"):
            client.stream("comments_to_me", "0")
    with client_for(weibo, access_token="wrong") as client, pytest.raises(AuthExpired):
        client.stream("mentions", "0")
    plain = WeiboSandbox(search=False)
    try:
        with (
            client_for(plain, search_url=plain.url) as client,
            pytest.raises(PermanentFailure, match="10014"),
        ):
            client.search("质量", "0")
        with client_for(plain) as client, pytest.raises(PermanentFailure):
            client.search("质量", "0")
    finally:
        plain.stop()


def test_config_is_checked_without_echoing_the_token(make_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    for bad in (
        {"uid": "1"},
        {"access_token": "2.00secret", "api_url": "ftp://x"},
        {"access_token": "2.00secret", "count": 500},
        {"access_token": "2.00secret", "typo": 1},
    ):
        with pytest.raises(ConfigError) as caught:
            make_app(url, KOUDAI_WEIBO=bad)
        assert "2.00secret" not in caught.value.message
    app = make_app(url, KOUDAI_WEIBO={"access_token": "t", "poll_interval": 120})
    assert app.config["KOUDAI_WEIBO"]["api_url"] == "https://api.weibo.com"
    assert ("koudai-weibo-poll", weibo_monitor.poll_due, 120) in periodic_jobs(app)
    assert all(name != "koudai-weibo-poll" for name, *_ in periodic_jobs(make_app(url)))


# -- polling ---------------------------------------------------------------------------------


@pytest.fixture
def monitored(make_app: Any, database_url: str, weibo: WeiboSandbox) -> Flask:
    app = make_app(database_url, KOUDAI_WEIBO=weibo.settings_for_client())
    with app.app_context():
        weibo_monitor.add_rule(None, "质量", "critical")
        weibo_monitor.add_rule(None, "退款")
    return app


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        session = get_state().session
        value = session.scalar(select(func.count()).select_from(model).where(*where))
        session.rollback()
        return int(value)


def test_polling_stores_new_posts_once_and_raises_alerts(monitored, weibo):
    weibo.api.mention("1900000001", "买家小王", "@品牌 质量太差了, 要退款")
    weibo.api.mention("1900000002", "路人", "@品牌 好看")
    weibo.api.comment("1900000003", "老客", "质量不错", to_me=True)
    weibo.api.comment(weibo.api.uid, "品牌官方微博", "谢谢支持 质量", to_me=True)  # our own
    with monitored.app_context():
        assert weibo_monitor.poll() == 3 + 2  # + the search hits of both keywords
        assert weibo_monitor.poll() == 0
    assert count(monitored, WeiboPost, WeiboPost.kind == "mention") == 2
    assert count(monitored, WeiboPost, WeiboPost.kind == "comment") == 1
    # "质量" matches two posts per kind it was seen as; "退款" one.
    assert count(monitored, WeiboAlert) == 2 + 1 + 2 + 1
    with monitored.app_context():
        session = get_state().session
        cursors = dict(session.execute(select(WeiboCursor.stream, WeiboCursor.since_id)).all())
        comment = session.scalar(select(WeiboPost).where(WeiboPost.kind == "comment"))
        assert comment.status_id is not None and comment.screen_name == "老客"
        session.rollback()
    assert set(cursors) == {
        "mentions",
        "comments_to_me",
        "comment_mentions",
        "search:质量",
        "search:退款",
    }
    assert cursors["comment_mentions"] == "0"
    newer = weibo.api.mention("1900000004", "新人", "@品牌 质量?")
    with monitored.app_context():
        assert weibo_monitor.poll() == 2  # the mention and its search hit
        assert (
            get_state().session.scalar(
                select(WeiboCursor.since_id).where(WeiboCursor.stream == "mentions")
            )
            == newer
        )


def test_a_rate_limit_stops_the_pass_and_the_next_one_continues(monitored, weibo):
    weibo.api.mention("1900000001", "a", "质量 1")
    weibo.api.comment("1900000002", "b", "质量 2")
    weibo.api.rate_limit_next(0)
    with monitored.app_context():
        original = weibo_monitor.store
        calls: list[str] = []

        def store_then_limit(stream: str, records: list[Any]) -> int:
            calls.append(stream)
            if stream == "mentions":
                weibo.api.rate_limit_next(1)  # the next stream's call is throttled
            return original(stream, records)

        weibo_monitor.store = store_then_limit  # type: ignore[assignment]
        try:
            with pytest.raises(RateLimited):
                weibo_monitor.poll()
        finally:
            weibo_monitor.store = original  # type: ignore[assignment]
        assert calls == ["mentions"]
        assert count(monitored, WeiboPost) == 1
        assert weibo_monitor.poll_due() == 1 + 2  # the comment, and both searched
    assert count(monitored, WeiboPost) == 4


def test_an_expired_token_is_logged_by_the_periodic_job(monitored, weibo, caplog):
    weibo.api.expire_token()
    with monitored.app_context():
        assert weibo_monitor.poll_due() == 0
        with pytest.raises(AuthExpired):
            weibo_monitor.poll()
    assert "21327" in caplog.text
    assert weibo.api.access_token not in caplog.text
    assert count(monitored, WeiboPost) == 0


def test_linking_a_weibo_user_marks_their_posts_and_the_next_ones(monitored, weibo):
    with monitored.app_context():
        staff.grant("staff:cs@shop.cn", "customer_service", email="cs@shop.cn", password=PASSWORD)
        from koudai_flask.services import customers

        buyer = customers.register(password="buyer-pass-1", email="w@buyers.cn", name="W")
        buyer_id = buyer.id
    weibo.api.mention("1900000009", "微博买家", "@品牌 你好")
    with monitored.app_context():
        weibo_monitor.poll()
        assert weibo_monitor.link_user("staff:cs@shop.cn", "1900000009", buyer_id) == buyer_id
    weibo.api.mention("1900000009", "微博买家", "@品牌 又来了")
    with monitored.app_context():
        weibo_monitor.poll()
    assert count(monitored, WeiboPost, WeiboPost.customer_id == buyer_id) == 2
    assert count(monitored, CustomerIdentity, CustomerIdentity.kind == "weibo_uid") == 1


# -- the admin -------------------------------------------------------------------------------


def test_alerts_in_the_back_office(monitored, weibo):
    with monitored.app_context():
        from koudai_flask.services.staff import ROLES

        for role in ROLES:
            staff.grant(f"staff:{role}@shop.cn", role, email=f"{role}@shop.cn", password=PASSWORD)
    weibo.api.mention("1900000001", "买家小王", "@品牌 要退款")
    with monitored.app_context():
        weibo_monitor.poll()
        alert_id = get_state().session.scalar(select(WeiboAlert.id).order_by(WeiboAlert.id))
    viewer = login(monitored, "viewer")
    page = viewer.get("/shop-admin/weibo").get_data(as_text=True)
    assert "要退款" in page and f'data-alert="{alert_id}"' in page
    assert (
        viewer.post(
            "/shop-admin/weibo/resolve", data={"csrf_token": viewer.csrf, "alert_id": alert_id}
        ).status_code
        == 403
    )
    assert viewer.get("/shop-admin/weibo/rules").status_code == 403
    agent = login(monitored, "customer_service")
    assert (
        agent.post(
            "/shop-admin/weibo/resolve", data={"csrf_token": agent.csrf, "alert_id": alert_id}
        ).status_code
        == 303
    )
    assert count(monitored, WeiboAlert, WeiboAlert.status == "resolved") == 1
    assert (
        agent.post(
            "/shop-admin/weibo/resolve", data={"csrf_token": agent.csrf, "alert_id": "999"}
        ).status_code
        == 404
    )
    linked = agent.post(
        "/shop-admin/weibo/link",
        data={"csrf_token": agent.csrf, "uid": "1900000001", "customer_id": "424242"},
    )
    assert linked.status_code == 404  # no such customer
    assert count(monitored, CustomerIdentity) == 0
    marketing = login(monitored, "marketing")
    assert (
        marketing.post(
            "/shop-admin/weibo/rules",
            data={"csrf_token": marketing.csrf, "keyword": "假货", "severity": "critical"},
        ).status_code
        == 303
    )
    assert (
        marketing.post(
            "/shop-admin/weibo/rules",
            data={"csrf_token": marketing.csrf, "keyword": "x", "severity": "panic"},
        ).status_code
        == 422
    )
    assert "假货" in marketing.get("/shop-admin/weibo/rules").get_data(as_text=True)
