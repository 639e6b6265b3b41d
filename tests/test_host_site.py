"""The demo merchant site (examples/host_site): its own pages and accounts, koudai embedded.

The site is built by its own factory on a fresh database (SQLite, and PostgreSQL when
reachable) and set up with the commands ``make demo`` runs: ``init-db``, ``koudai db
upgrade``, ``koudai demo seed`` and ``seed-users``. Logins go through the site's own form,
CSRF token included.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import create_engine, func, inspect, select, text

from examples.host_site import run_demo
from examples.host_site.app import create_app
from examples.host_site.commands import DEMO_ACCOUNTS
from examples.host_site.extensions import db
from examples.host_site.models import User
from koudai_flask.models import (
    FunnelEvent,
    Order,
    OrderLine,
    OrderMemo,
    Product,
    ProductReview,
    Sku,
    StaffMember,
)
from koudai_flask.services import best_sellers, funnel_stats
from tests.conftest import PG_URL, pg_url_in_schema, unavailable
from tests.helpers import assert_ledger_consistent

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCTS = 31
SETUP_COMMANDS = (
    ["init-db"],
    ["koudai", "db", "upgrade"],
    ["koudai", "demo", "seed", "--products", str(PRODUCTS)],
    ["seed-users"],
)
ACCOUNTS = {account.role or "buyer": account for account in DEMO_ACCOUNTS}
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def build_site(url: str, tmp_path: Path) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "host-site-test",
            "KOUDAI_MEDIA_FOLDER": str(tmp_path / "media"),
        }
    )


def run_command(app: Flask, args: list[str]) -> str:
    result = app.test_cli_runner().invoke(args=args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """A site set up as ``make demo`` does, shared by the read-only tests of this module."""
    with set_up_site(request.param, tmp_path_factory.mktemp("host_site")) as app:
        yield app


@contextlib.contextmanager
def set_up_site(backend: str, tmp_path: Path) -> Iterator[Flask]:
    """A site on a fresh SQLite file or PostgreSQL schema, after ``SETUP_COMMANDS``."""
    drop_schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'site.db'}"
    else:
        url, drop_schema = _postgres_schema()
    app = build_site(url, tmp_path)
    try:
        for args in SETUP_COMMANDS:
            run_command(app, args)
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        if drop_schema is not None:
            drop_schema()


def _postgres_schema() -> tuple[str, Any]:
    """A fresh PostgreSQL schema for one site, and the function that drops it."""
    schema = f"host_site_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        admin.dispose()
        unavailable(f"PostgreSQL at {PG_URL} is not reachable: {type(exc).__name__}")

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return pg_url_in_schema(schema), drop


def sign_in(client: FlaskClient, email: str, password: str) -> None:
    """Log in through the site's form, as a browser would, and land on the back office."""
    page = client.get("/login?next=/shop-admin/")
    assert page.status_code == 200
    match = CSRF_INPUT.search(page.get_data(as_text=True))
    assert match is not None
    response = client.post(
        "/login?next=/shop-admin/",
        data={"csrf_token": match.group(1), "email": email, "password": password},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/shop-admin/"


def test_home_page_is_the_sites_own(site: Flask) -> None:
    response = site.test_client().get("/")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>山茶小铺 Camellia Store</h1>" in body
    assert "店铺公告 News" in body
    assert 'href="/shop/"' in body
    assert 'href="/shop-admin/"' in body
    assert 'href="/login"' in body


def test_shop_lists_the_products_of_the_database_inside_the_site(site: Flask) -> None:
    response = site.test_client().get("/shop/")
    body = response.get_data(as_text=True)
    with site.app_context():
        assert db.session.scalar(select(func.count()).select_from(Product)) == PRODUCTS
        newest = db.session.scalars(
            select(Product.title).order_by(Product.created_at.desc(), Product.id.desc()).limit(20)
        ).all()
    assert response.status_code == 200
    assert len(newest) == 20
    for title in newest:
        assert str(escape(title)) in body, title
    # Drawn inside the site's layout (KOUDAI_BASE_TEMPLATE), with the site's own header.
    assert '<a class="site-logo" href="/">' in body
    assert "/static/site.css" in body


def test_product_page_shows_its_variants(site: Flask) -> None:
    with site.app_context():
        product = db.session.scalar(select(Product).where(Product.slug == "demo-001"))
        assert product is not None
        title, codes = product.title, [sku.code for sku in product.skus]
    response = site.test_client().get("/shop/products/demo-001")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"<h1>{escape(title)}</h1>" in body
    assert codes
    for code in codes:
        assert f'name="sku" value="{code}"' in body


def test_back_office_sends_an_anonymous_visitor_to_the_sites_login(site: Flask) -> None:
    client = site.test_client()
    response = client.get("/shop-admin/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fshop-admin%2F"
    login_page = client.get(response.headers["Location"])
    assert login_page.status_code == 200
    assert "请先登录。 Please sign in first." in login_page.get_data(as_text=True)


def test_a_shop_button_pressed_signed_out_comes_back_to_its_page_after_the_sites_login(
    site: Flask,
) -> None:
    """A button posts (到货通知我, 删除): the site's login is told the page to come back to,
    not the POST's address, which a browser cannot open again."""
    with site.app_context():
        code = db.session.scalar(
            select(Sku.code).join(Product).where(Product.slug == "demo-001").limit(1)
        )
    client = site.test_client()
    page = client.get("/shop/products/demo-001").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    asked = client.post("/shop/alerts", data={"sku": code, "csrf_token": token})
    assert asked.status_code == 302
    assert asked.headers["Location"] == "/login?next=%2Fshop%2Fproducts%2Fdemo-001"
    assert "请先登录。 Please sign in first." in client.get(asked.headers["Location"]).get_data(
        as_text=True
    )
    removed = client.post("/shop/account/addresses/1/delete", data={"csrf_token": token})
    assert removed.headers["Location"] == "/login?next=%2Fshop%2Faccount%2Faddresses"


def test_login_form_rejects_a_post_without_csrf_token(site: Flask) -> None:
    client = site.test_client()
    owner = ACCOUNTS["owner"]
    response = client.post("/login", data={"email": owner.email, "password": owner.password})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)
    assert client.get("/shop-admin/").status_code == 302


def test_login_form_rejects_a_wrong_password(site: Flask) -> None:
    client = site.test_client()
    page = client.get("/login")
    match = CSRF_INPUT.search(page.get_data(as_text=True))
    assert match is not None
    response = client.post(
        "/login",
        data={"csrf_token": match.group(1), "email": ACCOUNTS["owner"].email, "password": "nope"},
    )
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/shop-admin/").status_code == 302


def test_signed_in_buyer_is_forbidden_the_back_office(site: Flask) -> None:
    client = site.test_client()
    buyer = ACCOUNTS["buyer"]
    sign_in(client, buyer.email, buyer.password)
    assert client.get("/shop-admin/").status_code == 403
    assert client.get("/shop/").status_code == 200


def test_owner_sees_the_dashboard_with_the_product_count(site: Flask) -> None:
    client = site.test_client()
    owner = ACCOUNTS["owner"]
    sign_in(client, owner.email, owner.password)
    response = client.get("/shop-admin/")
    body = response.get_data(as_text=True)
    with site.app_context():
        active = db.session.scalar(
            select(func.count()).select_from(Product).where(Product.status == "active")
        )
    assert response.status_code == 200
    assert active == PRODUCTS
    assert f'<dd id="product-count">{active}</dd>' in body
    assert "王店长 Shop owner (owner)" in body


def test_customer_service_agent_sees_the_dashboard(site: Flask) -> None:
    client = site.test_client()
    agent = ACCOUNTS["customer_service"]
    sign_in(client, agent.email, agent.password)
    response = client.get("/shop-admin/")
    assert response.status_code == 200
    assert "小美 Customer service (customer_service)" in response.get_data(as_text=True)


def test_sign_out_ends_the_back_office_session(site: Flask) -> None:
    client = site.test_client()
    owner = ACCOUNTS["owner"]
    sign_in(client, owner.email, owner.password)
    home = client.get("/").get_data(as_text=True)
    match = CSRF_INPUT.search(home)
    assert match is not None
    response = client.post("/logout", data={"csrf_token": match.group(1)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/shop-admin/").status_code == 302


def test_setup_commands_can_run_again(site: Flask) -> None:
    assert "nothing added" in run_command(site, ["koudai", "demo", "seed"])
    output = run_command(site, ["seed-users"])
    assert output.splitlines() == [
        "exists  owner@example.com      staff role owner",
        "exists  service@example.com    staff role customer_service",
        "exists  buyer@example.com      shopper, no back office",
    ]
    run_command(site, ["init-db"])
    run_command(site, ["koudai", "db", "upgrade"])
    with site.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 3
        assert db.session.scalar(select(func.count()).select_from(Product)) == PRODUCTS
        roles = db.session.execute(select(StaffMember.user_id, StaffMember.role)).all()
        owner = db.session.scalar(select(User).where(User.email == ACCOUNTS["owner"].email))
        agent = db.session.scalar(
            select(User).where(User.email == ACCOUNTS["customer_service"].email)
        )
        assert owner is not None and agent is not None
        assert sorted(roles) == sorted(
            [(str(owner.id), "owner"), (str(agent.id), "customer_service")]
        )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sample_sales_are_real_orders_of_past_days_placed_once(
    backend: str, tmp_path: Path
) -> None:
    """``flask seed-sales``: paid orders through the engine, spread over the days asked,
    shipped and delivered but the last two days', stock held and taken as for real orders,
    no funnel steps; run again, it adds nothing."""
    with set_up_site(backend, tmp_path) as app:
        first = run_command(app, ["seed-sales", "--days", "10"])
        placed = int(re.fullmatch(r"sample orders placed over 10 days: (\d+)\n", first).group(1))
        assert run_command(app, ["seed-sales", "--days", "10"]) == "sample orders exist\n"
        with app.app_context():
            session = db.session
            rows = session.execute(select(Order.channel, Order.status, Order.paid_at)).all()
            assert len(rows) == placed > 10
            today = funnel_stats.today()
            zone = funnel_stats.zone()
            for channel, status, paid_at in rows:
                back = (
                    today - paid_at.replace(tzinfo=paid_at.tzinfo or UTC).astimezone(zone).date()
                ).days
                assert channel == "web" and 1 <= back <= 10
                assert status == ("paid" if back <= 2 else "delivered"), (back, status)
            assert {status for _, status, _ in rows} == {"paid", "delivered"}
            assert session.scalar(select(func.count()).select_from(FunnelEvent)) == 0
            sold = session.scalar(select(func.sum(OrderLine.quantity)))
            ranking = best_sellers.ranking(today - timedelta(days=10), today, limit=None)
            assert ranking.units == sold and ranking.rows[0].units > ranking.rows[-1].units
            assert_ledger_consistent(session)
            written = session.scalar(select(func.count()).select_from(ProductReview))
            assert written and session.scalar(select(func.sum(Product.review_count))) == written
            # Some orders to pack carry the seller's memo and flag; shipped ones none.
            memos = session.execute(
                select(Order.status, OrderMemo.flag).join(OrderMemo, OrderMemo.order_id == Order.id)
            ).all()
            assert memos and {status for status, _ in memos} == {"paid"}
            assert all(1 <= flag <= 5 for _, flag in memos)


def test_site_tables_and_koudai_tables_are_made_by_their_own_commands(site: Flask) -> None:
    with site.app_context():
        tables = set(inspect(db.engine).get_table_names())
        assert set(db.metadata.tables) == {"users"}
    assert {name for name in tables if not name.startswith("koudai_")} == {"users"}
    assert {"koudai_alembic_version", "koudai_product", "koudai_staff_member"} <= tables


def test_site_blueprints_package_does_not_collide_with_koudais(tmp_path: Path) -> None:
    import examples.host_site.blueprints as site_blueprints
    import koudai_flask.blueprints as koudai_blueprints

    assert site_blueprints is not koudai_blueprints
    assert (
        Path(site_blueprints.__file__ or "").parent == REPO_ROOT / "examples/host_site/blueprints"
    )
    assert Path(koudai_blueprints.__file__ or "").parent == REPO_ROOT / "koudai_flask/blueprints"
    # Neither side needs a top-level module called "blueprints".
    assert "blueprints" not in sys.modules

    app = build_site(f"sqlite:///{tmp_path / 'site.db'}", tmp_path)
    routes = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}
    assert routes["/"] == "main.index"
    assert routes["/login"] == "auth.login"
    assert routes["/logout"] == "auth.logout"
    assert routes["/shop/"] == "koudai_shop.index"
    assert routes["/shop/products/<slug>"] == "koudai_shop.product"
    assert routes["/shop-admin/"] == "koudai_admin.index"
    assert routes["/shop-api/v1/"] == "koudai_api.root"
    assert routes["/shop-hooks/health"] == "koudai_hooks.health"
    assert set(app.blueprints) == {
        "main",
        "auth",
        "koudai",
        "koudai_shop",
        "koudai_admin",
        "koudai_api",
        "koudai_hooks",
    }
    with app.app_context():
        db.engine.dispose()


def test_site_keeps_its_database_in_its_own_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HOST_SITE_DATABASE_URL", "HOST_SITE_SECRET_KEY", "HOST_SITE_INSTANCE_PATH"):
        monkeypatch.delenv(name, raising=False)
    configured = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"})
    assert configured.instance_path == str(REPO_ROOT / "examples" / "host_site" / "instance")

    monkeypatch.setenv("HOST_SITE_INSTANCE_PATH", str(tmp_path / "instance"))
    default = create_app()
    assert default.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/instance/demo.db"
    secret = (tmp_path / "instance" / "secret_key").read_text()
    assert default.config["SECRET_KEY"] == secret
    assert create_app().config["SECRET_KEY"] == secret  # kept across restarts

    monkeypatch.setenv("HOST_SITE_DATABASE_URL", "postgresql+psycopg://shop@db.internal/shop")
    assert (
        create_app().config["SQLALCHEMY_DATABASE_URI"]
        == "postgresql+psycopg://shop@db.internal/shop"
    )


def test_make_demo_setup_runs_twice(tmp_path: Path) -> None:
    """``make demo``'s set-up, end to end in a subprocess, on a fresh instance folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOST_SITE_", "FLASK_"))}
    env["HOST_SITE_INSTANCE_PATH"] = str(tmp_path / "instance")
    command = [sys.executable, "-m", "examples.host_site.run_demo", "--no-serve", "--port", "5123"]

    runs = [
        subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        for _ in range(2)
    ]

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "  Site home    http://127.0.0.1:5123/\n" in run.stdout
        assert "  Shop         http://127.0.0.1:5123/shop/\n" in run.stdout
        assert "  Back office  http://127.0.0.1:5123/shop-admin/\n" in run.stdout
        for account in DEMO_ACCOUNTS:
            assert f"  {account.email:<22} {account.password:<18} " in run.stdout
    assert "created 36 products" in runs[0].stdout
    assert "the demo catalog is already there; nothing added" in runs[1].stdout
    assert "exists  owner@example.com" in runs[1].stdout

    instance = tmp_path / "instance"
    assert (instance / "koudai-media" / "demo" / "p036-0.svg").is_file()
    engine = create_engine(f"sqlite:///{instance / 'demo.db'}")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM users")) == 3
        assert connection.scalar(text("SELECT count(*) FROM koudai_product")) == 36
        assert connection.scalar(text("SELECT count(*) FROM koudai_staff_member")) == 2
    engine.dispose()


def _demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOST_SITE_", "FLASK_"))}
    env["HOST_SITE_INSTANCE_PATH"] = str(tmp_path / "instance")
    return env


def _free_block(count: int) -> int:
    """A port with ``count`` free ports from it on, as the demo needs for its sandboxes."""
    rng = random.Random()
    for _ in range(200):
        start = rng.randrange(20_000, 32_000)  # below Linux's ephemeral ports (32768 on)
        if not run_demo.busy_ports(range(start, start + count)):
            return start
    raise RuntimeError("no block of free ports")


def test_the_demo_refuses_a_busy_port_before_setting_anything_up(tmp_path: Path) -> None:
    port = _free_block(len(run_demo.demo_ports(0)))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", port + 2))  # the Alipay sandbox's port
        holder.listen()
        run = subprocess.run(
            [sys.executable, "-m", "examples.host_site.run_demo", "--port", str(port)],
            env=_demo_env(tmp_path),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"port {port + 2} already in use (another demo still running?): stop it, or pick other "
        f"ports with `make demo PORT={port + 100}`"
    ]
    assert run.stdout == ""
    assert not (tmp_path / "instance" / "demo.db").exists()


def test_stopping_the_demo_stops_the_site_and_every_sandbox(tmp_path: Path) -> None:
    ports = run_demo.demo_ports(_free_block(len(run_demo.demo_ports(0))))
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        [sys.executable, "-m", "examples.host_site.run_demo", "--port", str(ports[0])],
        env=_demo_env(tmp_path),
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, for the clean-up below
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/shop/", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
                time.sleep(0.5)
        assert run_demo.busy_ports(ports) == ports  # the site and its five sandboxes

        demo.send_signal(signal.SIGTERM)  # to the demo alone, not its process group
        assert demo.wait(timeout=60) == 0
        deadline = time.monotonic() + 15
        while run_demo.busy_ports(ports) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run_demo.busy_ports(ports) == []
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever a failure left running
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=30)
        log.close()


def test_a_failing_set_up_step_stops_the_demo_with_its_status_and_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Set-up runs the Flask CLI in this process: a step it refuses ends the demo as the
    ``flask`` command would (its message, its exit status) and names the step."""
    monkeypatch.setattr(run_demo, "SETUP_STEPS", [["koudai", "no-such-step"]])
    monkeypatch.delenv("FLASK_APP", raising=False)

    status = run_demo.main(["--no-serve"])

    err = capsys.readouterr().err
    assert status == 2
    assert "No such command 'no-such-step'" in err
    assert "demo set-up failed at: flask koudai no-such-step" in err
    assert "FLASK_APP" not in os.environ  # the steps' environment is not left behind
