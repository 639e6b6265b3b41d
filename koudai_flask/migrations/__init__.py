"""koudai's Alembic environment, shipped in the wheel.

Our revisions carry the branch label ``koudai`` and record themselves in the version table
``koudai_alembic_version``, never in the host's ``alembic_version``. Run them with
``flask koudai db upgrade``. A host on Flask-Migrate keeps our tables out of its own
autogenerate with ``Migrate(app, db, include_object=exclude_koudai_tables)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from alembic.config import Config
from sqlalchemy.engine import Connection

VERSION_TABLE = "koudai_alembic_version"
BRANCH_LABEL = "koudai"
SCRIPT_LOCATION = str(Path(__file__).resolve().parent)
VERSIONS_LOCATION = str(Path(__file__).resolve().parent / "versions")


def is_koudai_table(name: str | None) -> bool:
    return bool(name) and str(name).startswith("koudai_")


def include_koudai_tables(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic ``include_object`` for our environment: only ``koudai_*`` tables."""
    if type_ == "table":
        return is_koudai_table(name)
    table = getattr(obj, "table", None)
    return table is None or is_koudai_table(table.name)


def exclude_koudai_tables(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic ``include_object`` for a host's environment: everything but ours."""
    if type_ == "table":
        return not is_koudai_table(name)
    table = getattr(obj, "table", None)
    return table is None or not is_koudai_table(table.name)


def alembic_config(connection: Connection, *, stdout: TextIO | None = None) -> Config:
    """An Alembic config for our environment on ``connection``, printing to ``stdout``."""
    config = Config(stdout=stdout or sys.stdout)
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config
