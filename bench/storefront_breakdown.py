"""The storefront benchmark's in-process breakdown: one page served by the Flask test client,
its time split into SQL, template rendering and the rest, and its statements counted."""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import storefront_apps as apps
from flask import Flask, template_rendered
from flask.signals import before_render_template
from sqlalchemy import event

from koudai_flask.extension import get_state

IN_PROCESS_BATCHES = 10  # of IN_PROCESS_BATCH requests; the fastest batch is reported
IN_PROCESS_BATCH = 20


def statement_kind(statement: str) -> str:
    """``SELECT koudai_product``: the verb and the first table of the outermost FROM."""
    depth, words = 0, []
    for token in re.findall(r"\(|\)|[\w.]+", statement):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0:
            words.append(token)
    upper = [w.upper() for w in words]
    table = words[upper.index("FROM") + 1] if "FROM" in upper[:-1] else ""
    counted = "count " if re.match(r"\s*SELECT\s+count\(", statement, re.I) else ""
    return f"{words[0].upper() if words else '?'} {counted}{table}".strip()


@dataclass
class Breakdown:
    """Milliseconds per request of one page served in-process by the Flask test client."""

    total_ms: float
    sql_ms: float
    render_ms: float
    statements: Counter[str] = field(default_factory=Counter)  # per request
    checkouts: float = 0.0
    pre_ping: bool = False
    transactions: float = 0.0

    @property
    def statement_count(self) -> float:
        return sum(self.statements.values())


def in_process(app: Flask, path: str, cookie: str | None) -> Breakdown:
    """Time batches of requests, splitting each into SQL, template and the rest.

    The fastest batch is reported, as timeit does: other processes on the machine only ever
    make a batch slower.
    """
    clock = {"sql": 0.0, "render": 0.0, "sql_began": 0.0, "render_began": 0.0}
    statements: Counter[str] = Counter()
    pool_events = Counter[str]()

    def render_began(*args: Any, **kwargs: Any) -> None:
        clock["render_began"] = time.perf_counter()

    def render_ended(*args: Any, **kwargs: Any) -> None:
        clock["render"] += time.perf_counter() - clock["render_began"]

    undo: list[Callable[[], None]] = []
    before_render_template.connect(render_began, app)
    template_rendered.connect(render_ended, app)
    undo.append(lambda: before_render_template.disconnect(render_began, app))
    undo.append(lambda: template_rendered.disconnect(render_ended, app))
    pre_ping = False
    if "koudai" in app.extensions:
        engine = get_state(app).get_engine()
        pre_ping = bool(getattr(engine.pool, "_pre_ping", False))

        # Statements are counted and timed on the driver's cursors, not through SQLAlchemy's
        # statement events: a listener there would send the pages' reads through
        # SQLAlchemy's execution instead of the direct path they take in production
        # (koudai_flask/read_path.py).
        class TimedCursor(psycopg.Cursor[Any]):
            def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                statements[statement_kind(str(query))] += 1
                began = time.perf_counter()
                try:
                    return super().execute(query, *args, **kwargs)
                finally:
                    clock["sql"] += time.perf_counter() - began

        timed: list[Any] = []

        def on_checkout(dbapi_connection: Any, *args: Any) -> None:
            pool_events["checkout"] += 1
            if dbapi_connection.cursor_factory is not TimedCursor:
                dbapi_connection.cursor_factory = TimedCursor
                timed.append(dbapi_connection)

        def untime() -> None:
            for dbapi_connection in timed:
                dbapi_connection.cursor_factory = psycopg.Cursor

        def on_begin(conn: Any) -> None:
            # A transaction costs BEGIN and ROLLBACK/COMMIT round trips unless autocommit.
            if not getattr(conn.connection.dbapi_connection, "autocommit", False):
                pool_events["begin"] += 1

        listeners: list[tuple[Any, str, Callable[..., None]]] = [
            (engine, "begin", on_begin),
            (engine.pool, "checkout", on_checkout),
        ]
        for target, name, fn in listeners:
            event.listen(target, name, fn)
            undo.append(functools.partial(event.remove, target, name, fn))
        undo.append(untime)
    else:
        database: apps.Database = app.extensions["bench_database"]
        plain = database.rows

        def timed_rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            statements["SELECT (one raw query)"] += 1
            began = time.perf_counter()
            try:
                return plain(sql, params)
            finally:
                clock["sql"] += time.perf_counter() - began

        database.rows = timed_rows  # type: ignore[method-assign]
        undo.append(lambda: setattr(database, "rows", plain))

    client = app.test_client(use_cookies=False)
    headers = {"Cookie": cookie} if cookie else {}
    batches: list[tuple[float, float, float]] = []  # seconds: total, SQL, template
    try:
        for _ in range(IN_PROCESS_BATCH):  # warm caches and prepared statements first
            client.get(path, headers=headers)
        statements.clear()
        pool_events.clear()
        for _ in range(IN_PROCESS_BATCHES):
            clock["sql"] = clock["render"] = 0.0
            began = time.perf_counter()
            for _ in range(IN_PROCESS_BATCH):
                response = client.get(path, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"in-process {path}: status {response.status_code}")
            batches.append((time.perf_counter() - began, clock["sql"], clock["render"]))
    finally:
        for remove in reversed(undo):
            remove()
    n = IN_PROCESS_BATCHES * IN_PROCESS_BATCH
    total, sql, render = (value / IN_PROCESS_BATCH * 1000 for value in min(batches))
    return Breakdown(
        total,
        sql,
        render,
        Counter({kind: round(count / n, 1) for kind, count in statements.items()}),
        pool_events["checkout"] / n,
        pre_ping,
        pool_events["begin"] / n,
    )


def plural(count: float, noun: str) -> str:
    return f"{count:g} {noun}" + ("" if count == 1 else "s")


def print_breakdowns(
    app: Flask, bare: Flask, cookie: str | None, pages: dict[str, str], say: Callable[[str], None]
) -> None:
    """Each page of ``pages`` served in-process by both apps, its time split, said by ``say``."""
    say(
        f"in-process, Flask test client, per request in the fastest of {IN_PROCESS_BATCHES} "
        f"batches of {IN_PROCESS_BATCH}:"
    )
    for page, path in pages.items():
        lib = in_process(app, path, cookie)
        floor = in_process(bare, path, cookie)
        for side, b in (("koudai", lib), ("bare", floor)):
            other = b.total_ms - b.sql_ms - b.render_ms
            say(
                f"  {page} {side}: {b.total_ms:.2f} ms = SQL {b.sql_ms:.2f} ms "
                f"({plural(b.statement_count, 'statement')}) + template {b.render_ms:.2f} ms "
                f"+ the rest {other:.2f} ms"
            )
        kinds = ", ".join(f"{n:g} {kind}" for kind, n in sorted(lib.statements.items()))
        say(
            f"  {page} koudai statements per request: {lib.statement_count:g} ({kinds}); "
            f"pool checkouts {lib.checkouts:g} ({'each' if lib.pre_ping else 'none'} "
            f"pre-pinged), transactions "
            f"{lib.transactions:g} (BEGIN and ROLLBACK round trips)"
        )
