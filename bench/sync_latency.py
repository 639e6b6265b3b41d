"""Part (b) of the sync benchmark: from a web sale to every linked Taobao shop, on RQ.

``--channels`` sandbox shops each list the same SKUs, bound to one product of ours with
plenty of stock. ``--workers`` ``flask koudai worker`` processes (``bench.sync_apps``) run
the jobs with every default a merchant would keep (the periodic sync tick included: the push
comes from the ``channel.push_due`` outbox event, not from the tick). Web orders of one unit
are placed one at a time, each on the next SKU, once the previous one's jobs are all done
and 20-50 ms later; each sandbox's state has a hook on the ``ItemStockChanged`` message it
publishes on every stock change, which records when the SKU took its new quantity, so
nothing polls. The baseline, alternating with the orders on the same Redis and workers:
enqueue the no-op job and block on its result.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from rq.job import Job
from rq.results import Result
from sqlalchemy import select
from sync_apps import ENV_QUEUE, ENV_REDIS, ENV_SECRET, ENV_URL, NOOP, bench_app, link_sandbox
from sync_measure import percentile
from sync_rq import (
    ROOT,
    delete_run_keys,
    failed_jobs,
    job_stages,
    run_job_ids,
    wait_idle,
    worker_failure,
    workers_running,
)

from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.extension import get_state
from koudai_flask.jobs.queue import get_queue, redis_connection
from koudai_flask.jobs.sync import channel_queue, schedule
from koudai_flask.models import OutboxEvent
from koudai_flask.services import catalog, channels, orders, stock_sync

STOCK = 100_000
SKUS = 8  # the orders go round them, so one SKU is never sold twice in a row
WARMUP = 10  # orders (and empty jobs) before the timed ones
SPACING = (0.02, 0.05)  # seconds between one measurement and the next
WAIT = 30.0  # seconds an order may take to reach every shop before it counts as lost
TARGET = 5.0  # koudai's p99 over the empty job's p99
STOCK_TOPIC = "taobao_item_ItemStockChanged"


def default_redis_url() -> str:
    return (
        os.environ.get("KOUDAI_BENCH_REDIS_URL")
        or os.environ.get("KOUDAI_TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )


class QuantityWatch:
    """When each SKU of one sandbox took each quantity: a hook on its state's ``publish``,
    through which every stock change goes (``shop.change_quantity``)."""

    def __init__(self, sandbox: TaobaoSandbox, changed: threading.Condition) -> None:
        self.changed = changed
        self.seen: dict[tuple[int, int], tuple[int, float]] = {}
        state = sandbox.state
        publish = state.publish

        def hooked(topic: str, content: dict[str, Any], app_key: str = "") -> Any:
            moment = time.perf_counter()
            entry = publish(topic, content, app_key)
            if topic == STOCK_TOPIC and content.get("sku_id") is not None:
                with changed:
                    key = (int(content["num_iid"]), int(content["sku_id"]))
                    self.seen[key] = (int(content["sku_num"]), moment)
                    changed.notify_all()
            return entry

        state.publish = hooked  # type: ignore[method-assign]

    def shown_at(self, key: tuple[int, int], quantity: int) -> float | None:
        """When the SKU took ``quantity`` (call with the condition held)."""
        seen = self.seen.get(key)
        return seen[1] if seen is not None and seen[0] == quantity else None


@dataclass
class Shop:
    sandbox: TaobaoSandbox
    watch: QuantityWatch
    keys: dict[str, tuple[int, int]]  # our SKU code → (num_iid, sku_id) there


@dataclass
class LatencyResult:
    orders: int
    channels: int
    workers: int
    koudai: list[float] = field(default_factory=list)  # seconds, slowest shop per order
    empty: list[float] = field(default_factory=list)
    place: list[float] = field(default_factory=list)
    lost: int = 0
    early: int = 0  # shown before orders.place returned (counted as 0)
    calls: Counter[str] = field(default_factory=Counter)  # TOP calls of the timed orders
    since: datetime = field(default_factory=lambda: datetime.now(UTC))  # the timed part began
    stages: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)  # jobs RQ gave up on


# -- the run ---------------------------------------------------------------------------------


def open_shops(app: Flask, count: int, codes: list[str], stack: ExitStack) -> list[Shop]:
    """``count`` sandbox shops listing ``codes``, bound and their first push scheduled."""
    changed = threading.Condition()
    shops = []
    for n in range(count):
        sandbox = stack.enter_context(TaobaoSandbox())
        item = sandbox.add_item(
            "基准商品 Bench item",
            "99.00",
            outer_id="BENCH",
            skus=[
                {"properties_name": f"1627207:{28320 + k}:颜色分类:c{k}", "outer_id": code}
                for k, code in enumerate(codes)
            ],
        )
        sku_ids = {sku.outer_id: sku.sku_id for sku in item.skus.values()}
        name = f"tb{n + 1}"
        channel_id = link_sandbox(app, sandbox, name)
        for code in codes:
            channels.link(
                name, code, external_item_id=str(item.num_iid), external_sku_id=str(sku_ids[code])
            )
        stock_sync.mark_channel_dirty(name)
        schedule(channel_id, "push_stock")
        keys = {code: (item.num_iid, sku_ids[code]) for code in codes}
        shops.append(Shop(sandbox, QuantityWatch(sandbox, changed), keys))
    return shops


def wait_shown(shops: list[Shop], code: str, quantity: int, timeout: float) -> list[float] | None:
    """When every shop showed ``quantity`` of ``code``; None if one did not in time."""
    changed = shops[0].watch.changed

    def moments() -> list[float] | None:
        found = [shop.watch.shown_at(shop.keys[code], quantity) for shop in shops]
        return None if any(m is None for m in found) else [m for m in found if m is not None]

    with changed:
        changed.wait_for(lambda: moments() is not None, timeout)
        return moments()


def empty_round_trip(app: Flask, job_ids: set[str]) -> float:
    """Enqueue the no-op job and block until its result is in Redis (RQ's result stream)."""
    queue = get_queue(app)
    began = time.perf_counter()
    job: Job = queue.enqueue(NOOP)
    result = job.latest_result(timeout=int(WAIT))
    ended = time.perf_counter()
    job_ids.add(job.id)
    if result is None or result.type != Result.Type.SUCCESSFUL:
        raise RuntimeError(f"the empty job did not succeed within {WAIT:g} s: {result!r}")
    return ended - began


def measure(
    app: Flask,
    shops: list[Shop],
    codes: list[str],
    result: LatencyResult,
    job_ids: set[str],
    queue_names: list[str],
) -> None:
    """Alternate an empty job and a web order, ``WARMUP`` + ``result.orders`` times, each
    started on idle workers (the previous one's last jobs done) after a short pause."""
    rng = random.Random(0)
    sold: Counter[str] = Counter()
    before: Counter[str] = Counter()
    connection = redis_connection(app)
    for n in range(WARMUP + result.orders):
        if n == WARMUP:
            before = sum((shop.sandbox.calls for shop in shops), Counter())
            result.since = datetime.now(UTC)
        wait_idle(connection, queue_names)
        time.sleep(rng.uniform(*SPACING))
        empty = empty_round_trip(app, job_ids)
        wait_idle(connection, queue_names)
        time.sleep(rng.uniform(*SPACING))
        code = codes[n % len(codes)]
        quantity = STOCK - sold[code] - 1
        called = time.perf_counter()
        orders.place(channel="web", lines=[{"sku": code, "quantity": 1}])
        returned = time.perf_counter()
        sold[code] += 1
        shown = wait_shown(shops, code, quantity, WAIT)
        if n >= WARMUP:
            result.empty.append(empty)
            result.place.append(returned - called)
            if shown is None:
                result.lost += 1
            else:
                result.early += max(shown) < returned
                result.koudai.append(max(0.0, max(shown) - returned))
    result.calls = sum((shop.sandbox.calls for shop in shops), Counter()) - before


def job_label(topics: dict[int, str]) -> Callable[[Job], str | None]:
    """What a job of the run was: an outbox event's topic, a channel job, the empty job."""

    def label(job: Job) -> str | None:
        name = job.func_name or "?"
        if name == NOOP:
            return "empty job"
        if name.endswith("outbox.deliver_event") and job.args:
            return f"outbox {topics.get(int(job.args[0]), '?')}"
        if name.endswith("sync.run_channel_job") and len(job.args) > 1:
            return f"channel {job.args[1]}"
        return name.rsplit(".", 1)[-1]  # the periodic jobs

    return label


def run_latency(
    database_uri: str,
    redis_url: str,
    secret: str,
    *,
    order_count: int,
    channel_count: int,
    workers: int,
) -> LatencyResult:
    tag = f"bench-sync-{os.getpid()}"
    queue = f"koudai-{tag}"
    config = {"KOUDAI_JOBS": "rq", "KOUDAI_REDIS_URL": redis_url, "KOUDAI_QUEUE_NAME": queue}
    app = bench_app(queue, database_uri, secret, **config)
    result = LatencyResult(order_count, channel_count, workers)
    codes = [f"BENCH-{k}" for k in range(SKUS)]
    job_ids: set[str] = set()
    queue_names = [queue]
    env = {**os.environ, "PYTHONPATH": str(ROOT), ENV_URL: database_uri, ENV_REDIS: redis_url}
    env.update({ENV_QUEUE: queue, ENV_SECRET: secret})
    with ExitStack() as stack, app.app_context():
        connection = redis_connection(app)
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="koudai-sync-")))
        try:
            catalog.create_product(
                title="Bench item",
                options=["n"],
                skus=[
                    {"code": code, "price": 9900, "attributes": {"n": code}, "stock": STOCK}
                    for code in codes
                ],
            )
            shops = open_shops(app, channel_count, codes, stack)
            queue_names += [channel_queue(c.id).name for c in channels.all_channels()]
            processes = stack.enter_context(workers_running(workers, env, logs))
            for code in codes:  # the first pushes prove the workers are up
                if wait_shown(shops, code, STOCK, 60.0) is None:
                    failure = worker_failure(logs)
                    raise RuntimeError(f"workers did not push the first quantities:\n{failure}")
            measure(app, shops, codes, result, job_ids, queue_names)
            if any(process.poll() is not None for process in processes):
                raise RuntimeError("a worker died during the run:\n" + worker_failure(logs))
            session = get_state(app).session
            topics = dict(session.execute(select(OutboxEvent.id, OutboxEvent.topic)).tuples().all())
            session.rollback()
            job_ids |= run_job_ids(connection, queue_names)
            result.failed = failed_jobs(connection, queue_names)
            result.stages = job_stages(connection, job_ids, result.since, job_label(topics))
        finally:
            stack.close()  # workers stopped and sandboxes closed before the keys go
            job_ids |= run_job_ids(connection, queue_names)
            delete_run_keys(connection, tag, job_ids)
            get_state(app).get_engine().dispose()
    return result


def print_latency(result: LatencyResult) -> None:
    n = len(result.koudai)
    print(
        f"(b) web sale to every linked channel: {result.orders} orders one at a time, "
        f"{result.channels} sandbox shops, {result.workers} workers (flask koudai worker), "
        f"after {WARMUP} untimed"
    )
    print(f"  {'':<36}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = [
        ("koudai: place returned -> all shops", result.koudai),
        ("empty RQ job: enqueue -> result", result.empty),
        ("orders.place itself", result.place),
    ]
    for label, samples in rows:
        print(
            f"  {label:<36}{percentile(samples, 0.50) * 1000:>9.1f}"
            f"{percentile(samples, 0.99) * 1000:>9.1f}"
            f"{max(samples, default=float('nan')) * 1000:>9.1f}"
        )
    print(
        f"  {n} of {result.orders} orders reached every shop within {WAIT:g} s "
        f"({result.lost} did not; {result.early} were shown before place returned)"
    )
    per_order = ", ".join(
        f"{method.removeprefix('taobao.')} {count / result.orders:.2f}"
        for method, count in result.calls.most_common()
    )
    print(f"  TOP calls per order, all shops: {per_order}")
    errors = Counter(f"{function.rsplit('.', 1)[-1]}: {error}" for function, error in result.failed)
    print(f"  jobs that failed in RQ (not retried by it): {len(result.failed)}")
    for error, count in errors.most_common(3):
        print(f"    {count:4d}  {error[:150]}")
    print("  where the time goes, by RQ's own timestamps (jobs enqueued in the timed part):")
    print(f"    {'job':<34}{'jobs':>6}{'wait p50':>10}{'p99':>8}{'run p50':>9}{'p99':>8}  ms")
    for name, (waits, runs) in sorted(result.stages.items(), key=lambda kv: -len(kv[1][0])):
        print(
            f"    {name:<34}{len(waits):>6}{percentile(waits, 0.5) * 1000:>10.1f}"
            f"{percentile(waits, 0.99) * 1000:>8.1f}{percentile(runs, 0.5) * 1000:>9.1f}"
            f"{percentile(runs, 0.99) * 1000:>8.1f}"
        )
    koudai_p99, empty_p99 = percentile(result.koudai, 0.99), percentile(result.empty, 0.99)
    ratio = koudai_p99 / empty_p99 if empty_p99 else float("nan")
    verdict = "holds" if ratio <= TARGET and not result.lost else "does NOT hold"
    print(f"latency ratio {ratio:.2f} (koudai p99 / empty-job p99; <= {TARGET:g}x {verdict})")
