"""Storefront benchmark: koudai's category and product pages against the same rows done bare.

Three gunicorn servers (the same workers and worker class for each) serve the apps of
``bench/storefront_apps.py``: koudai's shop in a minimal host site, the bare baseline (one
raw SQL query per page through psycopg and a minimal Jinja template) and a Flask ``hello``
for reference. After seeding 100 products (3 SKUs and 2 images each) in one category
through koudai's services, every page is checked on both sides (status 200, the same 100
product links, the same SKUs), every server is warmed up, and then a load generator (wrk
when it is installed, else Python threads) runs the pages in turn, koudai then bare, for
``--rounds`` rounds. Last, an in-process pass counts koudai's SQL statements per request
and splits the time of one request between the database, the template and the rest.

Everything happens in a throwaway PostgreSQL schema that is dropped at the end, also on
Ctrl-C, after the servers are stopped.

    python bench/storefront.py [--seconds 3] [--rounds 5] [--connections 4] [--workers 2]
                               [--worker-class sync|gthread] [--client auto|wrk|python]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from types import FrameType

import psycopg
import sqlalchemy
import storefront_apps as apps
from flask import Flask
from pg import bench_schema, default_database_url, server_version
from sqlalchemy import create_engine, make_url
from storefront_breakdown import plural, print_breakdowns
from storefront_load import (
    Client,
    Run,
    Server,
    cpu_seconds,
    fetch,
    free_port,
    pick_client,
    serving,
)

from koudai_flask.extension import get_state
from koudai_flask.schema import create_all
from koudai_flask.services import catalog

TARGET = 0.5
PRODUCTS = apps.PAGE_SIZE
SIZES = ("S", "M", "L")
IMAGES = 2
CATEGORY = "bench"
PRODUCT = "bench-product-050"  # the product page measured
CATEGORY_PATH = f"{apps.SHOP_PREFIX}/c/{CATEGORY}"
PRODUCT_PATH = f"{apps.SHOP_PREFIX}/products/{PRODUCT}"
PRODUCT_LINK = re.compile(r'href="[^"]*/products/([^"/?#]+)"')


def say(line: str = "") -> None:
    """Print one line; only the per-page summary may name the word the caller greps for."""
    if "ratio" in line.lower():
        raise AssertionError(f"only the summary lines may contain that word: {line!r}")
    print(line, flush=True)


# -- checks ----------------------------------------------------------------------------------


@dataclass
class Seeded:
    slugs: list[str]  # the category's products, newest first
    sku_codes: list[str]  # the SKUs of the measured product


def check_category(side: str, body: str, seeded: Seeded) -> None:
    links = PRODUCT_LINK.findall(body)
    if links != seeded.slugs:
        raise RuntimeError(
            f"{side} category page: expected links to the {len(seeded.slugs)} products newest "
            f"first, found {len(links)} product links ({len(set(links) & set(seeded.slugs))} "
            "of the seeded ones)"
        )


def check_product(side: str, body: str, seeded: Seeded) -> None:
    missing = [code for code in seeded.sku_codes if code not in body]
    if "Bench product 050" not in body or missing:
        raise RuntimeError(f"{side} product page: title or SKUs {missing} missing")


def verify(koudai: Server, bare: Server, hello: Server, seeded: Seeded) -> str | None:
    """Status 200 and the expected content everywhere; returns koudai's session cookie.

    A first visit gets a session cookie from koudai (the CSRF token of its forms); the timed
    requests send it back, as a browser would, to every server alike.
    """
    cookie: str | None = None
    for path in (CATEGORY_PATH, PRODUCT_PATH):  # a visitor's first page, then the next
        status, _, set_cookie = fetch(koudai.url(path), cookie)
        if status != 200:
            raise RuntimeError(f"koudai {path}: status {status}")
        cookie = set_cookie or cookie
    for server in (koudai, bare):
        status, body, _ = fetch(server.url(CATEGORY_PATH), cookie)
        if status != 200:
            raise RuntimeError(f"{server.name} category page: status {status}")
        check_category(server.name, body, seeded)
        status, body, _ = fetch(server.url(PRODUCT_PATH), cookie)
        if status != 200:
            raise RuntimeError(f"{server.name} product page: status {status}")
        check_product(server.name, body, seeded)
    status, body, _ = fetch(hello.url("/"), cookie)
    if (status, body) != (200, "hello"):
        raise RuntimeError(f"hello server: status {status}, body {body[:80]!r}")
    return cookie


# -- seeding ---------------------------------------------------------------------------------


def seed(app: Flask) -> Seeded:
    """One category of PRODUCTS products, each with 3 SKUs and IMAGES images, via services."""
    with app.app_context():
        catalog.create_category("Bench", CATEGORY)
        for i in range(PRODUCTS):
            catalog.create_product(
                title=f"Bench product {i:03d}",
                slug=f"bench-product-{i:03d}",
                category=CATEGORY,
                description=f"Product {i} of the storefront benchmark. " * 8,
                options=["size"],
                skus=[
                    {
                        "code": f"BENCH-{i:03d}-{size}",
                        "price": 4900 + 100 * i + 1000 * j,
                        "attributes": {"size": size},
                        "stock": (i + j) % 12,  # a few sold out, a few running low
                    }
                    for j, size in enumerate(SIZES)
                ],
                images=[f"bench/{i:03d}-{k}.jpg" for k in range(IMAGES)],
            )
    slugs = [f"bench-product-{i:03d}" for i in reversed(range(PRODUCTS))]
    return Seeded(slugs, [f"BENCH-050-{size}" for size in SIZES])


# -- the run ---------------------------------------------------------------------------------

PAGES = {"category": CATEGORY_PATH, "product": PRODUCT_PATH}


@dataclass
class Slot:
    page: str
    side: str
    runs: list[Run] = field(default_factory=list)
    app_cpu: float = 0.0  # seconds of the server's processes during the timed runs
    database_cpu: float = 0.0  # seconds of PostgreSQL's processes during the timed runs

    @property
    def rate(self) -> float:
        seconds = sum(r.seconds for r in self.runs)
        return sum(r.requests for r in self.runs) / seconds if seconds else 0.0

    def latency(self) -> str:
        p50 = statistics.median(r.p50_ms for r in self.runs)
        p95 = statistics.median(r.p95_ms for r in self.runs)
        return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"

    def cpu(self) -> str:
        """Where one request's CPU went: the app's processes and PostgreSQL's."""
        requests = sum(r.requests for r in self.runs)
        if not requests or not (self.app_cpu or self.database_cpu):
            return "CPU not measured"
        app, database = (1000 * value / requests for value in (self.app_cpu, self.database_cpu))
        return f"CPU per request: app {app:.2f} ms, PostgreSQL {database:.2f} ms"


def measure(
    client: Client, servers: dict[str, Server], args: argparse.Namespace
) -> dict[tuple[str, str], Slot]:
    """Warm every server up, then alternate koudai and bare, page by page, round by round."""
    plan = [(page, side) for page in PAGES for side in ("koudai", "bare")] + [("hello", "bare")]
    slots = {key: Slot(*key) for key in plan}
    for page, side in plan:
        path = PAGES.get(page, "/")
        server = servers["hello" if page == "hello" else side]
        warm = client.run(server.url(path), args.warmup)
        if warm.requests == 0 or warm.failures:
            raise RuntimeError(f"warm-up of {side} {page}: {warm.failures} failed responses")
    for round_number in range(1, args.rounds + 1):
        for page, side in plan:
            server = servers["hello" if page == "hello" else side]
            app_before, database_before = cpu_seconds(server)
            run = client.run(server.url(PAGES.get(page, "/")), args.seconds)
            app_after, database_after = cpu_seconds(server)
            slots[(page, side)].app_cpu += app_after - app_before
            slots[(page, side)].database_cpu += database_after - database_before
            if run.failures:
                raise RuntimeError(
                    f"{side} {page}: {run.failures} failed responses (non-2xx or socket "
                    "errors) in a timed run; the figures would be meaningless"
                )
            slots[(page, side)].runs.append(run)
            label = "hello" if page == "hello" else f"{page} {side}"
            say(
                f"  round {round_number}  {label:<16}{run.rate:>9.1f} req/s   "
                f"p50 {run.p50_ms:6.1f} ms   p95 {run.p95_ms:6.1f} ms"
            )
    return slots


# -- setup and teardown ----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_url = default_database_url()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per run")
    parser.add_argument("--rounds", type=int, default=5, help="koudai/bare alternations")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds per page")
    parser.add_argument("--connections", type=int, default=4, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto", help="load generator"
    )
    parser.add_argument(
        "--fresh-visitors",
        action="store_true",
        help="send no session cookie (every request a first visit)",
    )
    parser.add_argument("--database-url", default=default_url, help="a PostgreSQL URL")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup <= 0 or min(args.rounds, args.connections) < 1:
        parser.error("--seconds and --warmup must be > 0, --rounds and --connections >= 1")
    return args


def gunicorn_options(args: argparse.Namespace) -> list[str]:
    """The same worker settings for every server."""
    options = ["--workers", str(args.workers), "--worker-class", args.worker_class]
    if args.worker_class == "gthread":
        options += ["--threads", str(args.threads)]
    return options


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that the servers stop and the schema is dropped on SIGTERM


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    base = make_url(args.database_url)
    if base.get_backend_name() != "postgresql":
        print("this benchmark needs PostgreSQL", file=sys.stderr)
        return 2
    schema = f"koudai_storefront_{os.getpid()}"
    os.environ.update(
        {
            apps.ENV_URL: base.render_as_string(hide_password=False),
            apps.ENV_SCHEMA: schema,
            apps.ENV_SECRET: secrets.token_hex(16),
        }
    )
    kind = pick_client(args.client)
    admin = create_engine(base, poolclass=sqlalchemy.NullPool)
    say("koudai storefront benchmark: category and product pages vs the same rows done bare")
    say(
        f"  Python {platform.python_version()}, Flask {version('flask')}, SQLAlchemy "
        f"{sqlalchemy.__version__}, psycopg {psycopg.__version__}, PostgreSQL "
        f"{server_version(admin)}, gunicorn {version('gunicorn')}, koudai-flask "
        f"{version('koudai-flask')}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at start"
    )
    try:
        with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
            stack.enter_context(bench_schema(admin, schema))
            setup = create_engine(apps.schema_url(), poolclass=sqlalchemy.NullPool)
            create_all(setup)
            app = apps.koudai_app()
            bare = apps.bare_app()
            # Closed before the schema is dropped (the stack unwinds in reverse).
            stack.callback(get_state(app).get_engine().dispose)
            stack.callback(get_state(app).stop, app)  # its buffered funnel events written
            stack.callback(bare.extensions["bench_database"].close)
            began = time.perf_counter()
            seeded = seed(app)
            say(
                f"  schema {schema}: {PRODUCTS} products in one category, {len(SIZES)} SKUs "
                f"and {IMAGES} images each, seeded through koudai's services in "
                f"{time.perf_counter() - began:.1f} s; KOUDAI_PAGE_SIZE={apps.PAGE_SIZE}"
            )
            servers = {
                name: Server(name, f"{name}_app", free_port(), Path(workdir) / f"{name}.log")
                for name in ("koudai", "bare", "hello")
            }
            env = dict(os.environ)
            for server in servers.values():
                stack.enter_context(serving(server, gunicorn_options(args), env))
            cookie = verify(servers["koudai"], servers["bare"], servers["hello"], seeded)
            if args.fresh_visitors:
                cookie = None
            client = Client(kind, args.connections, cookie or "", Path(workdir))
            workers = f"{args.workers} {args.worker_class} workers"
            if args.worker_class == "gthread":
                workers += f" x {args.threads} threads"
            say(
                f"  gunicorn on 127.0.0.1, {workers} per server; load: {client.describe()}; "
                f"{plural(args.rounds, 'round')} of {args.seconds:g} s per page and side after "
                f"{args.warmup:g} s warm-up; "
                + ("no cookies (first visits)" if cookie is None else "session cookie sent")
            )
            say(
                f"  checked before timing: both category pages link the same {PRODUCTS} "
                f"products in the same order, both product pages show its "
                f"{len(seeded.sku_codes)} SKUs, every response 200"
            )
            say()
            slots = measure(client, servers, args)
            say()
            achieved: dict[str, float] = {}
            for page in PAGES:
                lib, floor = slots[(page, "koudai")], slots[(page, "bare")]
                achieved[page] = lib.rate / floor.rate if floor.rate else float("nan")
                say(
                    f"{page} koudai {lib.rate:.1f} req/s ({lib.latency()}), "
                    f"bare {floor.rate:.1f} req/s ({floor.latency()})"
                )
                say(f"  {page} koudai {lib.cpu()}; bare {floor.cpu()}")
                print(f"{page} ratio {achieved[page]:.2f}", flush=True)
            hello = slots[("hello", "bare")]
            say(
                f"hello (bare Flask, for reference) {hello.rate:.1f} req/s ({hello.latency()}); "
                f"{hello.cpu()}"
            )
            met = all(value >= TARGET for value in achieved.values())
            say(
                f"target: koudai at {TARGET:g} of bare or better on both pages: "
                + ("met" if met else "NOT met")
            )
            say()
            print_breakdowns(app, bare, cookie, PAGES, say)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped, bench schema dropped", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"storefront benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
