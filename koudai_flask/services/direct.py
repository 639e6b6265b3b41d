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
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(prepared.sql, parameters)
        raw = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        _raise_as_sqlalchemy(connection, error, prepared.sql, parameters, cursor)
    finally:
        cursor.close()
    return prepared.rows(raw)


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
