"""Plain rows for the shop's busiest pages, run straight on the driver's cursor.

For the one-statement pages (a listing, a product), SQLAlchemy's execution cost more than
the query itself: the cache key of the statement, an execution context and the result's
metadata on every call. Here a page's statement is compiled once per dialect; each call
converts the parameters and the cells with the column types' own processors, exactly as
SQLAlchemy would, and runs the SQL on the DBAPI cursor of the page's read connection.

When anything watches the engine's statements (``echo``, a logging or tracing hook such as
OpenTelemetry's SQLAlchemy instrumentation, a test's or a benchmark's counter), a driver
other than psycopg or pysqlite is in use, or the statement needs SQLAlchemy's own rendering
at execution time (expanding ``IN``), the statement goes through ``Connection.execute``
instead, so nothing that listens misses it and the rows are the same. A driver error is
re-raised by running the statement once more through ``Connection.execute``, which maps it
to SQLAlchemy's exceptions and invalidates a dead connection as it always does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect

# The drivers whose cursors take the compiled SQL and parameters as SQLAlchemy sends them.
DIRECT_DRIVERS = frozenset({"psycopg", "pysqlite"})

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class CompiledRead:
    """A select compiled for one dialect, with what converts its parameters and cells."""

    sql: str
    positions: tuple[str, ...] | None  # parameter names in order, for positional styles
    bind_processors: tuple[tuple[str, Processor], ...]
    result_processors: tuple[Processor | None, ...] | None  # None: every cell as it comes
    compiled: Any  # SQLAlchemy's Compiled, for the parameters' literal values

    def parameters(self, params: dict[str, Any]) -> Any:
        values = self.compiled.construct_params(params)
        for name, process in self.bind_processors:
            values[name] = process(values[name])
        if self.positions is not None:
            return tuple(values[name] for name in self.positions)
        return values

    def rows(self, raw: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self.result_processors is None:
            return list(raw)
        processors = self.result_processors
        return [
            tuple(
                cell if process is None or cell is None else process(cell)
                for process, cell in zip(processors, row, strict=True)
            )
            for row in raw
        ]


@functools.lru_cache(maxsize=256)
def compile_read(statement: Select[Any], dialect: Dialect) -> CompiledRead | None:
    """The statement compiled for ``dialect``, or None when it must go through SQLAlchemy."""
    if dialect.driver not in DIRECT_DRIVERS:
        return None
    compiled = statement.compile(dialect=dialect)
    if "__[POSTCOMPILE_" in compiled.string or getattr(compiled, "escaped_bind_names", None):
        return None
    bind_processors = []
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            bind_processors.append((name, process))
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.selected_columns
    )
    return CompiledRead(
        sql=compiled.string,
        positions=tuple(compiled.positiontup or ()) if compiled.positional else None,
        bind_processors=tuple(bind_processors),
        result_processors=None if all(p is None for p in results) else results,
        compiled=compiled,
    )


# The events through which anyone can see a statement run (echo aside).
STATEMENT_EVENTS = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
)


def statements_watched(connection: Connection) -> bool:
    """Whether anything watches this connection's statements: echo, or a listener of a
    statement event on the connection, its engine or its dialect.

    Only those events count: an engine with an isolation level option listens to
    ``engine_connect`` itself, which sees no statement.
    """
    if connection._echo or connection.dialect._has_events:  # noqa: SLF001 - SQLAlchemy's flags
        return True
    dispatches = [connection.engine.dispatch]
    if connection._has_events:  # noqa: SLF001
        dispatches.append(connection.dispatch)
    return any(bool(getattr(d, name)) for d in dispatches for name in STATEMENT_EVENTS)


def read_rows(
    connection: Connection, statement: Select[Any], params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """All rows of ``statement`` with ``params``, as plain tuples in the statement's columns.

    ``connection`` should be an autocommit read connection: nothing here begins or ends a
    transaction.
    """
    prepared = (
        None if statements_watched(connection) else compile_read(statement, connection.dialect)
    )
    if prepared is None:
        return [tuple(row) for row in connection.execute(statement, params)]
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(prepared.sql, prepared.parameters(params))
        raw = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error:
        # Let SQLAlchemy raise it as it always would (and invalidate a dead connection).
        return [tuple(row) for row in connection.execute(statement, params)]
    finally:
        cursor.close()
    return prepared.rows(raw)
