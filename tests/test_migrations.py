"""``flask koudai db ...``: the shipped migration builds exactly the models' schema.

Each test starts from an empty database of its own (a new SQLite file, or a new
PostgreSQL schema reached through ``search_path``), because the shared fixtures already
hold a schema made by ``create_all``.
"""

from __future__ import annotations

import logging.config
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from koudai_flask import Koudai
from koudai_flask.migrations import SCRIPT_LOCATION, VERSION_TABLE, exclude_koudai_tables
from koudai_flask.models import metadata
from koudai_flask.schema import create_all
from tests.conftest import PG_URL, pg_url_in_schema, unavailable

HEAD = ScriptDirectory(SCRIPT_LOCATION).get_current_head()
EmptyDatabase = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmptyDatabase]:
    """``empty_database()`` returns the URL of a new database with no tables at all."""
    schemas: list[str] = []
    admin: Engine | None = None
    if request.param == "postgresql":
        admin = create_engine(PG_URL)
        try:
            with admin.connect():
                pass
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            admin.dispose()
            unavailable(f"PostgreSQL at {PG_URL} is not reachable: {type(exc).__name__}")

    def factory() -> str:
        name = f"empty_{len(schemas)}_{uuid.uuid4().hex[:6]}"
        if admin is None:
            schemas.append(name)
            return f"sqlite:///{tmp_path / name}.db"
        schema = f"koudai_mig_{os.getpid()}_{name}"
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        schemas.append(schema)
        return pg_url_in_schema(schema)

    yield factory
    if admin is not None:
        with admin.begin() as connection:
            # A leaked open transaction must fail the teardown, not hang it.
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            for schema in schemas:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def engines() -> Iterator[Callable[[str], Engine]]:
    """``engines(url)``: an engine that is disposed of when the test ends."""
    made: list[Engine] = []

    def factory(url: str) -> Engine:
        made.append(create_engine(url))
        return made[-1]

    yield factory
    for engine in made:
        engine.dispose()


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _sql(value: str | None) -> str:
    """A reflected SQL expression without the spacing and outer parentheses a backend adds."""
    value = re.sub(r"\s+", " ", value or "").strip()
    while value.startswith("(") and value.endswith(")"):
        value = value[1:-1].strip()
    return value


def describe_schema(engine: Engine, tables: set[str]) -> dict[str, dict[str, Any]]:
    """Everything reflection tells about ``tables``, in a form two databases can compare."""
    inspector = inspect(engine)
    dialect = engine.dialect
    described = {}
    for table in sorted(tables):
        # Sorted by name: a later migration's ADD COLUMN appends, while a model declares the
        # column where it reads best; the order carries no meaning.
        columns = sorted(
            (
                column["name"],
                column["nullable"],
                type(column["type"]).__name__,
                column["type"].compile(dialect=dialect),
                column.get("default") is not None,
                column.get("autoincrement"),
            )
            for column in inspector.get_columns(table)
        )
        primary_key = inspector.get_pk_constraint(table)
        described[table] = {
            "columns": columns,
            "primary_key": (primary_key["name"], primary_key["constrained_columns"]),
            "foreign_keys": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    tuple(sorted(fk["options"].items())),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                (uq["name"], tuple(uq["column_names"]))
                for uq in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(table)
            ),
            "checks": sorted(
                (ck["name"], _sql(ck["sqltext"])) for ck in inspector.get_check_constraints(table)
            ),
        }
    return described


def seed_rows(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as connection:
        channels = connection.execute(
            text("SELECT name, kind, active FROM koudai_channel ORDER BY id")
        ).all()
        locations = connection.execute(
            text("SELECT code, name FROM koudai_location ORDER BY id")
        ).all()
    return [tuple(row) for row in channels], [tuple(row) for row in locations]


def upgraded_app(make_app: Callable[..., Flask], url: str) -> Flask:
    app = make_app(url)
    result = invoke(app, "koudai", "db", "upgrade")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "koudai schema is up to date\n",
        "",
    )
    return app


# -- the migration against the models -------------------------------------------------------


def test_upgrade_builds_exactly_the_schema_of_the_models(make_app, empty_database, engines):
    migrated_url, reference_url = empty_database(), empty_database()
    upgraded_app(make_app, migrated_url)
    create_all(engines(reference_url))

    migrated, reference = engines(migrated_url), engines(reference_url)
    model_tables = set(metadata.tables)
    assert len(model_tables) >= 22  # every model of the core, plus later additions
    assert table_names(reference) == model_tables
    assert table_names(migrated) == model_tables | {VERSION_TABLE}
    assert describe_schema(migrated, model_tables) == describe_schema(reference, model_tables)


def test_upgrade_records_its_revision_in_its_own_version_table(make_app, empty_database, engines):
    url = empty_database()
    upgraded_app(make_app, url)

    engine = engines(url)
    assert "alembic_version" not in table_names(engine)
    with engine.connect() as connection:
        versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    assert [tuple(row) for row in versions] == [(HEAD,)]


def test_upgrade_seeds_the_web_channel_and_the_main_location(make_app, empty_database, engines):
    migrated_url, reference_url = empty_database(), empty_database()
    upgraded_app(make_app, migrated_url)
    create_all(engines(reference_url))

    expected = ([("web", "web", True)], [("main", "Main warehouse")])
    assert seed_rows(engines(migrated_url)) == expected
    assert seed_rows(engines(reference_url)) == expected


def test_a_second_upgrade_changes_nothing(make_app, empty_database, engines):
    url = empty_database()
    app = upgraded_app(make_app, url)
    upgraded_app(make_app, url)  # a second app on the same database

    result = invoke(app, "koudai", "db", "upgrade")
    assert result.exit_code == 0
    assert seed_rows(engines(url)) == ([("web", "web", True)], [("main", "Main warehouse")])


def test_db_commands_emit_no_warnings(make_app, empty_database):
    app = make_app(empty_database())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        upgrade = invoke(app, "koudai", "db", "upgrade")
        check = invoke(app, "koudai", "db", "check")
    assert (upgrade.exit_code, check.exit_code) == (0, 0)
    assert [str(warning.message) for warning in caught] == []


def test_current_prints_the_revision(make_app, empty_database):
    app = upgraded_app(make_app, empty_database())

    result = invoke(app, "koudai", "db", "current")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"{HEAD} (head)\n", "")


# -- check ----------------------------------------------------------------------------------


def test_check_passes_right_after_upgrade(make_app, empty_database):
    app = upgraded_app(make_app, empty_database())

    result = invoke(app, "koudai", "db", "check")
    assert (result.exit_code, result.stderr) == (0, "")
    # Alembic's own "No new upgrade operations detected." may come first once its output
    # reaches the command's stdout (see test_current_prints_the_revision).
    assert result.stdout.endswith("koudai schema matches the models\n")


def test_check_ignores_a_host_table(make_app, empty_database, engines):
    url = empty_database()
    app = upgraded_app(make_app, url)
    with engines(url).begin() as connection:
        connection.execute(text("CREATE TABLE articles (id INTEGER PRIMARY KEY)"))

    result = invoke(app, "koudai", "db", "check")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.endswith("koudai schema matches the models\n")


@pytest.mark.parametrize(
    ("ddl", "operation"),
    [
        ("ALTER TABLE koudai_order DROP COLUMN note", "('add_column', None, 'koudai_order'"),
        (
            "ALTER TABLE koudai_customer ADD COLUMN nickname VARCHAR(40)",
            "('remove_column', None, 'koudai_customer'",
        ),
    ],
    ids=["dropped-column", "added-column"],
)
def test_check_exits_1_when_the_database_differs(make_app, empty_database, engines, ddl, operation):
    url = empty_database()
    app = upgraded_app(make_app, url)
    with engines(url).begin() as connection:
        connection.execute(text(ddl))

    result = invoke(app, "koudai", "db", "check")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "schema differs from the models: New upgrade operations detected: [" + operation
    )


# -- downgrade ------------------------------------------------------------------------------


def test_downgrade_base_removes_our_tables_and_keeps_the_host_table(
    make_app, empty_database, engines
):
    url = empty_database()
    app = upgraded_app(make_app, url)
    engine = engines(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT)"))
        connection.execute(text("INSERT INTO articles (id, title) VALUES (7, 'Spring sale')"))

    result = invoke(app, "koudai", "db", "downgrade", "base")
    assert (result.exit_code, result.stderr) == (0, "")

    # Alembic keeps its (now empty) version table at base, as it does for alembic_version.
    assert table_names(engine) == {"articles", VERSION_TABLE}
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 0
        assert connection.execute(text("SELECT id, title FROM articles")).all() == [
            (7, "Spring sale")
        ]

    result = invoke(app, "koudai", "db", "upgrade")
    assert result.exit_code == 0
    assert table_names(engine) == set(metadata.tables) | {"articles", VERSION_TABLE}


# -- a host site on Flask-Migrate -----------------------------------------------------------


@pytest.fixture
def quiet_alembic_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flask-Migrate's env.py calls ``fileConfig``, which would disable every logger that
    exists in the test process; a host's own process is not shared with other tests."""
    monkeypatch.setattr(logging.config, "fileConfig", lambda *args, **kwargs: None)


# Flask-Migrate's generated env.py tries Flask-SQLAlchemy 2's ``db.get_engine()`` first,
# which Flask-SQLAlchemy 3.1 deprecates: a warning from the host's files, not ours.
host_env_warning = pytest.mark.filterwarnings(
    "ignore:'get_engine' is deprecated:DeprecationWarning"
)


def make_host_app(url: str, folder: Path, *, keep_koudai_out: bool) -> Flask:
    """An existing merchant site: its own db, its own model and Flask-Migrate."""
    db = SQLAlchemy()

    class Article(db.Model):  # type: ignore[name-defined]
        __tablename__ = "articles"
        id = db.Column(db.Integer, primary_key=True)
        title = db.Column(db.String(120), nullable=False, index=True)

    app = Flask(f"host_{folder.name}", instance_path=str(folder / "instance"))
    app.config.update(SQLALCHEMY_DATABASE_URI=url, SECRET_KEY="host-secret", TESTING=True)
    db.init_app(app)
    options = {"include_object": exclude_koudai_tables} if keep_koudai_out else {}
    Migrate(app, db, directory=str(folder / "migrations"), **options)
    Koudai(app, db=db)
    return app


def dispose_host(app: Flask) -> None:
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def host_revision_files(folder: Path) -> list[Path]:
    return sorted((folder / "migrations" / "versions").glob("*.py"))


def autogenerate_host_revision(app: Flask, folder: Path) -> str:
    """``flask db init``, ``flask koudai db upgrade``, ``flask db migrate``: the new file."""
    result = invoke(app, "db", "init")
    assert result.exit_code == 0, result.output
    result = invoke(app, "koudai", "db", "upgrade")
    assert result.exit_code == 0, result.output
    result = invoke(app, "db", "migrate", "-m", "host")
    assert result.exit_code == 0, result.output
    files = host_revision_files(folder)
    assert [path.name.endswith("_host.py") for path in files] == [True]
    return files[0].read_text(encoding="utf-8")


def versions(engine: Engine, table: str) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text(f"SELECT version_num FROM {table}")).scalars())


@host_env_warning
@pytest.mark.usefixtures("quiet_alembic_logging")
def test_host_autogenerate_with_the_filter_sees_only_host_tables(empty_database, engines, tmp_path):
    url = empty_database()
    folder = tmp_path / "filtered"
    app = make_host_app(url, folder, keep_koudai_out=True)
    try:
        script = autogenerate_host_revision(app, folder)
        assert "op.create_table('articles'" in script
        assert "op.f('ix_articles_title'), ['title']" in script  # the host's own index kept
        assert "koudai_" not in script

        result = invoke(app, "db", "upgrade")
        assert result.exit_code == 0, result.output
    finally:
        dispose_host(app)

    engine = engines(url)
    host_revision = re.search(r"^revision = '(\w+)'$", script, re.MULTILINE)
    assert host_revision is not None
    assert versions(engine, "alembic_version") == [host_revision.group(1)]
    assert versions(engine, VERSION_TABLE) == [HEAD]
    assert table_names(engine) == set(metadata.tables) | {
        "articles",
        "alembic_version",
        VERSION_TABLE,
    }


@host_env_warning
@pytest.mark.usefixtures("quiet_alembic_logging")
def test_host_autogenerate_without_the_filter_would_drop_our_tables(empty_database, tmp_path):
    """Why the README tells hosts to pass ``include_object=exclude_koudai_tables``."""
    folder = tmp_path / "unfiltered"
    app = make_host_app(empty_database(), folder, keep_koudai_out=False)
    try:
        script = autogenerate_host_revision(app, folder)
    finally:
        dispose_host(app)

    assert "op.create_table('articles'" in script
    assert "op.drop_table('koudai_order')" in script
    dropped = set(re.findall(r"op\.drop_table\('(koudai_\w+)'\)", script))
    assert dropped == set(metadata.tables) | {VERSION_TABLE}
