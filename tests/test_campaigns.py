"""Campaigns: a segment's customers each get one message, whatever runs twice."""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker
from sqlalchemy import func, insert, select, update

from koudai_flask.connectors.sandbox.wechat import WechatSandbox
from koudai_flask.errors import SignatureError, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.jobs import campaigns as campaign_jobs
from koudai_flask.jobs.queue import get_queue, job_class_for, redis_connection
from koudai_flask.models import (
    AuditEntry,
    Campaign,
    CampaignRecipient,
    Customer,
    CustomerIdentity,
    CustomerTag,
    FunnelEvent,
    StaffMember,
    Tag,
)
from koudai_flask.models.base import utcnow
from koudai_flask.notifications import sms
from koudai_flask.services import campaigns, segments, staff
from koudai_flask.services.transaction import unit_of_work

LINK_BASE = "http://shop.test/shop"
BODY = "thing1: {{ shop_name }} 春季上新\nthing2: {{ name }}，点击查看"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PASSWORD = "correct-horse-battery"


@pytest.fixture
def wechat() -> Iterator[WechatSandbox]:
    sandbox = WechatSandbox(appid="wx0123456789abcdef", secret="sandbox-secret-0123")
    yield sandbox
    sandbox.stop()


def shop_app(make_app: Any, url: str, wechat: WechatSandbox, **config: Any) -> Flask:
    app: Flask = make_app(
        url,
        KOUDAI_WECHAT=wechat.settings_for_client(),
        KOUDAI_CAMPAIGN_LINK_BASE=LINK_BASE,
        **config,
    )
    return app


def session() -> Any:
    current = get_state().session
    current.expire_all()
    return current


def make_customers(
    count: int, *, tag: str, openid: bool = True, phone: bool = False, prefix: str = "c"
) -> list[int]:
    """``count`` customers carrying ``tag``, each with an openid (and a phone) or not."""
    now = utcnow()
    with unit_of_work() as s:
        tag_id = s.scalar(select(Tag.id).where(Tag.name == tag))
        if tag_id is None:
            tag_id = s.execute(
                insert(Tag).values(name=tag, created_at=now, updated_at=now).returning(Tag.id)
            ).scalar_one()
        ids = list(
            s.execute(
                insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                [
                    {
                        "name": f"{prefix}{n}",
                        "phone": f"1390000{n:04d}" if phone else None,
                        "created_at": now,
                    }
                    for n in range(count)
                ],
            ).scalars()
        )
        if openid:
            s.execute(
                insert(CustomerIdentity),
                [
                    {
                        "customer_id": i,
                        "kind": "wechat_openid",
                        "value": f"o{i:06d}",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
        s.execute(
            insert(CustomerTag),
            [
                {"customer_id": i, "tag_id": tag_id, "source": "manual", "created_at": now}
                for i in ids
            ],
        )
    return ids


def tag_segment(tag: str) -> int:
    """A segment of the customers tagged ``tag``, saved by the owner."""
    if session().scalar(select(StaffMember.id).where(StaffMember.user_id == "staff:owner")) is None:
        staff.grant("staff:owner", "owner")
    return segments.save("staff:owner", {"tag": tag}, name=f"tagged {tag}").id


def draft(segment_id: int | None, **values: Any) -> Campaign:
    fields: dict[str, Any] = {
        "name": "Spring",
        "channel": "wechat",
        "segment_id": segment_id,
        "body": BODY,
        "wechat_template_id": "TPL_SPRING_01",
        "target": "/products/oxford-shirt",
        "rate_per_minute": 100_000,
        "actor": "staff:owner",
    }
    fields.update(values)
    return campaigns.create_campaign(**fields)


def recipients(campaign_id: int) -> dict[str, int]:
    session().rollback()
    return {k: v for k, v in campaigns.progress(campaign_id).items() if v}


def push_sent(campaign_id: int) -> int:
    return int(
        session().scalar(
            select(func.count())
            .select_from(FunnelEvent)
            .where(FunnelEvent.event == "push_sent", FunnelEvent.campaign_id == campaign_id)
        )
        or 0
    )


# -- the segment of 1,000 ----------------------------------------------------------------------


def test_each_of_1000_customers_gets_one_message_even_when_every_job_runs_twice(
    make_app, database_url, wechat
):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        vip = make_customers(1000, tag="vip")
        no_openid = make_customers(3, tag="vip", openid=False, prefix="n")
        make_customers(5, tag="other", prefix="o")
        segment = tag_segment("vip")
        campaign = draft(segment)
        assert campaigns.audience_size(segment) == 1003
        assert wechat.api.messages == []  # a draft sends nothing

        campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert wechat.api.send_calls == 1000

        # Everything again: the start, the fan-out, every batch, the sweep.
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        campaign_jobs.fan_out(campaign.id)
        for batch in range(10):
            assert campaign_jobs.send_batch(campaign.id, batch) == 0
        campaign_jobs.sweep()

        assert wechat.api.send_calls == 1000
        received = Counter(m.touser for m in wechat.api.messages)
        assert received == Counter({f"o{i:06d}": 1 for i in vip})
        assert recipients(campaign.id) == {"sent": 1000, "skipped": 3}
        skipped = session().scalars(
            select(CampaignRecipient.customer_id).where(CampaignRecipient.status == "skipped")
        )
        assert sorted(skipped) == no_openid
        assert campaigns.get(campaign.id).status == "sent"
        assert campaigns.get(campaign.id).recipient_count == 1003
        assert push_sent(campaign.id) == 1000

        first = wechat.api.messages[0]
        assert first.template_id == "TPL_SPRING_01"
        assert first.data["thing2"] == {"value": f"c{vip.index(int(first.touser[1:]))}，点击查看"}
        assert first.url is not None and first.url.startswith(f"{LINK_BASE}/r/")
        link = campaigns.read_link(first.url.rsplit("/", 1)[1])
        assert link == campaigns.Link(campaign.id, int(first.touser[1:]), "/products/oxford-shirt")
        assert [m.client_msg_id for m in wechat.api.messages[:2]] == [
            f"kdc{r}"
            for r in session()
            .scalars(
                select(CampaignRecipient.id)
                .where(CampaignRecipient.status == "sent")
                .order_by(CampaignRecipient.id)
                .limit(2)
            )
            .all()
        ]
        actions = session().scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "campaign")
        )
        assert sorted(actions) == ["campaign.create", "campaign.send"]


def test_on_rq_duplicate_jobs_still_send_one_message_each(
    make_app, postgres_url, redis_url, wechat
):
    app = shop_app(
        make_app,
        postgres_url,
        wechat,
        KOUDAI_JOBS="rq",
        KOUDAI_REDIS_URL=redis_url,
        KOUDAI_QUEUE_NAME=f"funnel-test-{uuid.uuid4().hex[:8]}",
    )
    with app.app_context():
        vip = make_customers(1000, tag="vip")
        campaign = draft(tag_segment("vip"))
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert wechat.api.messages == []  # queued, not sent
        queue = get_queue(app)
        assert queue.count == 10
        for batch in range(10):  # every batch job twice more, as a lost ack would
            queue.enqueue(campaign_jobs.send_batch, campaign.id, batch)
            queue.enqueue(campaign_jobs.send_batch, campaign.id, batch)
        SimpleWorker([queue], connection=redis_connection(app), job_class=job_class_for(app)).work(
            burst=True
        )
        assert Counter(m.touser for m in wechat.api.messages) == Counter(
            {f"o{i:06d}": 1 for i in vip}
        )
        assert wechat.api.send_calls == 1000
        assert recipients(campaign.id) == {"sent": 1000}
        assert campaigns.get(campaign.id).status == "sent"
        queue.delete(delete_jobs=True)


def test_two_workers_on_one_batch_send_each_message_once(
    make_app, postgres_url, wechat, monkeypatch
):
    app = shop_app(make_app, postgres_url, wechat)
    with app.app_context():
        make_customers(60, tag="vip")
        campaign = draft(tag_segment("vip"))
        # Store the recipients without running the fan-out, then race two senders.
        monkeypatch.setattr(campaign_jobs, "fan_out", lambda campaign_id, **_: 0)
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert wechat.api.messages == []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                campaign_jobs.send_batch(campaign.id, 0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wechat.api.send_calls == 60
    with app.app_context():
        assert recipients(campaign.id) == {"sent": 60}
        assert push_sent(campaign.id) == 60


# -- pacing, failures ---------------------------------------------------------------------------


def test_the_rate_limit_spaces_the_batches(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat, KOUDAI_CAMPAIGN_BATCH=40)
    with app.app_context():
        make_customers(250, tag="vip")
        campaign = draft(tag_segment("vip"), rate_per_minute=100)
        started = utcnow()
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        # 100 a minute in batches of 40: minute 0 sends 40+40+20 (batches 0-2), minute 1
        # the next 100 (batches 3-5), minute 2 the last 50 (batches 6-7).
        assert len(wechat.api.messages) == 100
        due = dict(
            session()
            .execute(
                select(CampaignRecipient.batch, func.min(CampaignRecipient.due_at))
                .where(CampaignRecipient.status == "pending")
                .group_by(CampaignRecipient.batch)
            )
            .all()
        )
        sizes = dict(
            session()
            .execute(
                select(CampaignRecipient.batch, func.count()).group_by(CampaignRecipient.batch)
            )
            .all()
        )
        assert sizes == {0: 40, 1: 40, 2: 20, 3: 40, 4: 40, 5: 20, 6: 40, 7: 10}
        assert sorted(due) == [3, 4, 5, 6, 7]
        for batch, minutes in ((3, 1), (4, 1), (5, 1), (6, 2), (7, 2)):
            offset = due[batch] - started
            assert timedelta(minutes=minutes) <= offset < timedelta(minutes=minutes, seconds=5)
        assert campaign_jobs.sweep() == 0  # nothing is due yet
        assert len(wechat.api.messages) == 100
        with unit_of_work() as s:  # a minute later
            s.execute(
                update(CampaignRecipient)
                .where(CampaignRecipient.batch.in_((3, 4, 5)))
                .values(due_at=utcnow() - timedelta(seconds=1))
            )
        assert campaign_jobs.sweep() == 3
        assert len(wechat.api.messages) == 200
        assert campaigns.get(campaign.id).status == "sending"
        with unit_of_work() as s:
            s.execute(update(CampaignRecipient).values(due_at=utcnow() - timedelta(seconds=1)))
        assert campaign_jobs.sweep() == 2
        assert len(wechat.api.messages) == 250
        assert campaigns.get(campaign.id).status == "sent"


def test_a_temporary_failure_is_retried_and_still_sends_once(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        vip = make_customers(5, tag="vip")
        campaign = draft(tag_segment("vip"))
        wechat.fail_next(2, -1)  # "system busy" twice
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert Counter(m.touser for m in wechat.api.messages) == Counter(
            {f"o{i:06d}": 1 for i in vip}
        )
        assert recipients(campaign.id) == {"sent": 5}
        attempts = session().scalars(select(CampaignRecipient.attempts).order_by("id")).all()
        assert attempts == [2, 2, 1, 1, 1]  # the batch went on past each failure


def test_a_token_wechat_keeps_refusing_holds_one_recipient_not_the_batch(
    make_app, database_url, wechat
):
    """40001 twice: the client renews the token and tries once more, then gives up
    (``AuthExpired``); the batch sends to the others first and that recipient on its retry."""
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        vip = make_customers(4, tag="vip")
        campaign = draft(tag_segment("vip"))
        wechat.fail_next(2, 40001)
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert [m.touser for m in wechat.api.messages] == [f"o{i:06d}" for i in (*vip[1:], vip[0])]
        assert recipients(campaign.id) == {"sent": 4}
        attempts = session().scalars(select(CampaignRecipient.attempts).order_by("id")).all()
        assert attempts == [2, 1, 1, 1]


def test_the_daily_quota_postpones_the_rest(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        make_customers(4, tag="vip")
        campaign = draft(tag_segment("vip"))
        wechat.fail_next(1, 45009)
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert wechat.api.messages == []
        assert recipients(campaign.id) == {"pending": 4}
        earliest = session().scalar(select(func.min(CampaignRecipient.due_at)))
        assert earliest > utcnow() + timedelta(seconds=1)
        assert campaign_jobs.sweep() == 0
        assert campaigns.get(campaign.id).status == "sending"


def test_a_refused_openid_fails_for_good_and_the_others_are_sent(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        vip = make_customers(3, tag="vip")
        wechat.api.register_openids([f"o{vip[0]:06d}", f"o{vip[2]:06d}"])
        campaign = draft(tag_segment("vip"))
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert recipients(campaign.id) == {"sent": 2, "failed": 1}
        error = session().scalar(
            select(CampaignRecipient.last_error).where(CampaignRecipient.status == "failed")
        )
        assert "40003" in error
        assert campaigns.get(campaign.id).status == "sent"


def test_an_sms_campaign_uses_the_phone_and_the_link(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        ids = make_customers(2, tag="vip", openid=False, phone=True)
        campaign = draft(
            tag_segment("vip"),
            channel="sms",
            body="【{{ shop_name }}】{{ name }}，春季上新：{{ link }}",
            wechat_template_id=None,
            target="/",
        )
        campaigns.send_campaign(campaign.id, actor="staff:owner")
        provider = sms.get_provider()
        assert isinstance(provider, sms.LogSmsProvider)
        assert [m.phone for m in provider.sent] == ["13900000000", "13900000001"]
        text = provider.sent[0].text
        token = re.search(r"/r/(\S+)$", text).group(1)  # type: ignore[union-attr]
        assert campaigns.read_link(token) == campaigns.Link(campaign.id, ids[0], "/")
        assert recipients(campaign.id) == {"sent": 2}


# -- what is refused ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"wechat_template_id": ""}, "wechat_template_id"),
        ({"target": "//evil.example.com/"}, "target"),
        ({"target": "https://evil.example.com/"}, "target"),
        ({"body": "thing1: {{ order_number }}"}, "body"),
        ({"body": "no field line"}, "body"),
        ({"rate_per_minute": 0}, "rate_per_minute"),
        ({"name": "  "}, "name"),
        ({"segment_id": 999}, "segment_id"),
    ],
)
def test_a_bad_campaign_is_refused_and_nothing_is_saved(
    make_app, database_url, wechat, values, field
):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        with pytest.raises(ValidationError) as caught:
            fields = dict(values)
            draft(fields.pop("segment_id", None), **fields)
        assert field in caught.value.messages
        assert session().scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_forged_or_edited_link_is_refused(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        token = campaigns.link_token(1, 2, "/")
        assert campaigns.read_link(token) == campaigns.Link(1, 2, "/")
        with pytest.raises(SignatureError):
            campaigns.read_link(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
        other = make_app(database_url, SECRET_KEY="another-secret")
        with other.app_context(), pytest.raises(SignatureError):
            campaigns.read_link(token)


def test_a_medium_that_is_not_set_up_sends_nothing(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)  # no KOUDAI_SMS
    with app.app_context():
        make_customers(2, tag="vip", phone=True)
        campaign = draft(tag_segment("vip"), channel="sms", body="{{ link }}")
        with pytest.raises(ValidationError, match="KOUDAI_SMS"):
            campaigns.send_campaign(campaign.id, actor="staff:owner")
        assert campaigns.get(campaign.id).status == "draft"
        assert recipients(campaign.id) == {}


def test_a_segment_with_no_campaign_can_be_sent_to_an_explicit_list(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        ids = make_customers(3, tag="vip")
        campaign = draft(None)
        with pytest.raises(ValidationError):
            campaigns.send_campaign(campaign.id, actor="staff:owner")
        campaigns.send_campaign(campaign.id, actor="staff:owner", customer_ids=ids[:2])
        assert recipients(campaign.id) == {"sent": 2}


# -- the back office ----------------------------------------------------------------------------


def login(app: Flask, who: str) -> Any:
    client = app.test_client()
    page = client.get("/shop-admin/login").get_data(as_text=True)
    token = TOKEN.search(page).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/shop-admin/login", data={"email": who, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, who
    client.csrf = token  # type: ignore[attr-defined]
    return client


def test_staff_write_preview_and_send_a_campaign_in_the_back_office(make_app, database_url, wechat):
    app = shop_app(make_app, database_url, wechat)
    with app.app_context():
        staff.grant("staff:boss", "owner", email="boss@shop.cn", password=PASSWORD)
        staff.grant("staff:ware", "warehouse", email="ware@shop.cn", password=PASSWORD)
        make_customers(3, tag="vip")
        segment = segments.save("staff:boss", {"tag": "vip"}, name="VIP").id
    boss = login(app, "boss@shop.cn")
    form = boss.get("/shop-admin/campaigns/new")
    assert form.status_code == 200 and "VIP" in form.get_data(as_text=True)
    fields = {
        "name": "Spring",
        "channel": "wechat",
        "segment_id": str(segment),
        "body": BODY,
        "wechat_template_id": "TPL_SPRING_01",
        "target": "/products/oxford-shirt",
        "rate_per_minute": "600",
    }
    assert boss.post("/shop-admin/campaigns/new", data=fields).status_code == 400  # no CSRF
    bad = boss.post(
        "/shop-admin/campaigns/new",
        data={**fields, "target": "//evil.example.com", "csrf_token": boss.csrf},
    )
    assert bad.status_code == 422 and 'id="form-error"' in bad.get_data(as_text=True)
    with app.app_context():
        assert session().scalar(select(func.count()).select_from(Campaign)) == 0
    created = boss.post("/shop-admin/campaigns/new", data={**fields, "csrf_token": boss.csrf})
    assert created.status_code == 303
    page = boss.get(created.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="audience">[^<]*3', page)
    with app.app_context():
        campaign_id = session().scalar(select(Campaign.id))
    warehouse = login(app, "ware@shop.cn")
    assert warehouse.get(f"/shop-admin/campaigns/{campaign_id}").status_code == 403
    assert (
        warehouse.post(
            f"/shop-admin/campaigns/{campaign_id}/send", data={"csrf_token": warehouse.csrf}
        ).status_code
        == 403
    )
    assert boss.post(f"/shop-admin/campaigns/{campaign_id}/send").status_code == 400
    assert wechat.api.messages == []
    sent = boss.post(f"/shop-admin/campaigns/{campaign_id}/send", data={"csrf_token": boss.csrf})
    assert sent.status_code == 303
    assert len(wechat.api.messages) == 3
    page = boss.get(f"/shop-admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert re.search(r'data-status="sent"><td>[^<]+</td><td>3</td>', page)
    assert 'id="funnel-chart"' in page
    listing = boss.get("/shop-admin/campaigns").get_data(as_text=True)
    assert "3 / 3" in listing
    assert boss.get("/shop-admin/campaigns/999").status_code == 404
