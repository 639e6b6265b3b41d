"""Buyer notifications: WeChat template messages, SMS and e-mail, on real loopback sockets."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from flask import Flask
from rq import SimpleWorker
from sqlalchemy import func, select

from koudai_flask.connectors.errors import AuthExpired, TemporaryFailure
from koudai_flask.connectors.sandbox.loopback import POLL_INTERVAL
from koudai_flask.connectors.sandbox.wechat import WechatSandbox
from koudai_flask.errors import ValidationError
from koudai_flask.extension import get_state
from koudai_flask.jobs.handlers import BUILTIN_HANDLERS
from koudai_flask.jobs.outbox import relay_outbox
from koudai_flask.jobs.queue import get_queue, job_class_for, redis_connection
from koudai_flask.models import (
    AuditEntry,
    CredentialCache,
    Customer,
    CustomerIdentity,
    MessageTemplate,
    Notification,
    OutboxEvent,
)
from koudai_flask.models.base import utcnow
from koudai_flask.notifications import sms
from koudai_flask.notifications.wechat import CredentialCacheStore, WechatClient, WechatSettings
from koudai_flask.services import catalog, notifications, orders, staff
from koudai_flask.services.transaction import unit_of_work

OPENID = "oBuyer_0123456789abcdefghijk"
PHONE = "13800138000"
ADDRESS = {"name": "李雷", "phone": "13900139000", "street": "南京西路 1 号"}
HANDLER = "koudai_flask.services.notifications:on_order_event"


# -- a minimal SMTP server (RFC 5321's happy path and reply codes) ------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpState:
    received: list[ReceivedMail] = field(default_factory=list)
    # Reply codes for the next RCPT TO commands (e.g. 550 refused, 451 try later).
    rcpt_replies: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class SmtpHandler(socketserver.StreamRequestHandler):
    server: SmtpServer

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        state = self.server.state
        self.reply("220 127.0.0.1 ESMTP test")
        mail_from, rcpt_tos = "", []
        while line := self.rfile.readline():
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-127.0.0.1\r\n250 8BITMIME" if verb == "EHLO" else "250 127.0.0.1")
            elif verb == "MAIL":
                mail_from, rcpt_tos = command.partition(":")[2].strip().strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                with state.lock:
                    code = state.rcpt_replies.pop(0) if state.rcpt_replies else 250
                if code == 250:
                    rcpt_tos.append(command.partition(":")[2].strip().strip("<>"))
                self.reply(f"{code} {'OK' if code == 250 else 'mailbox unavailable'}")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                message = message_from_bytes(b"".join(lines), policy=policy.default)
                assert isinstance(message, EmailMessage)
                with state.lock:
                    state.received.append(ReceivedMail(mail_from, rcpt_tos, message))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.state = SmtpState()
        self.port = self.server_address[1]
        self.thread = threading.Thread(
            target=self.serve_forever, args=(POLL_INTERVAL,), daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def wechat() -> Iterator[WechatSandbox]:
    sandbox = WechatSandbox(appid="wx0123456789abcdef", secret="sandbox-secret-0123")
    yield sandbox
    sandbox.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


def session() -> Any:
    current = get_state().session
    current.expire_all()
    return current


def stock() -> None:
    catalog.create_product(
        title="Oxford shirt", skus=[{"code": "SHIRT", "price": 12900, "stock": 50}]
    )


def buyer(*, openid: str | None = OPENID, phone: str | None = None, email: str | None = None):
    """A customer known by any of a WeChat openid, a phone number and an e-mail address."""
    with unit_of_work() as db:
        customer = Customer(name="李雷", phone=phone, email=email)
        db.add(customer)
        db.flush()
        if openid:
            db.add(CustomerIdentity(customer_id=customer.id, kind="wechat_openid", value=openid))
        return customer


def place(customer_id: int | None, *, address: dict[str, str] | None = None) -> str:
    order = orders.place(
        channel="web",
        lines=[{"sku": "SHIRT", "quantity": 2}],
        customer=customer_id,
        address=address,
    )
    return order.number


def pay(number: str) -> None:
    orders.mark_paid(number, amount=25800, transaction_id=f"tx-{number}", provider="offline")


def paid_quietly(app: Flask, customer_id: int | None, **place_options: Any) -> str:
    """A paid order whose own event notified no one (the channels were off meanwhile)."""
    keys = ("KOUDAI_WECHAT", "KOUDAI_SMS", "KOUDAI_MAIL")
    saved = {key: app.config[key] for key in keys}
    app.config.update(dict.fromkeys(keys))
    try:
        number = place(customer_id, **place_options)
        pay(number)
    finally:
        app.config.update(saved)
    return number


def rows(number: str) -> list[Notification]:
    session().expire_all()
    return notifications.for_order(number)


def summary(number: str) -> list[tuple[str, str, str, int]]:
    return [(n.event, n.channel, n.status, n.attempts) for n in rows(number)]


@pytest.fixture
def wechat_app(make_app, database_url, wechat) -> Iterator[Flask]:
    app = make_app(database_url, KOUDAI_WECHAT=wechat.settings_for_client())
    with app.app_context():
        stock()
        notifications.save_template("paid", "wechat", wechat_template_id="TPL_PAID_01")
        yield app


# -- WeChat ------------------------------------------------------------------------------------


def test_the_handler_is_registered_for_the_five_events():
    for topic in (
        "order.paid",
        "order.shipped",
        "order.delivered",
        "order.refunded",
        "order.refund_declined",
    ):
        assert BUILTIN_HANDLERS[topic].count(HANDLER) == 1
    assert HANDLER not in BUILTIN_HANDLERS.get("order.placed", [])


def test_paying_sends_the_buyer_one_template_message(make_app, database_url, wechat):
    app = make_app(
        database_url, KOUDAI_WECHAT=wechat.settings_for_client(), SERVER_NAME="shop.example.com"
    )
    with app.app_context():
        stock()
        notifications.save_template("paid", "wechat", wechat_template_id="TPL_PAID_01")
        number = place(buyer().id)
        assert wechat.api.messages == []
        pay(number)  # the outbox handler does the rest
        [message] = wechat.api.messages
        assert message.touser == OPENID
        assert message.template_id == "TPL_PAID_01"
        assert message.data == {
            "keyword1": {"value": number},
            "keyword2": {"value": "¥258.00"},
            "keyword3": {"value": "已付款"},
        }
        assert message.url == f"http://shop.example.com/shop/orders/{number}"
        [row] = rows(number)
        assert (row.event, row.channel, row.recipient, row.status) == (
            "paid",
            "wechat",
            OPENID,
            "sent",
        )
        assert (row.attempts, row.last_error) == (1, None)
        assert row.provider_message_id == str(message.msgid)
        assert message.client_msg_id == f"kd{row.id}r0"
        assert row.sent_at is not None and utcnow() - row.sent_at < timedelta(minutes=1)


def test_a_declined_refund_tells_the_buyer_why(make_app, database_url, wechat):
    app = make_app(database_url, KOUDAI_WECHAT=wechat.settings_for_client())
    with app.app_context():
        stock()
        notifications.save_template("refund_declined", "wechat", wechat_template_id="TPL_REFUND_NO")
        number = paid_quietly(app, buyer().id)
        orders.request_refund(number, reason="不想要了")
        assert wechat.api.messages == []  # asking tells the buyer nothing: they asked
        orders.decline_refund(number, reason="已发出，请留意物流", actor="staff:owner")
        [message] = wechat.api.messages
        assert message.template_id == "TPL_REFUND_NO"
        assert message.data == {
            "keyword1": {"value": number},
            "keyword2": {"value": "拒绝退款"},
            "keyword3": {"value": "已发出，请留意物流"},
        }
        assert [(n.event, n.status) for n in rows(number)] == [("refund_declined", "sent")]


def test_the_token_is_fetched_once_and_shared_by_every_process(
    wechat_app, make_app, database_url, wechat
):
    customer = buyer()
    for _ in range(2):
        pay(place(customer.id))
    assert len(wechat.api.messages) == 2
    assert (wechat.api.token_requests, wechat.api.token_issues) == (1, 1)
    cached = session().scalar(select(CredentialCache))
    assert cached.name == "wechat:wx0123456789abcdef:access_token"
    assert cached.value in wechat.api.tokens
    expected = utcnow() + timedelta(seconds=7200 - 300)
    assert abs((cached.expires_at - expected).total_seconds()) < 10
    # Another process (another app on the same database) uses the same token.
    other = make_app(database_url, KOUDAI_WECHAT=wechat.settings_for_client())
    with other.app_context():
        pay(place(customer.id))
    assert len(wechat.api.messages) == 3
    assert (wechat.api.token_requests, wechat.api.token_issues) == (1, 1)


def test_an_expired_token_is_refreshed_once_and_the_send_retried(wechat_app, wechat):
    customer = buyer()
    pay(place(customer.id))
    first_token = session().scalar(select(CredentialCache.value))
    wechat.expire_all()
    number = place(customer.id)
    pay(number)
    assert len(wechat.api.messages) == 2
    assert (wechat.api.token_requests, wechat.api.token_issues) == (2, 2)
    assert wechat.api.send_calls == 3  # sent, refused 42001, sent again
    assert summary(number) == [("paid", "wechat", "sent", 1)]
    assert session().scalar(select(CredentialCache.value)) not in (first_token, "")


def test_a_second_refusal_after_the_refresh_is_a_failure_not_a_loop(wechat_app, wechat):
    number = paid_quietly(wechat_app, buyer().id)
    [row] = notifications.plan(number, "paid")
    wechat.fail_next(2, 42001)
    with pytest.raises(AuthExpired, match="errcode 42001"):
        notifications.send(row.id)
    assert wechat.api.send_calls == 2
    # The first fetch and one forced refresh.
    assert (wechat.api.token_requests, wechat.api.token_issues) == (2, 2)
    assert wechat.api.messages == []
    [row] = rows(number)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == (
        "AuthExpired: WeChat /cgi-bin/message/template/send errcode 42001: access_token expired"
    )


def test_a_busy_answer_is_retried_and_the_attempts_are_kept(wechat_app, wechat):
    wechat.fail_next(1, -1)
    number = place(buyer().id)
    pay(number)
    assert len(wechat.api.messages) == 1
    assert wechat.api.send_calls == 2
    [row] = rows(number)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


def test_a_permanent_refusal_is_recorded_and_not_retried(wechat_app, wechat):
    wechat.api.register_openids(["oSomeoneElse"])
    number = place(buyer().id)
    pay(number)
    assert wechat.api.messages == []
    assert wechat.api.send_calls == 1
    [row] = rows(number)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == (
        "PermanentFailure: WeChat /cgi-bin/message/template/send errcode 40003: invalid openid"
    )
    # Nothing to retry: the outbox event is done.
    paid_event = session().scalar(select(OutboxEvent).where(OutboxEvent.topic == "order.paid"))
    assert paid_event.status == "done"


def test_the_dashboard_leads_to_the_orders_whose_message_failed(wechat_app, wechat):
    from tests.test_webhooks_admin import PASSWORD, login

    staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
    told = place(buyer().id)
    pay(told)
    wechat.api.register_openids(["oSomeoneElse"])
    refused = place(buyer(openid="oNobody").id)
    pay(refused)
    assert [r.status for r in rows(refused)] == ["failed"]
    client = login(wechat_app, "owner")
    home = client.get("/shop-admin/").get_data(as_text=True)
    assert '<a href="/shop-admin/orders?messages=failed">1</a>' in home
    listed = client.get("/shop-admin/orders?messages=failed").get_data(as_text=True)
    assert f'data-number="{refused}"' in listed and f'data-number="{told}"' not in listed
    assert 'name="messages" value="failed" checked' in listed
    everything = client.get("/shop-admin/orders").get_data(as_text=True)
    assert f'data-number="{refused}"' in everything and f'data-number="{told}"' in everything
    wechat.api.register_openids(["oNobody"])
    notifications.resend(rows(refused)[0].id, actor="staff:owner@shop.cn")
    assert [r.status for r in rows(refused)] == ["sent"]
    listed = client.get("/shop-admin/orders?messages=failed").get_data(as_text=True)
    assert f'data-number="{refused}"' not in listed


def test_an_unreachable_api_never_records_the_token(wechat_app, wechat):
    customer = buyer()
    pay(place(customer.id))
    token = session().scalar(select(CredentialCache.value))
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    wechat_app.config["KOUDAI_WECHAT"] = wechat.settings_for_client(
        api_url=f"http://127.0.0.1:{closed}"
    )
    number = paid_quietly(wechat_app, customer.id)
    [row] = notifications.plan(number, "paid")
    with pytest.raises(TemporaryFailure, match=f"^notification {row.id}: TemporaryFailure: "):
        notifications.send(row.id)
    [row] = rows(number)
    assert row.status == "failed"
    assert row.last_error == (
        "TemporaryFailure: WeChat /cgi-bin/message/template/send unreachable (ConnectionError)"
    )
    assert token not in row.last_error


def test_the_classic_token_endpoint_when_settings_ask_for_it(make_app, database_url, wechat):
    app = make_app(database_url, KOUDAI_WECHAT=wechat.settings_for_client(stable_token=False))
    with app.app_context():
        stock()
        notifications.save_template("paid", "wechat", wechat_template_id="TPL_PAID_01")
        pay(place(buyer().id))
    assert len(wechat.api.messages) == 1
    assert [t.kind for t in wechat.api.tokens.values()] == ["token"]


def test_running_the_send_job_twice_sends_once(wechat_app, wechat):
    number = paid_quietly(wechat_app, buyer().id)
    [row] = notifications.plan(number, "paid")
    assert notifications.plan(number, "paid")[0].id == row.id  # planned once
    assert notifications.send(row.id) == "sent"
    assert notifications.send(row.id) == "sent"
    assert len(wechat.api.messages) == 1
    assert wechat.api.send_calls == 1
    assert summary(number) == [("paid", "wechat", "sent", 1)]


def test_concurrent_plans_and_sends_send_once(make_app, postgres_url, wechat):
    app = make_app(
        postgres_url,
        KOUDAI_WECHAT=wechat.settings_for_client(),
        KOUDAI_ENGINE_OPTIONS={"pool_size": 10},
    )
    with app.app_context():
        stock()
        notifications.save_template("paid", "wechat", wechat_template_id="TPL_PAID_01")
        number = paid_quietly(app, buyer().id)
    workers = 8
    barrier = threading.Barrier(workers)
    planned: list[int] = []
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run(job: str) -> None:
        try:
            with app.app_context():
                barrier.wait()
                if job == "plan":
                    planned.extend(n.id for n in notifications.plan(number, "paid"))
                else:
                    notification_id = get_state().session.scalar(select(Notification.id))
                    outcomes.append(notifications.send(notification_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for job in ("plan", "send"):
        threads = [threading.Thread(target=run, args=(job,)) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(set(planned)) == 1 and len(planned) == workers
    assert outcomes.count("sent") >= 1 and set(outcomes) <= {"sent", "sending"}
    assert len(wechat.api.messages) == 1
    assert wechat.api.send_calls == 1
    with app.app_context():
        assert summary(number) == [("paid", "wechat", "sent", 1)]


def test_many_processes_refused_at_once_force_one_refresh(make_app, postgres_url, wechat):
    app = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_size": 10})
    settings = WechatSettings.from_config(wechat.settings_for_client())
    with app.app_context():
        store = CredentialCacheStore(get_state().get_engine())
        with WechatClient(settings, store) as client:
            old = client.access_token()
    wechat.expire_all()
    workers = 8
    barrier = threading.Barrier(workers)
    tokens: list[str] = []

    def refresh() -> None:
        with app.app_context(), WechatClient(settings, store) as client:
            barrier.wait()
            tokens.append(client.access_token(stale=old))

    threads = [threading.Thread(target=refresh) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == workers and len(set(tokens)) == 1 and old not in tokens
    # One forced stable_token refresh (20 a day) for all of them.
    assert (wechat.api.token_requests, wechat.api.token_issues) == (2, 2)


def test_resend_sends_again_on_the_same_row_and_is_audited(wechat_app, wechat):
    number = place(buyer().id)
    pay(number)
    [row] = rows(number)
    again = notifications.resend(row.id, actor="staff-7")
    assert again.id == row.id
    assert [m.client_msg_id for m in wechat.api.messages] == [f"kd{row.id}r0", f"kd{row.id}r1"]
    assert summary(number) == [("paid", "wechat", "sent", 2)]
    assert rows(number)[0].provider_message_id == str(wechat.api.messages[1].msgid)
    entry = session().scalar(select(AuditEntry).where(AuditEntry.action == "notification.resend"))
    assert (entry.actor, entry.object_type, entry.object_id) == (
        "staff-7",
        "notification",
        str(row.id),
    )
    assert entry.before == {"status": "sent", "attempts": 1}
    assert entry.after == {"status": "pending"}


# -- SMS and e-mail ----------------------------------------------------------------------------


def test_sms_through_the_log_provider_masks_the_phone(make_app, database_url, caplog):
    app = make_app(database_url, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        stock()
        number = place(buyer(openid=None, phone=PHONE).id)
        with caplog.at_level(logging.INFO, logger="koudai_flask.notifications"):
            pay(number)
        [sent] = sms.get_provider().sent
        text = f"【Koudai Shop】您的订单{number}已付款¥258.00，我们会尽快发货。"
        assert (sent.phone, sent.text) == (PHONE, text)
        assert f"SMS to 138****8000: {text[:20]}…" in caplog.messages
        assert PHONE not in caplog.text
        [row] = rows(number)
        assert (row.channel, row.recipient, row.status) == ("sms", PHONE, "sent")
        assert row.provider_message_id == sent.message_id


def test_a_partial_refund_is_texted_and_one_made_on_a_marketplace_is_not(make_app, database_url):
    app = make_app(database_url, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        stock()
        customer = buyer(openid=None, phone=PHONE).id
        mirrored, number = place(customer), place(customer)
        pay(mirrored)
        pay(number)
        before = len(sms.get_provider().sent)
        orders.refund(mirrored, amount=100, actor="channel:tb")  # the marketplace told them
        assert len(sms.get_provider().sent) == before
        assert [n.event for n in rows(mirrored)] == ["paid"]

        orders.refund(number, lines={"SHIRT": 1}, actor="staff:1")
        assert sms.get_provider().sent[-1].text == (
            f"【Koudai Shop】您的订单{number}已部分退款，累计退款¥129.00，款项将原路退回。"
        )
        assert summary(number)[-1] == ("partially_refunded", "sms", "sent", 1)


def test_each_partial_refund_is_texted_with_what_was_refunded_up_to_it(make_app, database_url):
    """Two parts refunded one after the other: two texts, ¥10.00 then ¥30.00 in all; the
    outbox event of the first delivered again sends nothing more, and sending the first
    text again later still says ¥10.00."""
    app = make_app(database_url, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        stock()
        number = place(buyer(openid=None, phone=PHONE).id)
        pay(number)
        orders.refund(number, amount=1000, actor="staff:1")
        orders.refund(number, amount=2000, actor="staff:1")
        texts = [m.text for m in sms.get_provider().sent if "部分退款" in m.text]
        assert texts == [
            f"【Koudai Shop】您的订单{number}已部分退款，累计退款¥10.00，款项将原路退回。",
            f"【Koudai Shop】您的订单{number}已部分退款，累计退款¥30.00，款项将原路退回。",
        ]
        first, second = [n for n in rows(number) if n.event == "partially_refunded"]
        assert first.occurrence < second.occurrence
        notifications.on_order_event(
            "order.partially_refunded", {"number": number, "refund_id": first.occurrence}
        )
        assert [n.event for n in rows(number)].count("partially_refunded") == 2
        assert len([m for m in sms.get_provider().sent if "部分退款" in m.text]) == 2
        notifications.resend(first.id, actor="staff:1")
        assert sms.get_provider().sent[-1].text == texts[0]


def test_an_agreed_return_texts_the_buyer_where_to_send_the_goods(make_app, database_url):
    from koudai_flask.services import returns

    app = make_app(database_url, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        stock()
        number = place(buyer(openid=None, phone=PHONE).id)
        pay(number)
        orders.ship(number, carrier="shunfeng", tracking_number="SF300001")
        orders.request_refund(number, reason="尺码不合适", actor="buyer", returning=True)
        to = {"name": "售后组", "phone": "0571-88886666", "address": "杭州市文三路 90 号"}
        returns.agree(number, actor="staff:1", address=to)
        assert sms.get_provider().sent[-1].text == (
            f"【Koudai Shop】商家已同意您订单{number}的退货，请将商品寄回："
            "售后组 0571-88886666 杭州市文三路 90 号。寄出后请在订单页填写运单号。"
        )
        assert summary(number)[-1] == ("return_agreed", "sms", "sent", 1)
        returns.agree(number, actor="staff:1", address=to)  # again: nothing new, no second text
        assert summary(number)[-1] == ("return_agreed", "sms", "sent", 1)
        assert [n.event for n in rows(number)].count("return_agreed") == 1


class FlakyProvider:
    """An SMS gateway that times out a few times first (built from KOUDAI_SMS)."""

    def __init__(self, *, fail_first: int, signature: str) -> None:
        self.fail_first = fail_first
        self.signature = signature
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> str:
        if self.fail_first:
            self.fail_first -= 1
            raise TemporaryFailure(f"gateway timeout sending to {phone}")
        self.sent.append((phone, text))
        return f"{self.signature}-{len(self.sent)}"


def test_a_provider_that_keeps_failing_is_sent_again_by_the_relay(make_app, database_url):
    app = make_app(
        database_url,
        KOUDAI_SMS={
            "provider": "tests.test_notifications:FlakyProvider",
            "fail_first": 4,
            "signature": "flaky",
        },
    )
    with app.app_context():
        stock()
        number = place(buyer(openid=None, phone=PHONE).id)
        pay(number)  # the first try and three inline retries all time out
        [row] = rows(number)
        assert (row.status, row.attempts) == ("failed", 4)
        assert row.last_error == "TemporaryFailure: gateway timeout sending to 138****8000"
        paid_event = session().scalar(select(OutboxEvent).where(OutboxEvent.topic == "order.paid"))
        assert paid_event.status == "pending"  # kept for the relay
        assert paid_event.last_error == (
            f"TemporaryFailure('order {number}: 1 notification(s) not sent yet')"
        )
        assert relay_outbox() >= 1
        assert summary(number) == [("paid", "sms", "sent", 5)]
        assert sms.get_provider().sent == [(PHONE, sms.get_provider().sent[0][1])]
        assert rows(number)[0].provider_message_id == "flaky-1"
        assert session().get(OutboxEvent, paid_event.id).status == "done"


class BrokenProvider:
    """An SMS gateway client that fails with the phone number in its error."""

    def send(self, phone: str, text: str) -> str:
        raise RuntimeError(f"POST https://sms.example.com/send?mobile={phone} failed")


def test_an_unexpected_error_is_retried_without_the_phone_number(make_app, database_url, caplog):
    app = make_app(database_url, KOUDAI_SMS={"provider": "tests.test_notifications:BrokenProvider"})
    with app.app_context():
        stock()
        number = paid_quietly(app, buyer(openid=None, phone=PHONE).id)
        [row] = notifications.plan(number, "paid")
        masked = "RuntimeError: POST https://sms.example.com/send?mobile=138****8000 failed"
        with pytest.raises(TemporaryFailure) as raised:
            notifications.send(row.id)
        assert raised.value.message == f"notification {row.id}: {masked}"
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        [row] = rows(number)
        assert (row.status, row.last_error) == ("failed", masked)
        assert "in send\n" in caplog.text  # the traceback is logged, its values are not
        assert PHONE not in caplog.text


def test_phone_numbers_are_masked():
    assert sms.mask_phone("13800138000") == "138****8000"
    assert sms.mask_phone("+86 138 0013 8000") == "861****8000"
    assert sms.mask_phone("12345") == "*****"
    assert sms.mask_phones_in("to 13800138000 and +86 139-0013-9000, code 42001") == (
        "to 138****8000 and 861****9000, code 42001"
    )


def test_a_guest_is_texted_at_the_address_phone(make_app, database_url):
    app = make_app(database_url, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        stock()
        number = place(None, address=ADDRESS)
        pay(number)
        assert [s.phone for s in sms.get_provider().sent] == ["13900139000"]
        assert summary(number) == [("paid", "sms", "sent", 1)]


def test_every_event_tells_the_buyer_in_words_of_its_own(make_app, database_url):
    app = make_app(database_url, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        stock()
        number = place(buyer(openid=None, phone=PHONE).id)
        pay(number)
        orders.ship(number, carrier="shunfeng", tracking_number="SF1000000001")
        orders.deliver(number)
        orders.request_refund(number, reason="size")
        orders.refund(number)
        texts = [s.text for s in sms.get_provider().sent]
        assert texts == [
            f"【Koudai Shop】您的订单{number}已付款¥258.00，我们会尽快发货。",
            f"【Koudai Shop】您的订单{number}已发货，顺丰速运运单号SF1000000001。",
            f"【Koudai Shop】您的订单{number}已签收，感谢您的惠顾。",
            f"【Koudai Shop】您的订单{number}已退款¥258.00，款项将原路退回。",
        ]
        assert [(e, s) for e, _, s, _ in summary(number)] == [
            ("paid", "sent"),
            ("shipped", "sent"),
            ("delivered", "sent"),
            ("refunded", "sent"),
        ]


def test_an_english_shop_writes_english(make_app, database_url, wechat):
    app = make_app(
        database_url,
        KOUDAI_DEFAULT_LOCALE="en",
        KOUDAI_SMS={"provider": "log"},
        KOUDAI_WECHAT=wechat.settings_for_client(),
    )
    with app.app_context():
        stock()
        notifications.save_template("paid", "wechat", wechat_template_id="TPL_PAID_01")
        number = place(buyer(phone=PHONE).id)
        pay(number)
        [sent] = sms.get_provider().sent
        assert sent.text == (
            f"[Koudai Shop] Order {number} is paid (¥258.00); we will ship it soon."
        )
        assert wechat.api.messages[0].data["keyword3"] == {"value": "Paid"}


def mail_settings(smtp: SmtpServer) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": smtp.port, "sender": "小店 <shop@example.com>"}


def test_email_goes_out_over_smtp_with_text_and_html(make_app, database_url, smtp):
    app = make_app(database_url, KOUDAI_MAIL=mail_settings(smtp), SERVER_NAME="shop.example.com")
    with app.app_context():
        stock()
        number = place(buyer(openid=None, email="buyer@example.com").id)
        pay(number)
        [mail] = smtp.state.received
        assert mail.mail_from == "shop@example.com"
        assert mail.rcpt_tos == ["buyer@example.com"]
        message = mail.message
        assert message["Subject"] == f"Koudai Shop：订单{number}已付款"
        assert message["To"] == "buyer@example.com"
        url = f"http://shop.example.com/shop/orders/{number}"
        text = message.get_body(("plain",)).get_content()
        assert text == (
            f"您好，\n\n我们已收到订单{number}的付款¥258.00，会尽快为您发货。\n\n"
            f"查看订单：{url}\n\nKoudai Shop\n"
        )
        html = message.get_body(("html",)).get_content()
        assert f'<a href="{url}">{url}</a>' in html
        [row] = rows(number)
        assert (row.channel, row.recipient, row.status) == ("email", "buyer@example.com", "sent")
        assert row.provider_message_id == message["Message-ID"]


def test_a_refused_mailbox_fails_for_good_and_a_busy_one_is_retried(make_app, database_url, smtp):
    app = make_app(database_url, KOUDAI_MAIL=mail_settings(smtp))
    with app.app_context():
        stock()
        customer = buyer(openid=None, email="buyer@example.com")
        smtp.state.rcpt_replies = [550]
        refused = place(customer.id)
        pay(refused)
        [row] = rows(refused)
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.last_error == "PermanentFailure: SMTP recipient refused (550)"
        smtp.state.rcpt_replies = [451]
        busy = place(customer.id)
        pay(busy)
        assert summary(busy) == [("paid", "email", "sent", 2)]
        assert len(smtp.state.received) == 1


# -- what is planned ---------------------------------------------------------------------------


def test_channels_that_are_not_configured_plan_nothing(make_app, database_url, wechat):
    app = make_app(database_url)
    with app.app_context():
        stock()
        customer = buyer(phone=PHONE, email="buyer@example.com")
        number = place(customer.id, address=ADDRESS)
        pay(number)
        assert notifications.plan(number, "paid") == []
        # WeChat set up but no template id for the event: still nothing.
        app.config["KOUDAI_WECHAT"] = wechat.settings_for_client()
        assert notifications.plan(number, "paid") == []
        assert session().scalar(select(func.count()).select_from(Notification)) == 0
    assert wechat.api.send_calls == 0


def test_each_configured_channel_is_planned_once(make_app, database_url, wechat, smtp):
    app = make_app(
        database_url,
        KOUDAI_WECHAT=wechat.settings_for_client(),
        KOUDAI_SMS={"provider": "log"},
        KOUDAI_MAIL=mail_settings(smtp),
    )
    with app.app_context():
        stock()
        notifications.save_template("paid", "wechat", wechat_template_id="TPL_PAID_01")
        number = place(buyer(phone=PHONE, email="buyer@example.com").id)
        pay(number)
        assert summary(number) == [
            ("paid", "wechat", "sent", 1),
            ("paid", "sms", "sent", 1),
            ("paid", "email", "sent", 1),
        ]
        assert [n.channel for n in notifications.plan(number, "paid")] == ["wechat", "sms", "email"]
        assert session().scalar(select(func.count()).select_from(Notification)) == 3
    assert (len(wechat.api.messages), len(smtp.state.received)) == (1, 1)


# -- templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("您的订单{{ order_number ", "unexpected end of template"),
        ("{{ ''.__class__.__mro__ }}", "is unsafe"),
        ("{{ order_number.__class__ }}", "is unsafe"),
        ("{{ customer_password }}", "'customer_password' is undefined"),
    ],
)
def test_a_broken_or_unsafe_template_is_refused(app, body, reason):
    with pytest.raises(ValidationError, match=reason):
        notifications.save_template("paid", "sms", body=body)
    assert session().scalar(select(func.count()).select_from(MessageTemplate)) == 0


def test_a_wechat_template_must_name_its_fields(app):
    with pytest.raises(ValidationError, match="must read 'field: text'"):
        notifications.save_template("paid", "wechat", body="订单已付款", wechat_template_id="T1")
    with pytest.raises(ValidationError, match="WeChat only"):
        notifications.save_template("paid", "sms", wechat_template_id="T1")
    assert session().scalar(select(func.count()).select_from(MessageTemplate)) == 0


def test_a_saved_template_is_used_and_audited(make_app, database_url):
    app = make_app(database_url, KOUDAI_SMS={"provider": "log"})
    with app.app_context():
        stock()
        notifications.save_template(
            "paid",
            "sms",
            body="{{ shop_name }}：{{ order_number }} 收到 {{ total }}",
            actor="staff-1",
        )
        number = place(buyer(openid=None, phone=PHONE).id)
        pay(number)
        assert [s.text for s in sms.get_provider().sent] == [f"Koudai Shop：{number} 收到 ¥258.00"]
        entry = session().scalar(select(AuditEntry).where(AuditEntry.action == "template.save"))
        assert (entry.actor, entry.object_type, entry.before) == (
            "staff-1",
            "message_template",
            None,
        )


# -- the sandbox itself ------------------------------------------------------------------------


def test_the_sandbox_checks_credentials_and_tokens(wechat):
    stable = f"{wechat.url}/cgi-bin/stable_token"
    good = {"grant_type": "client_credential", "appid": wechat.api.appid}
    assert requests.post(stable, json={**good, "secret": "wrong"}, timeout=5).json() == {
        "errcode": 40125,
        "errmsg": "invalid appsecret",
    }
    issued = requests.post(stable, json={**good, "secret": wechat.api.secret}, timeout=5).json()
    assert issued["expires_in"] == 7200
    again = requests.post(stable, json={**good, "secret": wechat.api.secret}, timeout=5).json()
    assert again["access_token"] == issued["access_token"]  # stable: the same token
    send = f"{wechat.url}/cgi-bin/message/template/send"
    body = {"touser": OPENID, "template_id": "T", "data": {"keyword1": {"value": "x"}}}
    assert requests.post(send, json=body, timeout=5).json()["errcode"] == 41001
    assert (
        requests.post(f"{send}?access_token=nope", json=body, timeout=5).json()["errcode"] == 40001
    )
    answer = requests.post(f"{send}?access_token={issued['access_token']}", json=body, timeout=5)
    assert answer.json() == {"errcode": 0, "errmsg": "ok", "msgid": wechat.api.messages[0].msgid}
    wechat.expire_all()
    expired = requests.post(f"{send}?access_token={issued['access_token']}", json=body, timeout=5)
    assert expired.json() == {"errcode": 42001, "errmsg": "access_token expired"}
    assert (wechat.api.token_requests, wechat.api.token_issues) == (3, 1)


# -- through the outbox on RQ ------------------------------------------------------------------


def test_the_rq_worker_sends_the_message(make_app, database_url, redis_url, wechat):
    app = make_app(
        database_url,
        KOUDAI_JOBS="rq",
        KOUDAI_REDIS_URL=redis_url,
        KOUDAI_QUEUE_NAME=f"koudai-test-{uuid.uuid4().hex[:8]}",
        KOUDAI_WECHAT=wechat.settings_for_client(),
    )

    def work() -> None:
        SimpleWorker(
            [get_queue(app)], connection=redis_connection(app), job_class=job_class_for(app)
        ).work(burst=True)

    with app.app_context():
        stock()
        notifications.save_template("paid", "wechat", wechat_template_id="TPL_PAID_01")
        number = place(buyer().id)
        work()
        pay(number)
        assert wechat.api.messages == []  # nothing is sent before a worker runs
        work()
        [message] = wechat.api.messages
        assert (message.touser, message.data["keyword1"]) == (OPENID, {"value": number})
        assert summary(number) == [("paid", "wechat", "sent", 1)]
        get_queue(app).delete(delete_jobs=True)
