"""Create koudai's schema without Alembic (tests, throwaway databases) with its seed rows.

Production databases use ``flask koudai db upgrade``; a test proves both give the same
schema.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, insert, select

import koudai_flask.models  # noqa: F401  (registers every table)
from koudai_flask.models import Channel, Location
from koudai_flask.models.base import metadata, utcnow


def create_all(bind: Engine | Connection) -> None:
    """Create every ``koudai_*`` table and the built-in ``web`` channel and ``main`` location."""
    metadata.create_all(bind)
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            seed_rows(connection)
    else:
        seed_rows(bind)


def seed_rows(connection: Connection) -> None:
    if connection.scalar(select(Channel.id).where(Channel.name == "web")) is None:
        connection.execute(
            insert(Channel).values(
                name="web", kind="web", settings={}, active=True, created_at=utcnow()
            )
        )
    if connection.scalar(select(Location.id).where(Location.code == "main")) is None:
        connection.execute(
            insert(Location).values(code="main", name="Main warehouse", created_at=utcnow())
        )


def drop_all(bind: Engine | Connection) -> None:
    metadata.drop_all(bind)
