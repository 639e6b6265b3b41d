"""Fixtures: an app per backend (SQLite always; PostgreSQL and Redis when reachable).

``KOUDAI_TEST_DATABASE_URL`` names the PostgreSQL database and ``KOUDAI_TEST_REDIS_URL`` the
Redis; with ``KOUDAI_REQUIRE_SERVICES=1`` (CI) an unreachable service fails the run instead
of skipping its tests. Each pytest process works in its own PostgreSQL schema; under
pytest-xdist each worker also gets its own Redis database (see ``worker_redis_url``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from koudai_flask import Koudai, passwords
from koudai_flask.extension import get_state
from koudai_flask.models import metadata
from koudai_flask.schema import create_all, seed_rows
from tests.helpers import fresh_sqlite_url
from tests.suite_speed import forget_compiled_statements, settle_heap
from tests.url_builders import share_url_builders

if TYPE_CHECKING:
    from tests.tryton_server import TrytonServer

share_url_builders()  # see tests/url_builders.py: half of each app's start


def pytest_collection_finish(session: pytest.Session) -> None:
    settle_heap()  # see tests/suite_speed.py


PG_URL = os.environ.get(
    "KOUDAI_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE = os.environ.get("KOUDAI_REQUIRE_SERVICES") == "1"
PG_SCHEMA = f"koudai_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def worker_redis_url(url: str, worker: str | None) -> str:
    """The Redis URL for one pytest-xdist worker: database base + index + 1.

    Tests flush their database ("Redis lost its data"); workers sharing one would wipe each
    other's queues. ``worker`` is ``PYTEST_XDIST_WORKER`` (``gw0``, ``gw1``...), unset when
    pytest runs without xdist, which keeps the configured database.
    """
    if not worker:
        return url
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw")) + 1
    return urlunsplit(parts._replace(path=f"/{number}"))


REDIS_URL = worker_redis_url(
    os.environ.get("KOUDAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("PYTEST_XDIST_WORKER"),
)


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (KOUDAI_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def pg_url_in_schema(schema: str) -> str:
    """``PG_URL`` with every connection working in ``schema``.

    Commits do not wait for the WAL flush (``synchronous_commit=off``): what other
    transactions see, the locks and the isolation are unchanged; only a server crash could
    lose the last commits, which no test is about.
    """
    separator = "&" if "?" in PG_URL else "?"
    options = f"-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"
    return f"{PG_URL}{separator}options={options}"


def _pg_url_with_schema() -> str:
    return pg_url_in_schema(PG_SCHEMA)


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        unavailable(f"PostgreSQL at {PG_URL} is not reachable: {type(exc).__name__}")
    engine = create_engine(_pg_url_with_schema(), pool_size=2)
    create_all(engine)
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {PG_SCHEMA} CASCADE"))
    admin.dispose()


def _empty(engine: Engine) -> None:
    """Empty every koudai table and restart every id sequence, then seed.

    Only the tables holding rows are emptied (found with one query), children first, with
    DELETE: a test leaves a few rows in a few tables, and TRUNCATE would give each of those
    tables and its indexes new files (measured ~0.6 s a test against ~0.05 s for DELETE).
    The sequences are all reset in one statement.
    """
    names = [t.name for t in metadata.sorted_tables]
    probe = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in names
    )
    with engine.begin() as connection:
        filled = set(connection.scalars(text(probe)))
        for table in reversed(metadata.sorted_tables):
            if table.name in filled:
                connection.execute(table.delete())
        connection.execute(
            text(
                "SELECT setval(c.oid, 1, false) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'S' AND n.nspname = current_schema()"
            )
        )
        seed_rows(connection)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded koudai SQLite file made once; each test gets a copy (creating the ~80 tables
    anew costs a file sync per statement, far more than copying the file)."""
    path = tmp_path_factory.mktemp("schema") / "koudai.db"
    engine = create_engine(f"sqlite:///{path}")
    create_all(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, seeded koudai database on each backend."""
    if request.param == "sqlite":
        return fresh_sqlite_url(request.getfixturevalue("sqlite_template"), tmp_path)
    engine = request.getfixturevalue("pg_engine")
    _empty(engine)
    return _pg_url_with_schema()


@pytest.fixture
def postgres_url(pg_engine: Engine) -> str:
    """PostgreSQL only (concurrency tests)."""
    _empty(pg_engine)
    return _pg_url_with_schema()


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[AppFactory]:
    """Build a Flask app with koudai on its own engine: ``make_app(url, **config)``.

    In a module marked ``services_only`` the app registers no blueprints (a host's choice
    too, ``KOUDAI_REGISTER_BLUEPRINTS``): their ~245 URL rules are most of an app's start.
    """
    apps: list[Flask] = []
    pages = request.node.get_closest_marker("services_only") is None

    def factory(url: str, **config: Any) -> Flask:
        app = Flask(f"koudai_test_{len(apps)}", instance_path=str(tmp_path / f"inst{len(apps)}"))
        app.config.update(
            SECRET_KEY="test-secret",
            TESTING=True,
            KOUDAI_DATABASE_URI=url,
            KOUDAI_PASSWORD_HASH=passwords.FOR_TESTS,  # tests/test_passwords.py uses the default
            KOUDAI_REGISTER_BLUEPRINTS=pages,
        )
        app.config.update(config)
        Koudai(app)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        get_state(app).stop(app)
        engine = get_state(app).engine
        if engine is not None:
            engine.dispose()
    if apps:
        forget_compiled_statements()


@pytest.fixture
def app(make_app: AppFactory, database_url: str) -> Iterator[Flask]:
    app = make_app(database_url)
    with app.app_context():
        yield app


@pytest.fixture
def redis_url() -> str:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        Redis.from_url(REDIS_URL).ping()
    except RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} is not reachable: {type(exc).__name__}")
    return REDIS_URL


@pytest.fixture
def shirt(app: Flask) -> Any:
    """A product with two SKUs, 10 of each on hand."""
    from koudai_flask.services import catalog

    return catalog.create_product(
        title="Oxford shirt",
        options=["color"],
        skus=[
            {"code": "SHIRT-W", "price": 12900, "attributes": {"color": "white"}, "stock": 10},
            {"code": "SHIRT-B", "price": 13900, "attributes": {"color": "blue"}, "stock": 10},
        ],
    )


@pytest.fixture(scope="session")
def tryton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    """One Tryton server for the whole session (tests/tryton_server.py), built once.

    Defined here and not imported into each module using it: an imported fixture is one
    fixture per module, and each would build its own server (~40 s).
    """
    from tests.tryton_server import serve_tryton

    yield from serve_tryton(tmp_path_factory)


@pytest.fixture
def running_tryton(tryton_server: TrytonServer) -> TrytonServer:
    """The session server, restarted first if an earlier test stopped it."""
    tryton_server.start()
    return tryton_server
