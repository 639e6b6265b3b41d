"""What the PostgreSQL benchmarks share: the database URL, a throwaway schema, the version."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def default_database_url() -> str:
    return (
        os.environ.get("KOUDAI_BENCH_DATABASE_URL")
        or os.environ.get("KOUDAI_TEST_DATABASE_URL")
        or DEFAULT_URL
    )


@contextmanager
def bench_schema(admin: Engine, schema: str) -> Iterator[None]:
    """A schema for one run, dropped afterwards whatever happens."""
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


def server_version(admin: Engine) -> str:
    with admin.connect() as connection:
        return str(connection.scalar(text("SHOW server_version")))
