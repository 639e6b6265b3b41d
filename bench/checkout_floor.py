"""The library's placing statement alone: the floor under ``orders.place`` on PostgreSQL.

``capture`` records the one statement a real ``orders.place`` call sends (its text and its
parameters, seen by a SQLAlchemy listener), and ``statement_side`` replays it from T threads
on bare psycopg connections in autocommit, prepared, with a new order number and SKU per
order and no other library code. Its orders are real (the ledger check counts them); its
rate is what ``place`` could reach if the library's Python cost nothing but building the
parameters, so its ratio against the raw side bounds what any trimming of that Python wins.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import psycopg
from checkout_measure import (
    CpuCost,
    SideResult,
    ThreadResult,
    Window,
    cpu_per_order,
    place_until_closed,
    timed_threads,
)
from flask import Flask
from psycopg.types.json import Json
from sqlalchemy import event

from koudai_flask.extension import get_state
from koudai_flask.services import orders
from koudai_flask.services.direct import _numbered


@dataclass(frozen=True)
class Captured:
    sql: str  # with numbered parameters ($1, ...), as the library sends it
    names: tuple[str, ...]  # the parameters' names in number order
    params: dict[str, Any]


def capture(app: Flask, code: str) -> Captured:
    """The statement of one ``place`` of a one-line order of ``code`` (placed for real)."""
    seen: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    with app.app_context():
        engine = get_state(app).get_engine()
        event.listen(engine, "before_cursor_execute", before)
        try:
            orders.place(channel="web", lines=[{"sku": code, "quantity": 1}])
        finally:
            event.remove(engine, "before_cursor_execute", before)
    if len(seen) != 1 or not isinstance(seen[0][1], dict):
        raise RuntimeError(f"place sent {len(seen)} statements, not its one statement")
    statement, parameters = seen[0]
    sql, names = _numbered(statement)
    return Captured(sql, names, dict(parameters))


def parameters(captured: Captured, number: str, code: str) -> list[Any]:
    """The captured parameters for another order: its number, hold reference and SKU."""
    values = dict(captured.params)
    row = json.loads(values["order"])
    row["number"] = number
    values["order"] = json.dumps(row)
    values["reference"] = f"order:{number}"
    values["code_0"] = code
    values["lines"] = Json([{**line, "sku_code": code} for line in values["lines"].obj])
    return [values[name] for name in captured.names]


class Placer:
    """One bare connection in autocommit sending the captured statement, prepared."""

    def __init__(self, conninfo: str, schema: str, captured: Captured, prefix: str) -> None:
        self.connection = psycopg.connect(
            conninfo, options=f"-csearch_path={schema}", autocommit=True
        )
        self.cursor = psycopg.RawCursor(self.connection)
        self.captured = captured
        self.prefix = prefix
        self.placed = 0

    def place(self, code: str) -> None:
        self.placed += 1
        number = f"{self.prefix}{self.placed:09d}"
        self.cursor.execute(
            self.captured.sql, parameters(self.captured, number, code), prepare=True
        )
        if not any(row[0] == "order" for row in self.cursor.fetchall()):
            raise LookupError("the statement placed no order")

    def close(self) -> None:
        self.connection.close()


def statement_side(
    conninfo: str, schema: str, captured: Captured, codes: list[str], threads: int, window: Window
) -> SideResult:
    def body(index: int, result: ThreadResult, window: Window, barrier: threading.Barrier) -> None:
        placer = Placer(conninfo, schema, captured, f"FLOOR{index:02d}")
        try:
            place_until_closed(
                result,
                window,
                barrier,
                seed=index,
                items=codes,
                place=placer.place,
                refusals=(psycopg.Error, LookupError),
            )
        finally:
            placer.close()

    return timed_threads("statement", threads, window, body)


def statement_cpu(
    conninfo: str, schema: str, captured: Captured, codes: list[str], count: int
) -> CpuCost:
    placer = Placer(conninfo, schema, captured, "FLOORCPU")
    try:
        return cpu_per_order(lambda i: placer.place(codes[i % len(codes)]), count)
    finally:
        placer.close()
