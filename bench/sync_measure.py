"""Counters of the sync benchmark: TOP calls seen by the sandbox, SQL statements, time.

Each wraps something only while a measured block runs (a WSGI middleware, SQLAlchemy event
listeners, ``TopClient.call``) and leaves it as it was afterwards.
"""

from __future__ import annotations

import io
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Engine, event

from koudai_flask.connectors.taobao.client import TopClient

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class GatewayRecorder:
    """In front of the sandbox's WSGI app: every TOP call's form, and the time it took there."""

    def __init__(self, inner: Wsgi) -> None:
        self.inner = inner
        self.recording = False
        self.calls: list[dict[str, str]] = []
        self.seconds = 0.0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self.recording or environ.get("PATH_INFO") != "/router/rest":
            return self.inner(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        began = time.perf_counter()
        answer = self.inner(environ, start_response)
        with self._lock:
            self.seconds += time.perf_counter() - began
            self.calls.append(params)
        return answer


@dataclass
class SqlCount:
    """Statements sent while counting, by kind, and the time spent in ``cursor.execute``."""

    statements: int = 0
    rows: int = 0  # parameter sets: an executemany counts one statement and many rows
    seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)


_KIND = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b.*?\b(koudai_\w+)", re.S | re.I)


@contextmanager
def top_call_seconds() -> Iterator[list[float]]:
    """Time spent inside ``TopClient.call`` (signing, HTTP, decoding) while the block runs."""
    original = TopClient.call
    spent = [0.0]

    def timed(self: TopClient, method: str, **params: object) -> dict[str, Any]:
        began = time.perf_counter()
        try:
            return original(self, method, **params)
        finally:
            spent[0] += time.perf_counter() - began

    TopClient.call = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        TopClient.call = original  # type: ignore[method-assign]


def count_sql(engine: Engine, body: Callable[[], Any]) -> tuple[Any, SqlCount]:
    """Run ``body`` with SQLAlchemy event listeners counting every statement it sends."""
    count = SqlCount()
    started = [0.0]

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        started[0] = time.perf_counter()
        count.statements += 1
        count.rows += len(params) if many else 1
        match = _KIND.match(statement)
        kind = f"{match.group(1).split()[0].upper()} {match.group(2)}" if match else statement[:40]
        count.kinds[kind + (" (executemany)" if many else "")] += 1

    def after(*args: Any) -> None:
        count.seconds += time.perf_counter() - started[0]

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        return body(), count
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``nan`` without samples)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = math.ceil(fraction * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]
