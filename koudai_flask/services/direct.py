"""A statement of a service's transaction run straight on the driver's cursor.

``read_path`` does this for the shop's one-statement pages; this is the same for a statement
inside the caller's transaction, which ``orders.place`` sends twice per order. SQLAlchemy's
execution of a cached statement (its cache key, an execution context, the result's metadata)
cost more Python than the driver's own work for the same statement. The SQL is compiled once
per dialect (``read_path.compile_read``) and each call converts the parameters and the cells
with the column types' own processors, so the rows are exactly SQLAlchemy's.

The statement goes through ``Connection.execute`` when anything watches statements (echo,
an event listener: ``read_path``'s rule), when the connection translates schema names, or
when ``compile_read`` refuses it. A driver error is raised as ``Connection.execute`` would
raise it: wrapped by ``DBAPIError.instance`` (an ``IntegrityError`` stays one), and a
connection the dialect reports dead is invalidated. It cannot be retried through SQLAlchemy
as ``read_path`` does: the error has already aborted the transaction.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NoReturn

from sqlalchemy import CompoundSelect, Connection, Select
from sqlalchemy.exc import DBAPIError

from koudai_flask.read_path import compile_read, statements_watched


def rows(
    connection: Connection, statement: Select[Any] | CompoundSelect, params: dict[str, Any]
) -> list[Any]:
    """Every row of ``statement`` as a tuple, run in ``connection``'s transaction."""
    prepared = None
    if not statements_watched(connection) and not connection.get_execution_options().get(
        "schema_translate_map"
    ):
        prepared = compile_read(statement, connection.dialect)
    if prepared is None:
        return [tuple(row) for row in connection.execute(statement, params)]
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    parameters = prepared.parameters(params)
    sql = prepared.sql
    if connection.dialect.driver == "psycopg" and isinstance(parameters, dict):
        # psycopg parses a text with named parameters on every call once it is longer than
        # 4,096 characters (it keeps shorter ones); the placing statement is. Numbered
        # parameters ($1, ...) on psycopg's raw cursor need no parsing at all.
        numbered, names = _numbered(sql)
        cursor = connection.dialect.loaded_dbapi.RawCursor(dbapi_connection)
        sql, parameters = numbered, [parameters[name] for name in names]
    else:
        cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, parameters)
        raw = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        _raise_as_sqlalchemy(connection, error, sql, parameters, cursor)
    finally:
        cursor.close()
    return prepared.rows(raw)


_NAMED = re.compile(r"%%|%\((\w+)\)s")


@functools.lru_cache(maxsize=64)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``%(name)s`` parameters as ``$1``, ``$2``, ... (``%%`` as ``%``), and
    the names in number order."""
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        return f"${numbers.setdefault(name, len(numbers) + 1)}"

    return _NAMED.sub(number, sql), tuple(numbers)


def _raise_as_sqlalchemy(
    connection: Connection, error: Any, sql: str, parameters: Any, cursor: Any
) -> NoReturn:
    dialect = connection.dialect
    dead = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    wrapped = DBAPIError.instance(
        sql,
        parameters,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=connection.engine.hide_parameters,
        connection_invalidated=dead,
        dialect=dialect,
        ismulti=False,
    )
    if dead:
        connection.invalidate(error)
    raise wrapped from error
