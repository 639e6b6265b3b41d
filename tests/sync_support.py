"""Helpers of the sync engine tests: link a Taobao sandbox shop, run RQ until quiet."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Flask

from koudai_flask.connectors.sandbox.taobao import SandboxItem, TaobaoSandbox
from koudai_flask.connectors.taobao.oauth import OAuthToken
from koudai_flask.connectors.taobao.tokens import seal_token
from koudai_flask.jobs import sync
from koudai_flask.services import catalog, channels, stock_sync, sync_log


@dataclass
class LinkedShop:
    name: str
    sandbox: TaobaoSandbox
    item: SandboxItem

    def sku_id(self, outer_id: str) -> int:
        return next(s.sku_id for s in self.item.skus.values() if s.outer_id == outer_id)

    def quantity(self, outer_id: str) -> int:
        return self.sandbox.quantity_of(self.item.num_iid, self.sku_id(outer_id))


def rq_config(redis_url: str, **extra: Any) -> dict[str, Any]:
    """Settings of an app on RQ with its own queue names (tests share one Redis)."""
    return {
        "KOUDAI_JOBS": "rq",
        "KOUDAI_REDIS_URL": redis_url,
        "KOUDAI_QUEUE_NAME": f"koudai-sync-{uuid.uuid4().hex[:8]}",
        "KOUDAI_SYNC_RETRY_BASE": 0.05,
        "KOUDAI_SYNC_LOCK_TIMEOUT": 5,
        **extra,
    }


def seed_shirts(stock: int = 10) -> None:
    catalog.create_product(
        title="Oxford shirt",
        options=["color"],
        skus=[
            {"code": "SHIRT-W", "price": 12900, "attributes": {"color": "white"}, "stock": stock},
            {"code": "SHIRT-B", "price": 13900, "attributes": {"color": "blue"}, "stock": stock},
        ],
    )


def link_shop(
    app: Flask,
    sandbox: TaobaoSandbox,
    name: str = "tb",
    *,
    share: float = 1.0,
    buffer: int = 0,
    cap: int | None = None,
    codes: tuple[str, str] = ("SHIRT-W", "SHIRT-B"),
) -> LinkedShop:
    """A Taobao channel authorised on ``sandbox`` (tokens sealed, refresh token kept), with
    an item whose two SKUs are bound to SHIRT-W and SHIRT-B under the given rule, and their
    first push scheduled."""
    grant = sandbox.issue_session()
    token = OAuthToken(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_in=86400,
        re_expires_in=86400 * 30,
        taobao_user_id=str(grant.user_id),
        taobao_user_nick=grant.user_nick,
    )
    settings = {
        **sandbox.settings_for_client(),
        **seal_token(app.config["SECRET_KEY"], token),
    }
    channels.create("taobao", name, settings=settings)
    item = sandbox.add_item(
        "牛津纺衬衫 Oxford shirt",
        "129.00",
        outer_id="SHIRT",
        skus=[
            {"properties_name": f"1627207:{vid}:颜色分类:{color}", "outer_id": code}
            for vid, color, code in ((28320, "白色", codes[0]), (28338, "蓝色", codes[1]))
        ],
    )
    shop = LinkedShop(name, sandbox, item)
    for code in codes:
        channels.link(
            name,
            code,
            external_item_id=str(item.num_iid),
            external_sku_id=str(shop.sku_id(code)),
            share=share,
            buffer=buffer,
            cap=cap,
        )
    # Linking publishes nothing by itself; the first push does (run now inline, queued on RQ).
    assert stock_sync.mark_channel_dirty(name) == 2
    sync.schedule(channels.info(name).id, "push_stock")
    return shop


def record_dead_letters(channel_id: int, other_channel_id: int) -> tuple[int, int, int]:
    """Three jobs that gave up: a push (5 attempts) and an order import of ``channel_id``,
    and a push of ``other_channel_id``; their ids in that order."""
    return (
        sync_log.record(
            channel_id,
            "push_stock",
            [],
            error_kind="TemporaryFailure",
            message="timeout",
            attempts=5,
        ),
        sync_log.record(
            channel_id,
            "import_orders",
            [],
            error_kind="PermanentFailure",
            message="refused",
            attempts=1,
        ),
        sync_log.record(
            other_channel_id,
            "push_stock",
            [],
            error_kind="PermanentFailure",
            message="gone",
            attempts=1,
        ),
    )


def work(app: Flask, *channel_names: str) -> None:
    """One burst of the main queue (the outbox), then of the named channels' queues only."""
    from rq import SimpleWorker

    from koudai_flask.jobs.queue import get_queue, job_class_for, redis_connection
    from koudai_flask.jobs.sync import channel_queue

    with app.app_context():
        queues = [get_queue()]
        queues += [channel_queue(channels.info(name).id) for name in channel_names]
        SimpleWorker(queues, connection=redis_connection(), job_class=job_class_for(app)).work(
            burst=True
        )


def drain(app: Flask, *, timeout: float = 30.0) -> int:
    """Run every koudai queue of ``app`` in burst mode, delayed retries included, until
    nothing is queued or scheduled; returns the rounds it took."""
    from rq import SimpleWorker
    from rq.scheduler import RQScheduler

    from koudai_flask.jobs.queue import get_queue, job_class_for, redis_connection
    from koudai_flask.jobs.sync import channel_queue

    with app.app_context():
        queues = [get_queue()] + [channel_queue(c.id) for c in channels.all_channels()]
        connection = redis_connection()
        job_class = job_class_for(app)
    deadline = time.monotonic() + timeout
    rounds = 0
    while True:
        rounds += 1
        SimpleWorker(queues, connection=connection, job_class=job_class).work(burst=True)
        scheduled = sum(q.scheduled_job_registry.count for q in queues)
        if scheduled == 0 and all(q.count == 0 for q in queues):
            return rounds
        if time.monotonic() > deadline:
            raise AssertionError(f"queues still busy after {timeout} s ({scheduled} scheduled)")
        time.sleep(0.05)
        scheduler = RQScheduler(queues, connection=connection)
        scheduler.acquire_locks()
        try:
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()


def assert_no_drift(app: Flask, channel: str = "tb") -> None:
    """``flask koudai drift --channel NAME`` says 0 and exits 0."""
    result = app.test_cli_runner().invoke(args=["koudai", "drift", "--channel", channel])
    assert result.output.splitlines()[-1] == "drift: 0", result.output
    assert result.exit_code == 0
