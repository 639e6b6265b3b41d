"""The seller's memo and flag (卖家备注, 旗帜) synced with Taobao trades both ways, against the
TOP sandbox on 127.0.0.1: imported with the trade (and the buyer's message into the note), a
change in the seller's back office comes in by TMC and is not pushed back, a change here is
pushed with ``taobao.trade.memo.update`` (an empty memo as ``reset=true``), a change still on
its way wins over the channel's, a second change during a push keeps it due, failures follow
the sync rules; the sandbox's own refusals, signature check and memo page. On SQLite and
PostgreSQL; the race on RQ."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.connectors.errors import PermanentFailure
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.sandbox.taobao.memos import TOPIC as MEMO_TOPIC
from koudai_flask.connectors.taobao import TaobaoAdapter, TopClient
from koudai_flask.connectors.taobao.client import format_time, parse_time
from koudai_flask.connectors.taobao.connector import TaobaoConnector
from koudai_flask.extension import get_state
from koudai_flask.jobs import sync
from koudai_flask.models import Order, OrderMemo, OutboxEvent
from koudai_flask.services import channels, order_memo, order_sync, sync_log
from tests.sync_support import LinkedShop, drain, link_shop, rq_config, seed_shirts
from tests.taobao_support import ClientFactory, adapter, make_client, session

__all__ = ["adapter", "make_client", "session"]  # the fixtures these tests use

pytestmark = pytest.mark.services_only

UPDATE = "taobao.trade.memo.update"


@pytest.fixture
def sandbox() -> Iterator[TaobaoSandbox]:
    with TaobaoSandbox() as server:
        yield server


@pytest.fixture
def shop(app: Flask, sandbox: TaobaoSandbox) -> LinkedShop:
    seed_shirts(stock=10)
    return link_shop(app, sandbox)


def imported(sandbox: TaobaoSandbox, shop: LinkedShop, **options: Any) -> tuple[int, str]:
    """A paid trade on Taobao, imported by the periodic tick: ``(tid, our order number)``."""
    trade = sandbox.add_trade([(shop.item.num_iid, shop.sku_id("SHIRT-W"), 1)], **options)
    sync.sync_tick()
    return trade["tid"], number_of(trade["tid"])


def number_of(tid: int) -> str:
    session = get_state().session
    number = session.scalar(select(Order.number).where(Order.external_id == str(tid)))
    session.rollback()
    assert number is not None
    return number


def memo(number: str) -> tuple[str, int, int, bool, str] | None:
    """Our memo row of the order: ``(memo, flag, version, push_pending, updated_by)``."""
    session = get_state().session
    session.rollback()  # see what jobs committed
    row = session.scalar(
        select(OrderMemo).join(Order, Order.id == OrderMemo.order_id).where(Order.number == number)
    )
    found = (
        None if row is None else (row.memo, row.flag, row.version, row.push_pending, row.updated_by)
    )
    session.rollback()
    return found


def memo_events(number: str) -> list[dict[str, Any]]:
    session = get_state().session
    session.rollback()
    payloads = [
        dict(event.payload)
        for event in session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.topic == order_memo.TOPIC)
            .order_by(OutboxEvent.id)
        )
        if event.payload["number"] == number
    ]
    session.rollback()
    return payloads


def bump_modified(sandbox: TaobaoSandbox, tid: int, seconds: int) -> None:
    """The trade changes on Taobao for a reason that leaves its memo alone."""
    with sandbox.state.lock:
        trade = sandbox.state.trades[tid]
        trade["modified"] = format_time(parse_time(trade["modified"]) + timedelta(seconds=seconds))


# -- in: with the trade ----------------------------------------------------------------------


def test_a_trade_imports_with_its_memo_flag_and_the_buyers_message(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid, number = imported(
        sandbox,
        shop,
        buyer_nick="买家一号",
        buyer_message="请周六送货，谢谢",
        seller_memo="已电话确认地址",
        seller_flag=2,
    )
    session = get_state().session
    order = session.scalar(select(Order).where(Order.number == number))
    assert order is not None and order.note == "taobao buyer 买家一号: 请周六送货，谢谢"
    session.rollback()
    assert memo(number) == ("已电话确认地址", 2, 1, False, "channel:tb")
    [event] = memo_events(number)
    assert (event["origin"], event["push"], event["previous"]) == (
        "tb",
        False,
        {"memo": "", "flag": 0},
    )
    assert sandbox.calls[UPDATE] == 0  # Taobao's own memo is not sent back to it

    # A trade with neither: no memo row, the note as before.
    _, plain = imported(sandbox, shop)
    plain_order = session.scalar(select(Order).where(Order.number == plain))
    assert plain_order is not None and plain_order.note == "taobao buyer sandbox_buyer"
    session.rollback()
    assert memo(plain) is None and memo_events(plain) == []


def test_a_long_buyer_message_is_cut_to_what_a_note_holds(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    _, number = imported(sandbox, shop, buyer_nick="nick", buyer_message="留" * 600)
    session = get_state().session
    note = session.scalar(select(Order.note).where(Order.number == number))
    session.rollback()
    assert note == "taobao buyer nick: " + "留" * (500 - 20) + "…"
    assert len(note) == 500


def test_a_memo_changed_in_the_sellers_back_office_comes_in_and_is_not_pushed_back(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid, number = imported(sandbox, shop)
    assert memo(number) is None

    sandbox.set_memo(tid, "顺丰到付", 1)
    assert sandbox.published(MEMO_TOPIC)[-1][1]["tid"] == tid
    sync.sync_tick()  # TMC: TradeMemoModified → the trade is read again
    assert memo(number) == ("顺丰到付", 1, 1, False, "channel:tb")

    sandbox.set_memo(tid, flag=3)  # only the flag
    sync.sync_tick()
    assert memo(number) == ("顺丰到付", 3, 2, False, "channel:tb")

    sandbox.set_memo(tid, "")  # cleared there: cleared here
    sync.sync_tick()
    assert memo(number) == ("", 3, 3, False, "channel:tb")
    assert [e["push"] for e in memo_events(number)] == [False, False, False]
    assert sandbox.calls[UPDATE] == 0


def test_a_changed_memo_is_an_updated_import_and_the_same_trade_again_is_stale(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid, number = imported(sandbox, shop)
    connector = sync.build_connector(channels.info("tb"))
    assert connector is not None
    try:
        sandbox.set_memo(tid, "加急", 1)
        remote = connector.fetch_order(str(tid))
        assert (remote.memo, remote.flag, remote.buyer_message) == ("加急", 1, "")
        assert order_sync.import_order("tb", remote) == order_sync.ImportResult("updated", number)
        assert order_sync.import_order("tb", remote).outcome == "stale"
        bump_modified(sandbox, tid, 5)  # newer, memo as it was
        again = connector.fetch_order(str(tid))
        assert order_sync.import_order("tb", again).outcome == "unchanged"
    finally:
        connector.close()
    assert memo(number) == ("加急", 1, 1, False, "channel:tb")


# -- out: a change made here -------------------------------------------------------------------


def test_a_memo_changed_here_goes_to_the_trade_and_an_empty_one_clears_it_there(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid, number = imported(sandbox, shop, seller_memo="旧备注", seller_flag=1)
    published = len(sandbox.published(MEMO_TOPIC))

    order_memo.set_memo(number, memo="送礼，不要发票", flag=4, actor="staff:x")
    assert sandbox.memo_of(tid) == ("送礼，不要发票", 4)
    assert sandbox.calls[UPDATE] == 1
    assert memo(number) == ("送礼，不要发票", 4, 2, False, "staff:x")
    assert memo_events(number)[-1]["push"] is True
    # Taobao tells of the change (ours too); reading it back changes nothing and sends nothing.
    assert len(sandbox.published(MEMO_TOPIC)) == published + 1
    sync.sync_tick()
    assert memo(number) == ("送礼，不要发票", 4, 2, False, "staff:x")
    assert sandbox.calls[UPDATE] == 1

    # An empty memo is reset=true: without it TOP would keep the old one.
    order_memo.set_memo(number, memo="", actor="staff:x")
    assert sandbox.memo_of(tid) == ("", 4)
    assert sandbox.calls[UPDATE] == 2
    assert memo(number) == ("", 4, 3, False, "staff:x")
    sync.sync_tick()
    assert sandbox.calls[UPDATE] == 2 and memo(number) == ("", 4, 3, False, "staff:x")


def test_a_change_still_on_its_way_wins_over_an_import_until_its_push_went_out(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid, number = imported(sandbox, shop, seller_memo="A", seller_flag=1)
    sandbox.fail_next(1, "isp", method=UPDATE)  # a temporary refusal: retried later
    order_memo.set_memo(number, memo="B", flag=2, actor="staff:x")
    assert sandbox.memo_of(tid) == ("A", 1)
    assert memo(number) == ("B", 2, 2, True, "staff:x")

    # The trade is read again (it changed for another reason) with Taobao's old memo.
    bump_modified(sandbox, tid, 5)
    sync.run_channel_job(channels.info("tb").id, "import_order", [str(tid)])
    assert memo(number) == ("B", 2, 2, True, "staff:x")
    # ... and so is a change the seller made there meanwhile.
    sandbox.set_memo(tid, "C", 3)
    sync.run_channel_job(channels.info("tb").id, "poll_messages", [])
    assert memo(number) == ("B", 2, 2, True, "staff:x")
    assert [e["origin"] for e in memo_events(number)] == ["tb", None]

    # The periodic tick sends what is still due.
    sync.sync_tick()
    assert sandbox.memo_of(tid) == ("B", 2)
    assert memo(number) == ("B", 2, 2, False, "staff:x")
    assert sandbox.calls[UPDATE] == 2  # the refused call and this one

    # Once it went out, the latest change wins again: the seller's.
    sandbox.set_memo(tid, "D", 5)
    sync.sync_tick()
    assert memo(number) == ("D", 5, 3, False, "channel:tb")


def test_a_change_made_while_the_channel_is_paused_goes_out_when_it_is_back(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid, number = imported(sandbox, shop)
    channels.set_active("tb", False)
    order_memo.set_memo(number, memo="暂停时的备注", flag=5, actor="staff:x")
    sync.sync_tick()
    assert sandbox.calls[UPDATE] == 0 and sandbox.memo_of(tid) == ("", 0)
    assert memo(number) == ("暂停时的备注", 5, 1, True, "staff:x")
    channels.set_active("tb", True)
    sync.sync_tick()
    assert sandbox.memo_of(tid) == ("暂停时的备注", 5)
    assert memo(number) == ("暂停时的备注", 5, 1, False, "staff:x")


def test_push_failures_follow_the_sync_rules(sandbox: TaobaoSandbox, shop: LinkedShop) -> None:
    tid, number = imported(sandbox, shop)
    # An expired session is renewed with the refresh token, and the push runs again.
    sealed = channels.info("tb").settings["access_token"]
    sandbox.fail_next(1, "session_expired", method=UPDATE)
    order_memo.set_memo(number, memo="续期后发出", flag=1, actor="staff:x")
    assert sandbox.memo_of(tid) == ("续期后发出", 1)
    assert channels.info("tb").settings["access_token"] != sealed
    assert memo(number) == ("续期后发出", 1, 1, False, "staff:x")
    assert sync_log.dead_letters("tb") == []

    # A permanent refusal is a dead letter; the tick leaves it to a person, who requeues it.
    sandbox.fail_next(1, "isv", method=UPDATE)
    order_memo.set_memo(number, memo="被拒", actor="staff:x")
    letters = sync_log.dead_letters("tb")
    assert [(d.job, d.arguments, d.error_kind) for d in letters] == [
        ("push_memo", [number], "PermanentFailure")
    ]
    calls = sandbox.calls[UPDATE]
    sync.sync_tick()
    assert sandbox.calls[UPDATE] == calls
    assert memo(number) == ("被拒", 1, 2, True, "staff:x")
    sync.requeue(letters[0].id, by="test")
    assert sandbox.memo_of(tid) == ("被拒", 1)
    assert memo(number) == ("被拒", 1, 2, False, "staff:x")
    assert sync_log.dead_letters("tb") == []


@pytest.fixture
def rq_app(make_app, database_url: str, redis_url: str) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = make_app(database_url, **rq_config(redis_url))
    with app.app_context():
        yield app


def test_a_second_change_during_a_push_keeps_it_due_and_goes_out_next(
    rq_app: Flask, sandbox: TaobaoSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_shirts(stock=10)
    shop = link_shop(rq_app, sandbox)
    drain(rq_app)
    trade = sandbox.add_trade([(shop.item.num_iid, shop.sku_id("SHIRT-W"), 1)])
    sync.sync_tick()
    drain(rq_app)
    number = number_of(trade["tid"])

    push, record = TaobaoConnector.push_memo, order_memo.record_pushed
    recorded: list[tuple[int, bool, bool]] = []

    def push_while_staff_change_it(self: TaobaoConnector, *args: Any) -> None:
        if not recorded and sandbox.calls[UPDATE] == 0:
            # Made while the first push is on its way to Taobao.
            order_memo.set_memo(number, memo="second", flag=3, actor="staff:y")
        push(self, *args)

    def spy(number: str, version: int) -> bool:
        cleared = record(number, version)
        row = memo(number)
        assert row is not None
        recorded.append((version, cleared, row[3]))
        return cleared

    monkeypatch.setattr(TaobaoConnector, "push_memo", push_while_staff_change_it)
    monkeypatch.setattr(order_memo, "record_pushed", spy)
    order_memo.set_memo(number, memo="first", flag=1, actor="staff:x")
    drain(rq_app)
    # The first push could not clear what changed meanwhile; the change's own push did.
    assert recorded == [(1, False, True), (2, True, False)]
    assert sandbox.memo_of(trade["tid"]) == ("second", 3)
    assert sandbox.calls[UPDATE] == 2
    assert memo(number) == ("second", 3, 2, False, "staff:y")


# -- the sandbox's taobao.trade.memo.update ------------------------------------------------


def test_memo_update_answers_trade_and_modified_and_keeps_reset_semantics(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter, make_client: ClientFactory
) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    tid = sandbox.add_trade([(num_iid, None, 1)], seller_memo="老备注", seller_flag=1)["tid"]
    before = sandbox.state.trades[tid]["modified"]
    client = make_client()
    form = client.signed_form(UPDATE, {"tid": tid, "memo": "新备注", "flag": 2})
    body = requests.post(sandbox.gateway_url, data=form, timeout=5).json()
    answer = body["trade_memo_update_response"]
    assert set(answer) == {"trade", "request_id"}
    assert answer["trade"] == {"tid": tid, "modified": sandbox.state.trades[tid]["modified"]}
    assert parse_time(answer["trade"]["modified"]) > parse_time(before)
    assert sandbox.memo_of(tid) == ("新备注", 2)
    assert sandbox.published(MEMO_TOPIC)[-1] == (
        MEMO_TOPIC,
        {
            "tid": tid,
            "oid": sandbox.state.trades[tid]["orders"]["order"][0]["oid"],
            "buyer_nick": "sandbox_buyer",
            "seller_nick": "sandbox_koudai_shop",
            "payment": "59.00",
            "type": "guarantee_trade",
        },
    )
    # reset false and no memo: the memo stays, the flag changes.
    client.call(UPDATE, tid=tid, flag=4)
    assert sandbox.memo_of(tid) == ("新备注", 4)
    # reset true clears it whatever memo says.
    client.call(UPDATE, tid=tid, flag=4, memo="ignored", reset="true")
    assert sandbox.memo_of(tid) == ("", 4)
    # The same values again change nothing and tell nothing.
    messages, modified = len(sandbox.published(MEMO_TOPIC)), sandbox.state.trades[tid]["modified"]
    adapter.update_memo(tid, "", 4)
    assert len(sandbox.published(MEMO_TOPIC)) == messages
    assert sandbox.state.trades[tid]["modified"] == modified
    # The adapter's own answer and the trade read back.
    assert adapter.update_memo(tid, "再改", 0) == parse_time(sandbox.state.trades[tid]["modified"])
    trade = adapter.trade(tid)
    assert (trade.seller_memo, trade.seller_flag, trade.buyer_message) == ("再改", 0, "")


def test_memo_update_refusals_are_top_errors_and_change_nothing(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    tid = sandbox.add_trade([(num_iid, None, 1)], seller_memo="原样", seller_flag=3)["tid"]
    published = sandbox.published()
    with pytest.raises(PermanentFailure, match="isv.trade-not-exist"):
        adapter.update_memo(tid + 1, "x", 1)
    with pytest.raises(PermanentFailure, match=r"error 15 .*isv.invalid-parameter:flag"):
        adapter.client.call(UPDATE, tid=tid, flag=6, memo="x")
    with pytest.raises(PermanentFailure, match=r"error 41 Invalid arguments .*flag"):
        adapter.client.call(UPDATE, tid=tid, flag="red", memo="x")
    with pytest.raises(PermanentFailure, match="isv.invalid-parameter:memo"):
        adapter.client.call(UPDATE, tid=tid, flag=1, memo="长" * 1001)
    with pytest.raises(PermanentFailure, match="error 40 .*tid"):
        adapter.client.call(UPDATE, flag=1, memo="x")
    assert sandbox.calls[UPDATE] == 5
    with pytest.raises(ValueError, match="0..5"):
        adapter.update_memo(tid, "x", 6)  # refused before any call
    assert sandbox.calls[UPDATE] == 5
    assert sandbox.memo_of(tid) == ("原样", 3)
    assert sandbox.published() == published
    adapter.update_memo(tid, "长" * 1000, 5)  # the limit itself is fine
    assert sandbox.memo_of(tid) == ("长" * 1000, 5)


@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
def test_memo_update_is_signed_and_a_wrong_secret_or_a_changed_memo_is_refused(
    sandbox: TaobaoSandbox, make_client: ClientFactory, session: str, sign_method: str
) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    tid = sandbox.add_trade([(num_iid, None, 1)])["tid"]
    wrong = TopClient(
        sandbox.gateway_url, sandbox.app_key, "not-the-secret", session, sign_method, 5.0
    )
    with pytest.raises(PermanentFailure, match="error 25 Invalid signature"):
        TaobaoAdapter(wrong).update_memo(tid, "伪造", 1)
    wrong.close()
    # The memo is signed like every parameter: changed after signing, the call is refused.
    client = make_client(sign_method=sign_method)
    form = client.signed_form(UPDATE, {"tid": tid, "memo": "原文", "flag": 1})
    body = requests.post(sandbox.gateway_url, data={**form, "memo": "改过"}, timeout=5).json()
    assert (body["error_response"]["code"], body["error_response"]["msg"]) == (
        25,
        "Invalid signature",
    )
    assert sandbox.memo_of(tid) == ("", 0)
    TaobaoAdapter(client).update_memo(tid, "原文", 1)
    assert sandbox.memo_of(tid) == ("原文", 1)


# -- the sandbox seller's memo page ----------------------------------------------------------


def test_the_memo_page_shows_and_sets_a_trades_memo_as_the_seller(
    sandbox: TaobaoSandbox, adapter: TaobaoAdapter
) -> None:
    num_iid = sandbox.add_item("帆布包", "59.00", 30).num_iid
    tid = sandbox.add_trade(
        [(num_iid, None, 1)], buyer_message="<b>请包装好</b>", seller_memo="待核对"
    )["tid"]
    assert 'href="/sandbox/memos"' in requests.get(sandbox.url + "/", timeout=5).text
    page = requests.get(sandbox.url + "/sandbox/memos", timeout=5)
    assert page.status_code == 200
    assert f'id="trade-{tid}"' in page.text
    assert "&lt;b&gt;请包装好&lt;/b&gt;" in page.text  # the buyer's text, escaped
    assert ">待核对</textarea>" in page.text
    adapter.tmc_consume()  # what the purchase published

    def post(**form: Any) -> requests.Response:
        return requests.post(
            f"{sandbox.url}/sandbox/memo", data=form, allow_redirects=False, timeout=5
        )

    answer = post(tid=tid, memo=" 已核对 ", flag=1)
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/sandbox/memos")
    assert sandbox.memo_of(tid) == ("已核对", 1)
    assert [(m.topic, m.content["tid"]) for m in adapter.tmc_consume()] == [(MEMO_TOPIC, tid)]
    assert post(tid=tid, memo="", flag=1).status_code == 303  # an empty box clears it
    assert sandbox.memo_of(tid) == ("", 1)
    for form, message in (
        ({"tid": tid, "memo": "x", "flag": 6}, "flag 必须在 0–5 之间"),
        ({"tid": tid + 1, "memo": "x", "flag": 1}, f"交易 {tid + 1} 不存在"),
        ({"tid": tid, "memo": "x" * 1001, "flag": 1}, "memo 最长 1000 个字符"),
    ):
        refused = post(**form)
        assert refused.status_code == 400 and message in refused.text
    assert sandbox.memo_of(tid) == ("", 1)
    assert len(sandbox.published(MEMO_TOPIC)) == 2


def test_reading_a_trade_again_and_again_keeps_one_memo_and_one_event(
    sandbox: TaobaoSandbox, shop: LinkedShop
) -> None:
    tid, number = imported(sandbox, shop, seller_memo="一次", seller_flag=1)
    sandbox.duplicate_next(10)
    for _ in range(3):
        bump_modified(sandbox, tid, 2)
        sandbox.publish("taobao_trade_TradeChanged", {"tid": tid})
        sync.sync_tick()
    session = get_state().session
    assert session.scalar(select(func.count()).select_from(OrderMemo)) == 1
    session.rollback()
    assert len(memo_events(number)) == 1
    assert memo(number) == ("一次", 1, 1, False, "channel:tb")
