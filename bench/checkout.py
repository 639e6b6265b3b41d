"""Checkout benchmark: koudai's ``orders.place`` against the bare SQL it cannot do without.

T threads place one-line orders on PostgreSQL for a fixed time, first as the floor (plain
psycopg: the conditional reserve UPDATE and one order INSERT per transaction), then
through the library (``services.orders.place`` inside an app context). Both sides spread
their orders over the same number of SKUs with the same random sequence per thread.

Everything happens in a throwaway schema that is dropped at the end, also on Ctrl-C. After
the timed runs, a single-threaded pass counts the statements, transactions and pool
checkouts of one ``place`` call, and the stock ledger is checked (the sums of movements
equal the levels, and every placed order holds exactly one reserved unit).

    python bench/checkout.py [--threads 8] [--seconds 10] [--warmup 2] [--skus 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from types import FrameType
from typing import Any

import psycopg
import sqlalchemy
from flask import Flask
from pg import bench_schema, default_database_url, server_version
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL

from koudai_flask import Koudai
from koudai_flask.extension import get_state
from koudai_flask.schema import create_all
from koudai_flask.services import catalog, orders

STOCK = 1_000_000_000  # opening stock of every SKU: never runs out
TARGET_RATIO = 0.5
PROFILE_WARMUP = 20  # orders placed before the profile starts counting

RAW_RESERVE = (
    "UPDATE koudai_stock_level SET reserved = reserved + 1 "
    "WHERE sku_id = %s AND location_id = %s AND on_hand - reserved >= 1"
)
RAW_ORDER = "INSERT INTO bench_raw_order (sku_id, quantity) VALUES (%s, 1)"


# -- measuring -------------------------------------------------------------------------------


@dataclass
class ThreadResult:
    """What one thread did: orders finished inside the timed window, and all of them."""

    ok: int = 0
    errors: int = 0
    all_ok: int = 0  # warm-up included: what the database must show afterwards
    latencies: list[float] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)


@dataclass
class SideResult:
    name: str
    seconds: float
    threads: list[ThreadResult]

    @property
    def ok(self) -> int:
        return sum(t.ok for t in self.threads)

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.threads)

    @property
    def all_ok(self) -> int:
        return sum(t.all_ok for t in self.threads)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def percentile(self, fraction: float) -> float:
        samples = sorted(s for t in self.threads for s in t.latencies)
        if not samples:
            return float("nan")
        return samples[min(len(samples) - 1, int(fraction * len(samples)))]

    @property
    def error_kinds(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for t in self.threads:
            total.update(t.error_kinds)
        return total


class Window:
    """The shared clock: warm-up, then ``seconds`` of counting, then stop."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.warmup = warmup
        self.seconds = seconds
        self.opens = 0.0  # perf_counter() at which counting starts
        self.stop = threading.Event()

    def open(self) -> None:  # the barrier's action: runs once, when every thread is ready
        self.opens = time.perf_counter() + self.warmup

    @property
    def closes(self) -> float:
        return self.opens + self.seconds


def timed_threads(
    name: str,
    count: int,
    window: Window,
    body: Callable[[int, ThreadResult, Window, threading.Barrier], None],
) -> SideResult:
    """Start ``count`` threads running ``body`` and wait for them (interruptibly)."""
    barrier = threading.Barrier(count, action=window.open)
    results = [ThreadResult() for _ in range(count)]
    failures: list[BaseException] = []

    def target(index: int) -> None:
        try:
            body(index, results[index], window, barrier)
        except BaseException as exc:  # a setup failure: stop everyone, report it
            failures.append(exc)
            window.stop.set()
            barrier.abort()

    workers = [
        threading.Thread(target=target, args=(i,), name=f"{name}-{i}", daemon=True)
        for i in range(count)
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            while worker.is_alive():
                worker.join(0.2)
    finally:
        window.stop.set()
        for worker in workers:
            worker.join(30)
    if failures:  # the first real failure, not the broken barrier it caused elsewhere
        failures.sort(key=lambda f: isinstance(f, threading.BrokenBarrierError))
        raise RuntimeError(f"{name} side failed: {failures[0]!r}") from failures[0]
    return SideResult(name, window.seconds, results)


def record(result: ThreadResult, window: Window, began: float, error: BaseException | None) -> bool:
    """Count one attempt; returns False once the window is over."""
    ended = time.perf_counter()
    counted = window.opens <= ended <= window.closes
    if error is None:
        result.all_ok += 1
        if counted:
            result.ok += 1
            result.latencies.append(ended - began)
    elif counted:
        result.errors += 1
        result.error_kinds[type(error).__name__] += 1
    return ended < window.closes and not window.stop.is_set()


# -- the two sides ---------------------------------------------------------------------------


def raw_side(
    conninfo: str, schema: str, sku_ids: list[int], location_id: int, threads: int, window: Window
) -> SideResult:
    def body(index: int, result: ThreadResult, window: Window, barrier: threading.Barrier) -> None:
        rng = random.Random(index)
        with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as connection:
            cursor = connection.cursor()
            barrier.wait()
            running = True
            while running:
                sku_id = sku_ids[rng.randrange(len(sku_ids))]
                began = time.perf_counter()
                error: BaseException | None = None
                try:
                    cursor.execute(RAW_RESERVE, (sku_id, location_id))
                    if cursor.rowcount != 1:
                        raise LookupError("out of stock")
                    cursor.execute(RAW_ORDER, (sku_id,))
                    connection.commit()
                except (psycopg.Error, LookupError) as exc:
                    connection.rollback()
                    error = exc
                running = record(result, window, began, error)

    return timed_threads("raw", threads, window, body)


def library_side(app: Flask, codes: list[str], threads: int, window: Window) -> SideResult:
    def body(index: int, result: ThreadResult, window: Window, barrier: threading.Barrier) -> None:
        rng = random.Random(index)
        with app.app_context():
            barrier.wait()
            running = True
            while running:
                code = codes[rng.randrange(len(codes))]
                began = time.perf_counter()
                error: BaseException | None = None
                try:
                    orders.place(channel="web", lines=[{"sku": code, "quantity": 1}])
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    error = exc
                running = record(result, window, began, error)

    return timed_threads("library", threads, window, body)


# -- profiling one place() call --------------------------------------------------------------

_TABLE = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b.*?\b(koudai_\w+)", re.S | re.I)


@dataclass
class Profile:
    orders: int = 0
    seconds: float = 0.0
    execute_seconds: float = 0.0
    in_transaction: int = 0
    after_commit: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0
    autocommit: int = 0  # statements sent in the driver's autocommit: each its own transaction
    pre_ping: bool = False
    kinds: Counter[str] = field(default_factory=Counter)


def profile_place(app: Flask, engine: Engine, codes: list[str], count: int) -> Profile:
    """Place ``count`` orders on one thread with SQLAlchemy listeners counting everything."""
    profile = Profile(pre_ping=bool(getattr(engine.pool, "_pre_ping", False)))
    phase = {"committed": False, "started": 0.0}

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        phase["started"] = time.perf_counter()
        if getattr(conn.connection.dbapi_connection, "autocommit", False):
            profile.autocommit += 1
        if phase["committed"]:
            profile.after_commit += 1
        else:
            profile.in_transaction += 1
        match = _TABLE.match(statement)
        kind = f"{match.group(1).split()[0].upper()} {match.group(2)}" if match else statement[:40]
        profile.kinds[("after commit: " if phase["committed"] else "") + kind] += 1

    def after(*args: Any) -> None:
        profile.execute_seconds += time.perf_counter() - phase["started"]

    def on_commit(conn: Any) -> None:
        profile.commits += 1
        phase["committed"] = True

    def on_rollback(conn: Any) -> None:
        profile.rollbacks += 1

    def on_checkout(*args: Any) -> None:
        profile.checkouts += 1

    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", before),
        (engine, "after_cursor_execute", after),
        (engine, "commit", on_commit),
        (engine, "rollback", on_rollback),
        (engine.pool, "checkout", on_checkout),
    ]
    with app.app_context():
        for i in range(PROFILE_WARMUP):  # warm the statement caches outside the count
            orders.place(channel="web", lines=[{"sku": codes[i % len(codes)], "quantity": 1}])
        for target, name, fn in listeners:
            event.listen(target, name, fn)
        try:
            began = time.perf_counter()
            for i in range(count):
                phase["committed"] = False
                orders.place(channel="web", lines=[{"sku": codes[i % len(codes)], "quantity": 1}])
                profile.orders += 1
            profile.seconds = time.perf_counter() - began
        finally:
            for target, name, fn in listeners:
                event.remove(target, name, fn)
    return profile


# -- CPU per order, one thread ---------------------------------------------------------------


def server_cpu() -> float | None:
    """CPU seconds used so far by every PostgreSQL process of this machine (backends, WAL
    writer, ...), or None when none can be seen (no /proc)."""
    total, seen = 0.0, False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat_file:
                stat = stat_file.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        seen = True
    return total if seen else None


@dataclass
class CpuCost:
    client: float  # ms of this process's CPU per order
    server: float | None  # ms of PostgreSQL's CPU per order, None if it cannot be seen


def cpu_per_order(place_one: Callable[[int], None], count: int) -> CpuCost:
    """CPU per order of ``count`` calls of ``place_one`` on this thread, after 10% warm-up."""
    for i in range(max(1, count // 10)):
        place_one(i)
    server_before, client_before = server_cpu(), time.process_time()
    for i in range(count):
        place_one(i)
    server_after, client_after = server_cpu(), time.process_time()
    server = None
    if server_before is not None and server_after is not None:
        server = (server_after - server_before) / count * 1000
    return CpuCost((client_after - client_before) / count * 1000, server)


def raw_cpu(
    conninfo: str, schema: str, sku_ids: list[int], location_id: int, count: int
) -> CpuCost:
    with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as connection:
        cursor = connection.cursor()

        def place_one(i: int) -> None:
            sku_id = sku_ids[i % len(sku_ids)]
            cursor.execute(RAW_RESERVE, (sku_id, location_id))
            cursor.execute(RAW_ORDER, (sku_id,))
            connection.commit()

        return cpu_per_order(place_one, count)


def library_cpu(app: Flask, codes: list[str], count: int) -> CpuCost:
    with app.app_context():

        def place_one(i: int) -> None:
            orders.place(channel="web", lines=[{"sku": codes[i % len(codes)], "quantity": 1}])

        return cpu_per_order(place_one, count)


def print_cpu(raw: CpuCost, lib: CpuCost, count: int, local: bool) -> None:
    print(f"CPU per order, one thread, {count} orders a side (read with the table above):")
    for name, cost in (("raw", raw), ("library", lib)):
        server = "n/a" if cost.server is None or not local else f"{cost.server:.3f}"
        line = f"  {name:<8} client {cost.client:.3f} ms, PostgreSQL {server} ms"
        if cost.server is not None and local:
            line += f", together {cost.client + cost.server:.3f} ms"
        print(line)
    if raw.server is not None and lib.server is not None and local:
        ratio = (raw.client + raw.server) / (lib.client + lib.server)
        print(
            f"  raw / library CPU: {ratio:.2f} (the ratio a CPU-bound machine would give if "
            "every core were busy on both sides)"
        )
        bound = (raw.client + raw.server) / lib.server
        print(
            f"  raw / library PostgreSQL CPU alone: {bound:.2f} (the most that ratio could be "
            "if the library's own Python cost nothing)"
        )
    else:
        print("  (PostgreSQL's processes are not on this machine: its CPU is not counted)")


# -- the ledger ------------------------------------------------------------------------------


def check_ledger(engine: Engine, sku_ids: list[int], placed: int) -> tuple[bool, str]:
    """Movements sum to levels on the library's SKUs; one reserved unit per placed order."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT l.sku_id, l.on_hand, l.reserved, "
                "COALESCE(SUM(m.on_hand_delta), 0), COALESCE(SUM(m.reserved_delta), 0) "
                "FROM koudai_stock_level l LEFT JOIN koudai_stock_movement m "
                "ON m.sku_id = l.sku_id AND m.location_id = l.location_id "
                "WHERE l.sku_id = ANY(:ids) GROUP BY l.id"
            ),
            {"ids": sku_ids},
        ).all()
        order_rows = connection.scalar(text("SELECT count(*) FROM koudai_order"))
        active = connection.scalar(
            text("SELECT count(*) FROM koudai_reservation WHERE status = 'active'")
        )
    mismatched = [r[0] for r in rows if (r[1], r[2]) != (r[3], r[4]) or r[2] < 0 or r[1] < r[2]]
    reserved = sum(r[2] for r in rows)
    ok = not mismatched and len(rows) == len(sku_ids) and reserved == order_rows == active == placed
    summary = (
        f"{len(rows)} stock levels, movements == levels: "
        f"{'yes' if not mismatched else f'NO (sku ids {mismatched[:5]})'}; "
        f"reserved {reserved}, orders in db {order_rows}, active reservations {active}, "
        f"orders placed {placed}: {'consistent' if ok else 'INCONSISTENT'}"
    )
    return ok, summary


# -- setup and teardown ----------------------------------------------------------------------


def with_search_path(url: URL, schema: str) -> URL:
    return url.update_query_dict({"options": f"-csearch_path={schema}"})


def libpq_conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(url: URL, threads: int) -> tuple[Flask, list[str]]:
    """The host app with a pool big enough for ``threads``, and a note saying so."""
    app = Flask("koudai_bench")
    app.config.update(
        SECRET_KEY="bench",
        KOUDAI_DATABASE_URI=url.render_as_string(hide_password=False),
        KOUDAI_ENGINE_OPTIONS={"pool_size": max(5, threads), "max_overflow": 4},
    )
    Koudai(app)
    pool = get_state(app).get_engine().pool
    size = pool.size() if hasattr(pool, "size") else 0
    overflow = int(getattr(pool, "_max_overflow", 0))
    notes = [
        f"library engine pool: {type(pool).__name__} {size} + {overflow} overflow "
        "(KOUDAI_ENGINE_OPTIONS)"
    ]
    return app, notes


def seed(app: Flask, prefix: str, count: int) -> tuple[list[str], list[int], int]:
    """One product with ``count`` SKUs of huge stock; returns codes, SKU ids, location id."""
    from koudai_flask.services import inventory

    with app.app_context():
        product = catalog.create_product(
            title=f"{prefix} bench product",
            options=["n"],
            skus=[
                {
                    "code": f"{prefix}-{i:04d}",
                    "price": 1000 + i,
                    "attributes": {"n": str(i)},
                    "stock": STOCK,
                }
                for i in range(count)
            ],
        )
        codes = [sku.code for sku in product.skus]
        ids = [sku.id for sku in product.skus]
        session = get_state().session
        location_id = inventory.get_location(session).id
        session.rollback()
    return codes, ids, location_id


# -- reporting -------------------------------------------------------------------------------


def print_table(sides: list[SideResult]) -> None:
    header = f"{'side':<10}{'orders':>10}{'errors':>8}{'seconds':>9}{'orders/s':>10}"
    print(header + f"{'p50 ms':>9}{'p95 ms':>9}")
    for side in sides:
        print(
            f"{side.name:<10}{side.ok:>10}{side.errors:>8}{side.seconds:>9.1f}{side.rate:>10.1f}"
            f"{side.percentile(0.50) * 1000:>9.2f}{side.percentile(0.95) * 1000:>9.2f}"
        )
        for kind, n in side.error_kinds.most_common(3):
            print(f"{'':<10}  error {kind}: {n}")


def print_profile(profile: Profile) -> None:
    n = profile.orders
    total = profile.in_transaction + profile.after_commit
    ms = profile.seconds / n * 1000
    db_ms = profile.execute_seconds / n * 1000
    print(f"profile of orders.place, 1 thread, {n} orders:")
    print(
        f"  statements per order: {total / n:.1f} ({profile.in_transaction / n:.1f} in the "
        f"order's transaction, {profile.after_commit / n:.1f} after its commit: inline outbox "
        "dispatch)"
    )
    print(
        f"  transactions per order: commits {profile.commits / n:.1f}, rollbacks "
        f"{profile.rollbacks / n:.1f} (SQLAlchemy's; a rollback with nothing open sends "
        f"nothing), statements in autocommit {profile.autocommit / n:.1f} (each a "
        f"transaction of its own, without BEGIN and COMMIT); pool checkouts "
        f"{profile.checkouts / n:.1f} "
        + ("(each one a pre-ping round trip)" if profile.pre_ping else "(pre-ping off)")
    )
    print(
        f"  time per order: {ms:.2f} ms, of which {db_ms:.2f} ms waiting in cursor.execute "
        f"({db_ms / ms:.0%}); the rest is Python, pings, BEGIN/COMMIT"
    )
    print(
        "  (the counting listeners send place's statements through Connection.execute instead "
        "of the driver's cursor, services/direct.py: this time is that slower path's)"
    )
    print("  statements by kind, per order:")
    for kind, count in sorted(profile.kinds.items(), key=lambda kv: kv[0].startswith("after")):
        print(f"    {count / n:4.1f}  {kind}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_url = default_database_url()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per side")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds per side")
    parser.add_argument("--skus", type=int, default=50, help="SKUs the orders spread over")
    parser.add_argument(
        "--profile-orders", type=int, default=200, help="orders in the statement-count pass"
    )
    parser.add_argument(
        "--cpu-orders", type=int, default=2000, help="orders a side in the CPU-per-order pass"
    )
    parser.add_argument("--database-url", default=default_url, help="a PostgreSQL URL")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.seconds <= 0 or args.warmup < 0 or args.skus < 1:
        parser.error("--threads and --skus must be >= 1, --seconds > 0, --warmup >= 0")
    if args.cpu_orders < 1:
        parser.error("--cpu-orders must be >= 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that the schema is dropped on SIGTERM too


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    base = make_url(args.database_url)
    if base.get_backend_name() != "postgresql":
        print("this benchmark needs PostgreSQL", file=sys.stderr)
        return 2
    schema = f"koudai_bench_{os.getpid()}"
    url = with_search_path(base, schema)
    admin = create_engine(base)
    print("koudai checkout benchmark: orders.place vs raw conditional UPDATE + INSERT")
    print(
        f"  Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"psycopg {psycopg.__version__}, PostgreSQL {server_version(admin)}, "
        f"koudai-flask {version('koudai-flask')}, {os.cpu_count()} CPUs"
    )
    print(
        f"  {args.threads} threads, {args.seconds:g} s per side after {args.warmup:g} s warm-up, "
        f"{args.skus} SKUs, schema {schema}"
    )
    app: Flask | None = None
    try:
        with bench_schema(admin, schema):
            setup = create_engine(url)
            create_all(setup)
            with setup.begin() as connection:
                connection.execute(
                    text(
                        "CREATE TABLE bench_raw_order (id serial PRIMARY KEY, sku_id int NOT NULL,"
                        " quantity int NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
                    )
                )
            app, notes = make_app(url, args.threads)
            for note in notes:
                print("  " + note)
            lib_codes, lib_ids, _ = seed(app, "LIB", args.skus)
            _, raw_ids, location_id = seed(app, "RAW", args.skus)
            print()

            raw = raw_side(
                libpq_conninfo(base),
                schema,
                raw_ids,
                location_id,
                args.threads,
                Window(args.warmup, args.seconds),
            )
            lib = library_side(app, lib_codes, args.threads, Window(args.warmup, args.seconds))
            print_table([raw, lib])
            ratio = lib.rate / raw.rate if raw.rate else float("nan")
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            print(f"ratio library / raw: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
            print()

            local = base.host in (None, "", "127.0.0.1", "localhost", "::1")
            raw_cost = raw_cpu(libpq_conninfo(base), schema, raw_ids, location_id, args.cpu_orders)
            lib_cost = library_cpu(app, lib_codes, args.cpu_orders)
            print_cpu(raw_cost, lib_cost, args.cpu_orders, local)
            print()

            engine = get_state(app).get_engine()
            profile = profile_place(app, engine, lib_codes, args.profile_orders)
            print_profile(profile)
            print()

            placed = (
                lib.all_ok
                + args.cpu_orders
                + max(1, args.cpu_orders // 10)
                + PROFILE_WARMUP
                + profile.orders
            )
            consistent, summary = check_ledger(setup, lib_ids, placed)
            print(f"ledger check (library SKUs): {summary}")
            setup.dispose()
            engine.dispose()
            return 0 if consistent else 1
    except KeyboardInterrupt:
        print("\ninterrupted; bench schema dropped", file=sys.stderr)
        return 130
    finally:
        if app is not None:
            get_state(app).get_engine().dispose()
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
