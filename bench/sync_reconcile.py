"""Part (a) of the sync benchmark: one full reconcile of a big Taobao shop, call by call.

The catalogue is the sandbox's generated one (``seed_catalog``, 4 SKUs an item), copied into
our catalogue and bound SKU for SKU. A few items go through ``catalog.create_product`` and
``channels.link`` (timed, to show what one costs); the rest is bulk-inserted with SQL, the
same rows those functions write, because one by one they take minutes at this size. A
share of the SKUs is then changed on the sandbox (drift), and one
``run_channel_job(channel_id, "reconcile", [])`` reads every quantity, records the drift
and repairs it. A WSGI middleware in front of the sandbox keeps the form of every TOP call
it made; the baseline replays exactly those calls, signed again beforehand with
``connectors.taobao.signing``, through a bare ``requests.Session``.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import requests
from flask import Flask
from sqlalchemy import func, insert, select, update
from sync_measure import GatewayRecorder, SqlCount, count_sql, top_call_seconds

from koudai_flask.connectors.sandbox.taobao import SandboxItem, TaobaoSandbox
from koudai_flask.connectors.taobao.client import format_time
from koudai_flask.connectors.taobao.signing import sign
from koudai_flask.extension import get_state
from koudai_flask.jobs.sync import run_channel_job
from koudai_flask.models import ChannelListing, DriftRecord, Product, Sku, StockLevel
from koudai_flask.models.base import utcnow
from koudai_flask.models.inventory import StockMovement
from koudai_flask.services import catalog, channels, inventory
from koudai_flask.services.transaction import unit_of_work

SKUS_PER_ITEM = 4
SAMPLE_ITEMS = 10  # items seeded through the services, one call at a time
TARGET_CALLS = 20.0  # per 1,000 SKUs
CHANNEL = "tb-reconcile"
READ_METHODS = frozenset({"taobao.items.onsale.get", "taobao.item.skus.get"})


# -- seeding ---------------------------------------------------------------------------------


def sku_code(sku_id: int) -> str:
    return f"TB-{sku_id}"


def _fen(price: str) -> int:
    return int(Decimal(price) * 100)


def seed_by_services(items: list[SandboxItem]) -> float:
    """The sample: ``create_product`` and ``channels.link`` per SKU; returns seconds."""
    began = time.perf_counter()
    for item in items:
        catalog.create_product(
            title=item.title,
            options=["variant"],
            skus=[
                {
                    "code": sku_code(sku.sku_id),
                    "price": _fen(sku.price),
                    "attributes": {"variant": sku.properties_name},
                    "stock": sku.quantity,
                }
                for sku in item.skus.values()
            ],
        )
        for sku in item.skus.values():
            channels.link(
                CHANNEL,
                sku_code(sku.sku_id),
                external_item_id=str(item.num_iid),
                external_sku_id=str(sku.sku_id),
            )
    return time.perf_counter() - began


def seed_by_sql(items: list[SandboxItem], channel_id: int) -> float:
    """The same rows as :func:`seed_by_services` writes, one INSERT per table; seconds."""
    began = time.perf_counter()
    now = utcnow()
    with unit_of_work() as session:
        location_id = inventory.get_location(session).id
        product_rows = [
            {"slug": f"tb-{item.num_iid}", "title": item.title, "options": ["variant"]}
            for item in items
        ]
        product_ids = dict(
            session.execute(
                insert(Product).returning(Product.slug, Product.id, sort_by_parameter_order=True),
                product_rows,
            )
            .tuples()
            .all()
        )
        skus = [(item, sku) for item in items for sku in item.skus.values()]
        sku_ids = dict(
            session.execute(
                insert(Sku).returning(Sku.code, Sku.id, sort_by_parameter_order=True),
                [
                    {
                        "code": sku_code(sku.sku_id),
                        "product_id": product_ids[f"tb-{item.num_iid}"],
                        "price": _fen(sku.price),
                        "attributes": {"variant": sku.properties_name},
                    }
                    for item, sku in skus
                ],
            )
            .tuples()
            .all()
        )
        levels, movements, listings = [], [], []
        for item, sku in skus:
            sku_id = sku_ids[sku_code(sku.sku_id)]
            levels.append({"sku_id": sku_id, "location_id": location_id, "on_hand": sku.quantity})
            movements.append(
                {
                    "sku_id": sku_id,
                    "location_id": location_id,
                    "on_hand_delta": sku.quantity,
                    "reason": "adjustment",
                    "source": "catalog",
                    "idempotency_key": f"bench-opening:{sku_code(sku.sku_id)}",
                    "note": "opening stock",
                }
            )
            listings.append(
                {
                    "channel_id": channel_id,
                    "sku_id": sku_id,
                    "external_item_id": str(item.num_iid),
                    "external_sku_id": str(sku.sku_id),
                    "last_pushed_quantity": sku.quantity,
                    "last_seen_quantity": sku.quantity,
                    "last_synced_at": now,
                }
            )
        session.execute(insert(StockLevel), levels)
        session.execute(insert(StockMovement), movements)
        session.execute(insert(ChannelListing), listings)
    return time.perf_counter() - began


def mark_in_sync(channel_id: int, items: list[SandboxItem]) -> None:
    """The sample's bindings as a previous push left them: pushed and seen what it shows."""
    now = utcnow()
    with unit_of_work() as session:
        for item in items:
            for sku in item.skus.values():
                session.execute(
                    update(ChannelListing)
                    .where(
                        ChannelListing.channel_id == channel_id,
                        ChannelListing.external_sku_id == str(sku.sku_id),
                    )
                    .values(
                        last_pushed_quantity=sku.quantity,
                        last_seen_quantity=sku.quantity,
                        last_synced_at=now,
                    )
                )


def make_drift(
    sandbox: TaobaoSandbox, items: list[SandboxItem], share: float, rng: random.Random
) -> dict[tuple[int, int], int]:
    """Change ``share`` of the SKUs on the sandbox, as the seller would by hand; returns
    ``(num_iid, sku_id) → the quantity we hold``."""
    pairs = [
        (item.num_iid, sku.sku_id, sku.quantity) for item in items for sku in item.skus.values()
    ]
    chosen = rng.sample(pairs, round(len(pairs) * share))
    for num_iid, sku_id, quantity in chosen:
        sandbox.set_quantity(num_iid, quantity + rng.randint(1, 9), sku_id)
    return {(num_iid, sku_id): quantity for num_iid, sku_id, quantity in chosen}


# -- the run ---------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    skus: int
    items: int
    drifted: int
    seeded_sample: tuple[int, float]  # SKUs, seconds through the services
    seeded_bulk: tuple[int, float]  # SKUs, seconds of the bulk INSERTs
    found: int = 0
    repaired: int = 0
    in_sync: int = 0
    drift_records: int = 0
    seconds: float = 0.0
    sandbox_seconds: float = 0.0
    call_seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    sql: SqlCount = field(default_factory=SqlCount)
    bare_seconds: float = 0.0
    bare_errors: int = 0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def read_calls(self) -> int:
        return sum(n for method, n in self.calls.items() if method in READ_METHODS)

    def per_thousand(self, calls: int) -> float:
        return calls / (self.skus / 1000)


def replay(gateway_url: str, secret: str, recorded: list[dict[str, str]]) -> tuple[float, int]:
    """The same TOP calls through a bare session, signed beforehand; seconds, errors."""
    stamp = format_time(datetime.now(UTC))
    forms = []
    for params in recorded:
        form = {k: v for k, v in params.items() if k != "sign"}
        form["timestamp"] = stamp
        form["sign"] = sign(form, secret, form.get("sign_method", "md5"))
        forms.append(form)
    errors = 0
    with requests.Session() as http:
        began = time.perf_counter()
        for form in forms:
            response = http.post(gateway_url, data=form, timeout=60)
            errors += response.status_code != 200 or b'"error_response"' in response.content
        seconds = time.perf_counter() - began
    return seconds, errors


def run_reconcile(app: Flask, skus: int, drift: float, seed: int) -> ReconcileResult:
    """Seed, bind, drift, reconcile once under the counters, check, replay."""
    from sync_apps import link_sandbox

    items_count = skus // SKUS_PER_ITEM
    with TaobaoSandbox() as sandbox:
        recorder = GatewayRecorder(sandbox.app.wsgi_app)
        sandbox.app.wsgi_app = recorder  # type: ignore[method-assign]
        items = sandbox.seed_catalog(items_count, SKUS_PER_ITEM, seed=seed % 100_000, pictures=0)
        with app.app_context():
            channel_id = link_sandbox(app, sandbox, CHANNEL)
            sample, rest = items[:SAMPLE_ITEMS], items[SAMPLE_ITEMS:]
            result = ReconcileResult(
                skus=items_count * SKUS_PER_ITEM,
                items=items_count,
                drifted=0,
                seeded_sample=(len(sample) * SKUS_PER_ITEM, seed_by_services(sample)),
                seeded_bulk=(len(rest) * SKUS_PER_ITEM, seed_by_sql(rest, channel_id)),
            )
            mark_in_sync(channel_id, sample)
            drifted = make_drift(sandbox, items, drift, random.Random(seed))
            result.drifted = len(drifted)

            engine = get_state(app).get_engine()
            sandbox.calls.clear()
            recorder.recording = True
            with top_call_seconds() as calling:
                began = time.perf_counter()
                found, result.sql = count_sql(
                    engine, lambda: run_channel_job(channel_id, "reconcile", [])
                )
                result.seconds = time.perf_counter() - began
            result.call_seconds = calling[0]
            recorder.recording = False
            result.found = int(found)
            result.calls = Counter(sandbox.calls)
            result.sandbox_seconds = recorder.seconds
            check_result(app, sandbox, items, drifted, channel_id, result)
            result.bare_seconds, result.bare_errors = replay(
                sandbox.gateway_url, sandbox.app_secret, recorder.calls
            )
    return result


def check_result(
    app: Flask,
    sandbox: TaobaoSandbox,
    items: list[SandboxItem],
    drifted: dict[tuple[int, int], int],
    channel_id: int,
    result: ReconcileResult,
) -> None:
    """What the sandbox shows now against what our rule says, SKU by SKU (in memory)."""
    session = get_state(app).session
    rows = session.execute(
        select(Sku.code, StockLevel.on_hand - StockLevel.reserved).join(
            StockLevel, StockLevel.sku_id == Sku.id
        )
    ).all()
    expected = {code: int(available) for code, available in rows}
    result.drift_records = int(
        session.scalar(
            select(func.count())
            .select_from(DriftRecord)
            .where(DriftRecord.channel_id == channel_id)
        )
        or 0
    )
    session.rollback()
    shown = {
        sku_code(sku.sku_id): sandbox.quantity_of(item.num_iid, sku.sku_id)
        for item in items
        for sku in item.skus.values()
    }
    result.in_sync = sum(1 for code, quantity in shown.items() if expected.get(code) == quantity)
    result.repaired = sum(
        1
        for (num_iid, sku_id), quantity in drifted.items()
        if sandbox.quantity_of(num_iid, sku_id) == quantity
    )


def print_reconcile(result: ReconcileResult) -> None:
    sample_skus, sample_s = result.seeded_sample
    bulk_skus, bulk_s = result.seeded_bulk
    print(
        f"(a) full reconcile: {result.skus:,} SKUs ({result.items:,} items x {SKUS_PER_ITEM}) "
        f"on one Taobao sandbox shop, {result.drifted} changed there "
        f"({result.drifted / result.skus:.1%})"
    )
    if sample_skus:
        print(
            f"  seeding: {sample_skus} SKUs through catalog.create_product + channels.link in "
            f"{sample_s:.1f} s ({sample_s / sample_skus * 1000:.0f} ms a SKU, about "
            f"{sample_s / sample_skus * result.skus / 60:.0f} min for all); the other "
            f"{bulk_skus:,} bulk-inserted with SQL in {bulk_s:.1f} s"
        )
    print(f"  API calls of the reconcile, by method ({result.total_calls} in all):")
    for method, n in sorted(result.calls.items(), key=lambda kv: -kv[1]):
        print(f"    {n:6d}  {method}")
    per_thousand = result.per_thousand(result.total_calls)
    verdict = "OK" if per_thousand <= TARGET_CALLS else "MISSED"
    print(
        f"  calls per 1,000 SKUs: {per_thousand:.1f} (target <= {TARGET_CALLS:g}: {verdict}); "
        f"reading every quantity {result.per_thousand(result.read_calls):.1f}, the rest is the "
        f"repair (TMC first, then one skus.quantity.update per item touched)"
    )
    print(
        f"  drifted found {result.found}, repaired {result.repaired} of {result.drifted}; "
        f"drift records {result.drift_records}; the sandbox now shows what the rule says on "
        f"{result.in_sync:,} of {result.skus:,} SKUs"
    )
    other = result.seconds - result.sql.seconds - result.call_seconds
    print(
        f"  koudai: {result.seconds:.2f} s = {result.call_seconds:.2f} s in TopClient.call "
        f"(signing, HTTP, JSON; {result.sandbox_seconds:.2f} s of it inside the sandbox's "
        f"handlers) + {result.sql.seconds:.2f} s in cursor.execute + {other:.2f} s the rest "
        "(TOP records mapped, sync services, ORM; one process, one GIL)"
    )
    print(f"  SQL: {result.sql.statements} statements ({result.sql.rows} parameter sets), by kind:")
    for kind, n in result.sql.kinds.most_common(12):
        print(f"    {n:6d}  {kind}")
    print(
        f"  bare: the same {result.total_calls} calls replayed through requests.Session, "
        f"pre-signed: {result.bare_seconds:.2f} s ({result.bare_errors} refused)"
    )
    ratio = result.seconds / result.bare_seconds if result.bare_seconds else float("nan")
    print(
        f"reconcile ratio {ratio:.2f} "
        f"(koudai {result.seconds:.2f} s / bare {result.bare_seconds:.2f} s)"
    )
