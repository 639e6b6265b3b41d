"""Sync engine benchmark: a full reconcile's calls and time, and a web sale's way to Taobao.

(a) One full reconcile of ``--skus`` SKUs bound to a Taobao sandbox shop, ``--drift`` of
them changed there: the TOP calls it makes (by method, and per 1,000 SKUs, target <= 20),
its SQL statements and seconds, against the same calls replayed through a bare
``requests`` session (``bench/sync_reconcile.py``).

(b) ``--orders`` web orders placed one at a time with ``--workers`` ``flask koudai worker``
processes on RQ and ``--channels`` linked sandbox shops: the delay from ``orders.place``
returning to every shop showing the new quantity, p50 and p99, against the round trip of an
empty RQ job on the same Redis and workers (``bench/sync_latency.py``; target p99 <= 5x).

Each part works in a PostgreSQL schema of its own, dropped at the end, also on Ctrl-C, with
the workers stopped, the sandboxes closed and the run's Redis keys deleted.

    python bench/sync.py [--skus 10000] [--drift 0.01] [--orders 200] [--channels 2]
                         [--workers 2] [--part all|reconcile|latency]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import signal
import sys
from importlib.metadata import version
from types import FrameType

import psycopg
import redis
import rq
import sqlalchemy
from pg import bench_schema, default_database_url, server_version
from sqlalchemy import create_engine, make_url
from sqlalchemy.engine import URL
from sync_apps import bench_app
from sync_latency import default_redis_url, print_latency, run_latency
from sync_reconcile import SKUS_PER_ITEM, print_reconcile, run_reconcile

from koudai_flask.extension import get_state
from koudai_flask.schema import create_all


def with_search_path(url: URL, schema: str) -> URL:
    return url.update_query_dict({"options": f"-csearch_path={schema}"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=10_000, help="SKUs of the reconcile")
    parser.add_argument(
        "--drift", type=float, default=0.01, help="share of them changed on Taobao (0.01)"
    )
    parser.add_argument("--orders", type=int, default=200, help="web orders timed (200)")
    parser.add_argument("--channels", type=int, default=2, help="linked sandbox shops (2)")
    parser.add_argument("--workers", type=int, default=2, help="flask koudai worker processes")
    parser.add_argument(
        "--part", choices=("all", "reconcile", "latency"), default="all", help="what to run"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (catalogue, drift)")
    parser.add_argument("--database-url", default=default_database_url(), help="PostgreSQL")
    parser.add_argument("--redis-url", default=default_redis_url(), help="Redis (part b)")
    args = parser.parse_args(argv)
    if args.skus < SKUS_PER_ITEM or args.skus % SKUS_PER_ITEM:
        parser.error(f"--skus must be a positive multiple of {SKUS_PER_ITEM} (SKUs per item)")
    if not 0 <= args.drift <= 1:
        parser.error("--drift is a share between 0 and 1")
    if args.orders < 1 or args.channels < 1 or args.workers < 1:
        parser.error("--orders, --channels and --workers must be >= 1")
    for name in ("database_url", "redis_url"):
        host = make_url(getattr(args, name)).host
        if host not in (None, "", "127.0.0.1", "localhost", "::1"):
            parser.error(f"--{name.replace('_', '-')} must point at 127.0.0.1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that schemas, workers and keys are cleaned on SIGTERM too


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    base = make_url(args.database_url)
    if base.get_backend_name() != "postgresql":
        print("this benchmark needs PostgreSQL", file=sys.stderr)
        return 2
    admin = create_engine(base)
    print("koudai sync benchmark: full reconcile against Taobao, web sale to every channel")
    print(
        f"  Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"psycopg {psycopg.__version__}, PostgreSQL {server_version(admin)}, "
        f"redis-py {redis.__version__}, RQ {rq.__version__}, "
        f"koudai-flask {version('koudai-flask')}"
    )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"  {os.cpu_count()} CPUs, load average {load} (client, servers and workers share them)")
    secret = secrets.token_hex(16)
    try:
        if args.part in ("all", "reconcile"):
            schema = f"koudai_sync_a_{os.getpid()}"
            with bench_schema(admin, schema):
                url = with_search_path(base, schema)
                setup = create_engine(url)
                create_all(setup)
                setup.dispose()
                app = bench_app(
                    "koudai_sync_bench", url.render_as_string(hide_password=False), secret
                )
                try:
                    print()
                    print_reconcile(run_reconcile(app, args.skus, args.drift, args.seed))
                finally:
                    get_state(app).get_engine().dispose()
        if args.part in ("all", "latency"):
            schema = f"koudai_sync_b_{os.getpid()}"
            with bench_schema(admin, schema):
                url = with_search_path(base, schema)
                setup = create_engine(url)
                create_all(setup)
                setup.dispose()
                print()
                print_latency(
                    run_latency(
                        url.render_as_string(hide_password=False),
                        args.redis_url,
                        secret,
                        order_count=args.orders,
                        channel_count=args.channels,
                        workers=args.workers,
                    )
                )
        return 0
    except KeyboardInterrupt:
        print(
            "\ninterrupted; schemas dropped, workers stopped, Redis keys deleted", file=sys.stderr
        )
        return 130
    finally:
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
