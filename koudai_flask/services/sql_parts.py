"""Small pieces for writing long Core statements whose text must stay the same and short:
constants written into the text, plain references to a CTE's columns, typed NULLs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ColumnElement, Text, bindparam, literal_column
from sqlalchemy import cast as sql_cast
from sqlalchemy.types import TypeEngine


def const(value: str | int, type_: TypeEngine[Any]) -> ColumnElement[Any]:
    """A constant written into the text rather than sent as one more parameter."""
    if isinstance(value, str):
        assert "'" not in value
        return literal_column(f"'{value}'", type_)
    return literal_column(str(int(value)), type_)


def null_of(sql_type: str) -> ColumnElement[Any]:
    """A NULL of ``sql_type``, where PostgreSQL cannot tell the type from the context."""
    return literal_column(f"NULL::{sql_type}")


def ref(name: str) -> ColumnElement[Any]:
    """A column of a CTE by its plain name: SQLAlchemy would add an ``AS`` label to each."""
    return literal_column(name)


def json_param(name: str) -> ColumnElement[Any]:
    """The parameter ``name``, sent as text and read as JSON."""
    return sql_cast(bindparam(name, type_=Text), JSON)
