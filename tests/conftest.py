"""Fixtures: an app per backend (SQLite always; PostgreSQL and Redis when reachable).

``KOUDAI_TEST_DATABASE_URL`` names the PostgreSQL database and ``KOUDAI_TEST_REDIS_URL`` the
Redis; with ``KOUDAI_REQUIRE_SERVICES=1`` (CI) an unreachable service fails the run instead
of skipping its tests. Each pytest process works in its own PostgreSQL schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from koudai_flask import Koudai
from koudai_flask.extension import get_state
from koudai_flask.models import metadata
from koudai_flask.schema import create_all, seed_rows
from tests.helpers import fresh_sqlite_url

PG_URL = os.environ.get(
    "KOUDAI_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("KOUDAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE = os.environ.get("KOUDAI_REQUIRE_SERVICES") == "1"
PG_SCHEMA = f"koudai_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (KOUDAI_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def _pg_url_with_schema() -> str:
    separator = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{separator}options=-csearch_path%3D{PG_SCHEMA}"


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


def _truncate(engine: Engine) -> None:
    """Empty every koudai table and restart every id sequence, then seed.

    Truncating all ~80 tables costs a file operation each; only those holding rows are
    truncated (found with one query), and the sequences are all reset in one statement.
    """
    names = [t.name for t in metadata.sorted_tables]
    probe = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in names
    )
    with engine.begin() as connection:
        filled = list(connection.scalars(text(probe)))
        if filled:
            connection.execute(text(f"TRUNCATE {', '.join(filled)} CASCADE"))
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
    _truncate(engine)
    return _pg_url_with_schema()


@pytest.fixture
def postgres_url(pg_engine: Engine) -> str:
    """PostgreSQL only (concurrency tests)."""
    _truncate(pg_engine)
    return _pg_url_with_schema()


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Any) -> Iterator[AppFactory]:
    """Build a Flask app with koudai on its own engine: ``make_app(url, **config)``."""
    apps: list[Flask] = []

    def factory(url: str, **config: Any) -> Flask:
        app = Flask(f"koudai_test_{len(apps)}", instance_path=str(tmp_path / f"inst{len(apps)}"))
        app.config.update(SECRET_KEY="test-secret", TESTING=True, KOUDAI_DATABASE_URI=url)
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
