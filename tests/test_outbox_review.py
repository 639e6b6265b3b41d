"""Outbox events that gave up: marked dead with their last error (inline and on RQ), the
back office's background jobs page and ``flask koudai outbox`` to send them again or
discard them, the dashboard's warning, and who may do it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from koudai_flask import Koudai
from koudai_flask.extension import get_state
from koudai_flask.jobs.outbox import MAX_ATTEMPTS, job_id, relay_outbox
from koudai_flask.jobs.queue import get_queue, job_class_for, redis_connection
from koudai_flask.models import AuditEntry, OutboxEvent
from koudai_flask.models.base import utcnow
from koudai_flask.services import catalog, orders, outbox, outbox_review, staff
from tests.test_webhooks_admin import PASSWORD
from tests.test_webhooks_admin import login as login_zh


class Downstream:
    """An ``order.placed`` subscriber that fails while ``down`` is set."""

    def __init__(self) -> None:
        self.down = True
        self.handled: list[str] = []

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        if self.down:
            raise RuntimeError("ERP at 10.0.0.9 refused the connection")
        self.handled.append(payload["number"])


@pytest.fixture
def downstream() -> Downstream:
    return Downstream()


@pytest.fixture
def shop(make_app: Any, database_url: str, downstream: Downstream) -> Flask:
    app = make_app(database_url)
    Koudai.subscribe(app, "order.placed", downstream)
    with app.app_context():
        for role in ("owner", "admin", "customer_service"):
            staff.grant(f"staff:{role}@shop.cn", role, email=f"{role}@shop.cn", password=PASSWORD)
        staff.grant(
            "staff:scoped@shop.cn",
            "admin",
            email="scoped@shop.cn",
            password=PASSWORD,
            channels=["web"],
        )
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 50}])
    return app


def login(app: Flask, who: str) -> Any:
    """A signed-in back-office client reading English (the shop's default is Chinese)."""
    client = login_zh(app, who)
    client.get("/shop-admin/?lang=en")
    return client


def placed_event(number: str) -> OutboxEvent:
    session = get_state().session
    session.expire_all()
    event = session.scalar(
        select(OutboxEvent).where(
            OutboxEvent.topic == "order.placed",
            OutboxEvent.payload["number"].as_string() == number,
        )
    )
    assert event is not None
    return event


def give_up(app: Flask) -> tuple[str, int]:
    """Place an order whose ``order.placed`` fails inline, then relay until it is dead."""
    with app.app_context():
        number = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}]).number
        for _ in range(MAX_ATTEMPTS - 1):
            relay_outbox()
        event = placed_event(number)
        get_state().session.rollback()
        return number, event.id


def audit_actions(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context():
        session = get_state().session
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.object_id)
            .where(AuditEntry.action.like("outbox.%"))
            .order_by(AuditEntry.id)
        ).all()
        return [tuple(row) for row in rows]


def test_an_event_that_fails_every_attempt_inline_is_dead_with_its_error(shop, caplog):
    with caplog.at_level("ERROR", logger="koudai_flask.jobs"):
        number, event_id = give_up(shop)
    with shop.app_context():
        event = placed_event(number)
        assert (event.status, event.attempts) == ("dead", MAX_ATTEMPTS)
        assert event.last_error == "RuntimeError('ERP at 10.0.0.9 refused the connection')"
        assert f"outbox: event {event_id} gave up after {MAX_ATTEMPTS} attempts" in caplog.text
        assert relay_outbox() == 0  # a dead event is not tried again by the relay
        assert placed_event(number).attempts == MAX_ATTEMPTS
        health = outbox_review.health()
        assert (health.counts["dead"], health.counts["pending"]) == (1, 0)
        [dead] = outbox_review.dead_events()
        assert (dead.id, dead.topic, dead.payload["number"]) == (event_id, "order.placed", number)


def test_events_left_pending_past_their_attempts_are_marked_dead_by_the_relay(shop):
    # As an earlier release left them: pending with every attempt spent.
    with shop.app_context():
        session = get_state().session
        session.add(
            OutboxEvent(topic="order.placed", payload={"number": "X"}, attempts=MAX_ATTEMPTS)
        )
        session.commit()
        assert relay_outbox() == 0
        assert outbox_review.health().counts["dead"] == 1


def test_the_owner_sends_a_dead_event_again_once_the_cause_is_fixed(shop, downstream):
    number, event_id = give_up(shop)
    client = login(shop, "owner")
    home = client.get("/shop-admin/").get_data(as_text=True)
    assert 'id="dead-events-warning"' in home and 'href="/shop-admin/jobs"' in home
    page = client.get("/shop-admin/jobs").get_data(as_text=True)
    assert f'data-event="{event_id}"' in page
    assert "RuntimeError(&#39;ERP at 10.0.0.9 refused the connection&#39;)" in page
    assert '<dd id="count-dead">1</dd>' in page

    downstream.down = False
    response = client.post(
        f"/shop-admin/jobs/{event_id}/send-again", data={"csrf_token": client.csrf}
    )
    assert response.status_code == 303
    assert downstream.handled == [number]  # inline: delivered right after the commit
    with shop.app_context():
        event = placed_event(number)
        assert (event.status, event.attempts, event.last_error) == ("done", 0, None)
    assert audit_actions(shop) == [("staff:owner@shop.cn", "outbox.send_again", str(event_id))]
    page = client.get("/shop-admin/jobs").get_data(as_text=True)
    assert "No event gave up." in page and '<dd id="count-dead">0</dd>' in page
    assert 'id="dead-events-warning"' not in client.get("/shop-admin/").get_data(as_text=True)

    again = client.post(
        f"/shop-admin/jobs/{event_id}/send-again",
        data={"csrf_token": client.csrf},
        follow_redirects=True,
    )
    assert "already sent again, handled or discarded" in again.get_data(as_text=True)
    assert downstream.handled == [number]


def test_a_dead_event_sent_again_that_fails_again_waits_for_the_relay(shop, downstream):
    number, event_id = give_up(shop)
    with shop.app_context():
        outbox_review.send_again(event_id, actor="cli")
        event = placed_event(number)
        assert (event.status, event.attempts) == ("pending", 1)  # its attempts started over
        downstream.down = False
        assert relay_outbox() == 1
        assert placed_event(number).status == "done"
        assert downstream.handled == [number]


def test_discarding_keeps_the_reason_and_the_prune_deletes_it_later(shop, downstream):
    number, event_id = give_up(shop)
    client = login(shop, "admin")
    response = client.post(
        f"/shop-admin/jobs/{event_id}/discard",
        data={"csrf_token": client.csrf, "note": "order cancelled by phone", "topic": "order"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/shop-admin/jobs?topic=order"
    with shop.app_context():
        event = placed_event(number)
        assert event.status == "discarded" and event.done_at is not None
        entry = get_state().session.scalar(
            select(AuditEntry).where(AuditEntry.action == "outbox.discard")
        )
        assert entry.after == {"status": "discarded", "note": "order cancelled by phone"}
        assert entry.before["last_error"].startswith("RuntimeError(")
        assert relay_outbox() == 0
        assert outbox_review.health().counts == {
            "pending": 0,
            "enqueued": 0,
            "dead": 0,
            "discarded": 1,
        }
        # Kept as long as done events are, then deleted with them.
        assert outbox.prune(timedelta(days=1)) == 0
        session = get_state().session
        session.execute(OutboxEvent.__table__.update().values(done_at=utcnow() - timedelta(days=2)))
        session.commit()
        done = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status == "done")
        )
        assert outbox.prune(timedelta(days=1)) == done + 1
        assert session.get(OutboxEvent, event_id) is None
    assert downstream.handled == []


def test_send_every_dead_event_again_by_topic(shop, downstream):
    first, first_id = give_up(shop)
    second, second_id = give_up(shop)
    with shop.app_context():  # a dead event of another topic stays dead
        session = get_state().session
        other = OutboxEvent(topic="stock.changed", payload={}, status="dead", attempts=8)
        session.add(other)
        session.commit()
        other_id = other.id
    downstream.down = False
    client = login(shop, "owner")
    page = client.get("/shop-admin/jobs?topic=order.placed").get_data(as_text=True)
    assert f'data-event="{first_id}"' in page and f'data-event="{other_id}"' not in page
    response = client.post(
        "/shop-admin/jobs/send-again",
        data={"csrf_token": client.csrf, "topic": "order.placed"},
        follow_redirects=True,
    )
    assert "2 event(s) sent again." in response.get_data(as_text=True)
    assert downstream.handled == [first, second]  # oldest first
    with shop.app_context():
        assert [e.id for e in outbox_review.dead_events()] == [other_id]
    assert audit_actions(shop)[-1] == ("staff:owner@shop.cn", "outbox.send_all_again", "dead")
    nothing = client.post(
        "/shop-admin/jobs/send-again",
        data={"csrf_token": client.csrf, "topic": "order.placed"},
        follow_redirects=True,
    )
    assert "No dead event to send." in nothing.get_data(as_text=True)


def test_only_unscoped_staff_managers_see_or_act_on_background_jobs(shop, downstream):
    number, event_id = give_up(shop)
    for who in ("customer_service", "scoped"):
        client = login(shop, who)
        assert client.get("/shop-admin/jobs").status_code == 403, who
        home = client.get("/shop-admin/").get_data(as_text=True)
        assert 'href="/shop-admin/jobs"' not in home and "dead-events-warning" not in home
        for action in ("send-again", "discard"):
            response = client.post(
                f"/shop-admin/jobs/{event_id}/{action}", data={"csrf_token": client.csrf}
            )
            assert response.status_code == 403, (who, action)
        assert (
            client.post("/shop-admin/jobs/send-again", data={"csrf_token": client.csrf}).status_code
            == 403
        )
    owner = login(shop, "owner")
    assert owner.post(f"/shop-admin/jobs/{event_id}/send-again").status_code == 400  # no CSRF
    assert owner.post(f"/shop-admin/jobs/{event_id}/discard").status_code == 400
    assert (
        owner.post("/shop-admin/jobs/1x/send-again", data={"csrf_token": owner.csrf}).status_code
        == 404
    )
    missing = owner.post(
        "/shop-admin/jobs/999999/discard", data={"csrf_token": owner.csrf}, follow_redirects=True
    )
    assert "it may have just been deleted" in missing.get_data(as_text=True)
    with shop.app_context():
        assert placed_event(number).status == "dead"
    assert audit_actions(shop) == [] and downstream.handled == []


def test_the_page_speaks_chinese(make_app, database_url, downstream):
    app = make_app(database_url)
    Koudai.subscribe(app, "order.placed", downstream)
    with app.app_context():
        staff.grant("staff:owner@shop.cn", "owner", email="owner@shop.cn", password=PASSWORD)
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 5}])
    _, event_id = give_up(app)
    client = login_zh(app, "owner")
    page = client.get("/shop-admin/jobs").get_data(as_text=True)
    assert "后台任务" in page and "重新发送" in page
    client.post(f"/shop-admin/jobs/{event_id}/discard", data={"csrf_token": client.csrf})
    again = client.post(
        f"/shop-admin/jobs/{event_id}/discard",
        data={"csrf_token": client.csrf},
        follow_redirects=True,
    )
    assert "这条事件已经重新发送、处理完或被丢弃" in again.get_data(as_text=True)


# -- the CLI ----------------------------------------------------------------------------------


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["koudai", "outbox", *args])


def test_the_cli_lists_sends_again_and_discards(shop, downstream):
    first, first_id = give_up(shop)
    second, second_id = give_up(shop)
    listed = invoke(shop)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].startswith("pending 0, enqueued 0, dead 2, discarded 0; oldest waiting")
    assert lines[1].split("\t")[:3] == [str(second_id), "order.placed", "8 attempt(s)"]
    assert lines[-1] == "2 dead event(s)"

    downstream.down = False
    sent = invoke(shop, "--send-again", str(first_id))
    assert (sent.exit_code, sent.output) == (0, f"sent event {first_id} again\n")
    assert downstream.handled == [first]
    dropped = invoke(shop, "--discard", str(second_id), "--note", "duplicate")
    assert (dropped.exit_code, dropped.output) == (0, f"discarded event {second_id}\n")
    assert downstream.handled == [first]
    assert [a for _, a, _ in audit_actions(shop)] == ["outbox.send_again", "outbox.discard"]
    assert invoke(shop).output.splitlines()[-1] == "0 dead event(s)"


ONE_OF = "give one of --send-again, --send-all-again and --discard"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--send-again", "1", "--discard", "2"], ONE_OF),
        (["--send-all-again", "--discard", "2"], ONE_OF),
        (["--note", "why"], "--note goes with --discard"),
        (["--send-again", "999999"], "no outbox event 999999"),
        (["--discard", "999999"], "no outbox event 999999"),
    ],
)
def test_the_cli_refuses_with_one_line_and_changes_nothing(shop, downstream, args, message):
    _, event_id = give_up(shop)
    result = invoke(shop, *args)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")
    with shop.app_context():
        assert [e.id for e in outbox_review.dead_events()] == [event_id]
    assert audit_actions(shop) == []


def test_the_cli_refuses_an_event_that_is_not_dead(shop, downstream):
    downstream.down = False
    with shop.app_context():
        number = orders.place(channel="web", lines=[{"sku": "KET", "quantity": 1}]).number
        event_id = placed_event(number).id
        get_state().session.rollback()
    result = invoke(shop, "--discard", str(event_id))
    expected = f"error: outbox event {event_id} is done, not dead: nothing to do\n"
    assert (result.exit_code, result.output) == (2, expected)
    with shop.app_context():
        assert placed_event(number).status == "done"


# -- on RQ ------------------------------------------------------------------------------------


def test_on_rq_a_failed_job_leaves_its_error_and_a_dead_event_is_queued_again(
    make_app, database_url, redis_url, downstream
):
    app = make_app(
        database_url,
        KOUDAI_JOBS="rq",
        KOUDAI_REDIS_URL=redis_url,
        KOUDAI_QUEUE_NAME=f"koudai-test-{uuid.uuid4().hex[:8]}",
    )
    Koudai.subscribe(app, "order.placed", downstream)

    def work() -> None:
        SimpleWorker(
            [get_queue(app)], connection=redis_connection(app), job_class=job_class_for(app)
        ).work(burst=True)

    with app.app_context():
        catalog.create_product(title="Fan", skus=[{"code": "FAN", "price": 4900, "stock": 5}])
        work()
        number = orders.place(channel="web", lines=[{"sku": "FAN", "quantity": 1}]).number
        event_id = placed_event(number).id
        get_state().session.rollback()

        def fail_for_good() -> None:
            # RQ's own retries spent: the next failure leaves the job failed, traceback kept.
            job = Job.fetch(job_id(event_id), connection=redis_connection())
            job.retries_left = 0
            job.save()
            work()
            assert job.get_status(refresh=True) == JobStatus.FAILED

        fail_for_good()
        assert relay_outbox(grace=0) == 1
        event = placed_event(number)
        assert event.status == "enqueued"
        assert event.last_error == "RuntimeError: ERP at 10.0.0.9 refused the connection"
        get_state().session.rollback()
        fail_for_good()
        _attempts_spent(event_id)
        assert relay_outbox(grace=0) == 0
        event = placed_event(number)
        assert event.status == "dead"
        assert event.last_error == "RuntimeError: ERP at 10.0.0.9 refused the connection"
        get_state().session.rollback()
        assert not Job.exists(job_id(event_id), connection=redis_connection())

        downstream.down = False
        outbox_review.send_again(event_id, actor="cli")
        assert placed_event(number).status == "enqueued"
        get_state().session.rollback()
        work()
        assert placed_event(number).status == "done"
        assert downstream.handled == [number]


def _attempts_spent(event_id: int) -> None:
    session = get_state().session
    session.execute(
        OutboxEvent.__table__.update()
        .where(OutboxEvent.id == event_id)
        .values(attempts=MAX_ATTEMPTS)
    )
    session.commit()


def test_the_cli_sends_every_dead_event_again_and_lists_by_topic(shop, downstream):
    first, _ = give_up(shop)
    second, _ = give_up(shop)
    with shop.app_context():
        session = get_state().session
        session.add(OutboxEvent(topic="stock.changed", payload={}, status="dead", attempts=8))
        session.commit()
    listed = invoke(shop, "--topic", "stock.changed")
    assert [line.split("\t")[1] for line in listed.output.splitlines()[1:-1]] == ["stock.changed"]
    assert listed.output.splitlines()[-1] == "1 dead event(s)"
    downstream.down = False
    sent = invoke(shop, "--send-all-again", "--topic", "order.placed")
    assert (sent.exit_code, sent.output) == (0, "sent 2 dead event(s) again\n")
    assert downstream.handled == [first, second]
    everything = invoke(shop, "--send-all-again")  # stock.changed has no subscriber: done
    assert everything.output == "sent 1 dead event(s) again\n"
    with shop.app_context():
        assert outbox_review.health().counts["dead"] == 0


def test_ten_people_sending_one_dead_event_again_at_once_send_it_once(
    make_app, postgres_url, downstream
):
    import threading

    app = make_app(postgres_url, KOUDAI_ENGINE_OPTIONS={"pool_size": 12})
    Koudai.subscribe(app, "order.placed", downstream)
    with app.app_context():
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 5}])
    number, event_id = give_up(app)
    downstream.down = False
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def click(i: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                outbox_review.send_again(event_id, actor=f"staff:{i}")
            except outbox_review.NotDead:
                outcomes.append("refused")
            else:
                outcomes.append("sent")

    threads = [threading.Thread(target=click, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 9 + ["sent"]
    assert downstream.handled == [number]
    assert [action for _, action, _ in audit_actions(app)] == ["outbox.send_again"]
    with app.app_context():
        assert placed_event(number).status == "done"
