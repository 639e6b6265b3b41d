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
import signal
import sys
import threading
from importlib.metadata import version
from types import FrameType

import psycopg
import sqlalchemy
from checkout_floor import capture, statement_cpu, statement_side
from checkout_measure import (
    CpuCost,
    SideResult,
    ThreadResult,
    Window,
    cpu_per_order,
    place_until_closed,
    print_table,
    timed_threads,
)
from checkout_profile import PROFILE_WARMUP, print_profile, profile_place
from flask import Flask
from pg import bench_schema, default_database_url, server_version
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.engine import URL

from koudai_flask import Koudai
from koudai_flask.extension import get_state
from koudai_flask.schema import create_all
from koudai_flask.services import catalog, orders

STOCK = 1_000_000_000  # opening stock of every SKU: never runs out
TARGET_RATIO = 0.5

RAW_RESERVE = (
    "UPDATE koudai_stock_level SET reserved = reserved + 1 "
    "WHERE sku_id = %s AND location_id = %s AND on_hand - reserved >= 1"
)
RAW_ORDER = "INSERT INTO bench_raw_order (sku_id, quantity) VALUES (%s, 1)"


# -- the two sides ---------------------------------------------------------------------------


def raw_side(
    conninfo: str, schema: str, sku_ids: list[int], location_id: int, threads: int, window: Window
) -> SideResult:
    def body(index: int, result: ThreadResult, window: Window, barrier: threading.Barrier) -> None:
        with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as connection:
            cursor = connection.cursor()

            def place(sku_id: int) -> None:
                try:
                    cursor.execute(RAW_RESERVE, (sku_id, location_id))
                    if cursor.rowcount != 1:
                        raise LookupError("out of stock")
                    cursor.execute(RAW_ORDER, (sku_id,))
                    connection.commit()
                except (psycopg.Error, LookupError):
                    connection.rollback()
                    raise

            place_until_closed(
                result,
                window,
                barrier,
                seed=index,
                items=sku_ids,
                place=place,
                refusals=(psycopg.Error, LookupError),
            )

    return timed_threads("raw", threads, window, body)


def library_side(app: Flask, codes: list[str], threads: int, window: Window) -> SideResult:
    def body(index: int, result: ThreadResult, window: Window, barrier: threading.Barrier) -> None:
        with app.app_context():
            place_until_closed(
                result,
                window,
                barrier,
                seed=index,
                items=codes,
                place=lambda code: orders.place(
                    channel="web", lines=[{"sku": code, "quantity": 1}]
                ),
                refusals=(Exception,),  # counted and reported
            )

    return timed_threads("library", threads, window, body)


# -- CPU per order, one thread ---------------------------------------------------------------


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


def print_cpu(raw: CpuCost, lib: CpuCost, bare: CpuCost, count: int, local: bool) -> None:
    print(f"CPU per order, one thread, {count} orders a side (read with the table above):")
    for name, cost in (("raw", raw), ("library", lib), ("statement", bare)):
        server = "n/a" if cost.server is None or not local else f"{cost.server:.3f}"
        line = f"  {name:<10} client {cost.client:.3f} ms, PostgreSQL {server} ms"
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
            captured = capture(app, lib_codes[0])
            bare = statement_side(
                libpq_conninfo(base),
                schema,
                captured,
                lib_codes,
                args.threads,
                Window(args.warmup, args.seconds),
            )
            print_table([raw, lib, bare])
            ratio = lib.rate / raw.rate if raw.rate else float("nan")
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            print(f"ratio library / raw: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
            floor = bare.rate / raw.rate if raw.rate else float("nan")
            print(
                f"statement / raw: {floor:.2f} (place's one statement sent bare by psycopg: the "
                "most the library could reach here if its Python cost nothing)"
            )
            print()

            local = base.host in (None, "", "127.0.0.1", "localhost", "::1")
            raw_cost = raw_cpu(libpq_conninfo(base), schema, raw_ids, location_id, args.cpu_orders)
            lib_cost = library_cpu(app, lib_codes, args.cpu_orders)
            bare_cost = statement_cpu(
                libpq_conninfo(base), schema, captured, lib_codes, args.cpu_orders
            )
            print_cpu(raw_cost, lib_cost, bare_cost, args.cpu_orders, local)
            print()

            engine = get_state(app).get_engine()
            profile = profile_place(app, engine, lib_codes, args.profile_orders)
            print_profile(profile)
            print()

            cpu_pass = args.cpu_orders + max(1, args.cpu_orders // 10)  # with its warm-up
            placed = lib.all_ok + 1 + bare.all_ok + 2 * cpu_pass + PROFILE_WARMUP + profile.orders
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
