"""``/shop-hooks/health``: the database, Redis with RQ jobs, and the outbox's backlog, for a
load balancer or a monitor; 503 when a part does not answer, and never an error's text."""

from __future__ import annotations

from datetime import timedelta

from koudai_flask.extension import get_state
from koudai_flask.models import OutboxEvent
from koudai_flask.models.base import utcnow


def test_a_healthy_shop_answers_200_with_its_backlog(make_app, database_url):
    app = make_app(database_url)
    client = app.test_client()
    answer = client.get("/shop-hooks/health")
    assert (answer.status_code, answer.get_json()) == (
        200,
        {
            "ok": True,
            "jobs": "inline",
            "database": "ok",
            "redis": None,
            "outbox": {"waiting": 0, "oldest_waiting_seconds": None, "dead": 0},
        },
    )
    with app.app_context():
        session = get_state().session
        session.add_all(
            [
                OutboxEvent(
                    topic="order.paid", payload={}, created_at=utcnow() - timedelta(minutes=5)
                ),
                OutboxEvent(topic="order.paid", payload={}, status="enqueued"),
                OutboxEvent(topic="order.paid", payload={}, status="dead", attempts=8),
                OutboxEvent(topic="order.paid", payload={}, status="done"),
            ]
        )
        session.commit()
    outbox = client.get("/shop-hooks/health").get_json()["outbox"]
    assert (outbox["waiting"], outbox["dead"]) == (2, 1)
    assert 300 <= outbox["oldest_waiting_seconds"] < 400


def test_a_database_that_does_not_answer_is_503_without_its_address(make_app, tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'shop.db'}"
    app = make_app(url)
    with caplog.at_level("ERROR", logger="koudai_flask.jobs"):
        answer = app.test_client().get("/shop-hooks/health")
    assert answer.status_code == 503
    assert answer.get_json() == {
        "ok": False,
        "jobs": "inline",
        "database": "unreachable",
        "redis": None,
        "outbox": None,
    }
    assert "no-such-folder" not in answer.get_data(as_text=True)
    assert "health: the database did not answer (OperationalError)" in caplog.text


def test_with_rq_jobs_redis_is_asked_too(make_app, database_url, redis_url):
    up = make_app(database_url, KOUDAI_JOBS="rq", KOUDAI_REDIS_URL=redis_url)
    answer = up.test_client().get("/shop-hooks/health")
    assert answer.status_code == 200
    assert (answer.get_json()["jobs"], answer.get_json()["redis"]) == ("rq", "ok")
    down = make_app(database_url, KOUDAI_JOBS="rq", KOUDAI_REDIS_URL="redis://127.0.0.1:1/0")
    answer = down.test_client().get("/shop-hooks/health")
    assert answer.status_code == 503
    assert answer.get_json()["redis"] == "unreachable"
    assert answer.get_json()["database"] == "ok"
