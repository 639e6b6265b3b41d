"""Alembic environment for koudai's own tables (run by ``flask koudai db ...``)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, create_engine

import koudai_flask.models  # noqa: F401  (registers every table on the metadata)
from koudai_flask.migrations import VERSION_TABLE, include_koudai_tables
from koudai_flask.models.base import UTCDateTime, metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our UTC column type as the plain type it stores, so revisions import no models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run(connection: Connection) -> None:
    context.configure(
        render_item=render_item,
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=include_koudai_tables,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as new_connection:
        run(new_connection)
