"""Recording the funnel: the buyer's steps from a campaign message to a payment.

Shop pages must not wait on the database for statistics, so their steps (``visit``,
``product_viewed``, ``cart_added``, ``checkout_started``, ``order_placed``, and the
``push_clicked`` of a tracked link) go to a per-process buffer: :func:`record` appends a
row under a lock and returns. The buffer is written in one multi-row INSERT, on its own
connection, when it holds ``KOUDAI_FUNNEL_BATCH`` rows or its oldest row is
``KOUDAI_FUNNEL_FLUSH_INTERVAL`` old (checked at the end of each shop request; a writer
thread of the process does the writing, so no page waits for it), when the statistics are
read, and when the process exits (``atexit``: gunicorn's and RQ's graceful
shutdowns run it). A process killed outright loses at most that much.

Steps that happen once and already run in a transaction of their own (a campaign's
``push_sent``, an order's ``order_paid``) are written at once with :func:`write_event`,
each with a ``dedupe_key`` so a replay adds nothing.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from koudai_flask.extension import get_state
from koudai_flask.models import FunnelEvent, OrderAttribution
from koudai_flask.models.base import upsert_dialect, utcnow
from koudai_flask.models.funnel import FUNNEL_STEPS
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.funnel")

SHOP_CHANNEL = "web"  # the own shop's sales channel: its checkout places "web" orders
_EXTENSION = "koudai_funnel"
# A buffer that cannot be written (the database is down) keeps at most this many batches.
_MAX_BACKLOG_BATCHES = 20
# Seconds a writer thread waits for work before it ends.
WRITER_IDLE = 60.0
_TABLE: Table = FunnelEvent.__table__  # type: ignore[assignment]


def enabled() -> bool:
    return bool(current_app.config["KOUDAI_FUNNEL_EVENTS"])


def event_row(
    event: str,
    *,
    channel: str = SHOP_CHANNEL,
    campaign_id: int | None = None,
    customer_id: int | None = None,
    visitor: str = "",
    ref: str = "",
    amount: int = 0,
    dedupe_key: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The column values of one event (unchecked: callers pass one of ``FUNNEL_STEPS``)."""
    return {
        "occurred_at": at or utcnow(),
        "event": event,
        "channel": channel,
        "campaign_id": campaign_id,
        "customer_id": customer_id,
        "visitor": visitor[:40],
        "ref": ref[:64],
        "amount": amount,
        "dedupe_key": dedupe_key,
    }


class EventBuffer:
    """One app's buffered events in this process."""

    def __init__(self, app: Flask) -> None:
        self._app = weakref.ref(app)
        self._rows: list[dict[str, Any]] = []
        self._oldest = 0.0  # time.monotonic() of the first row in the buffer
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        # The writer thread of this process (see write_soon).
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self.closed = False  # written for the last time: the app was stopped

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: dict[str, Any]) -> None:
        if self.closed:
            return
        with self._lock:
            if not self._rows:
                self._oldest = time.monotonic()
            self._rows.append(row)

    def due(self, config: Any) -> bool:
        """Whether the buffer should be written now (a cheap, lock-free look)."""
        rows = self._rows
        if not rows:
            return False
        return (
            len(rows) >= config["KOUDAI_FUNNEL_BATCH"]
            or time.monotonic() - self._oldest >= config["KOUDAI_FUNNEL_FLUSH_INTERVAL"]
        )

    def flush(self) -> int:
        """Write every buffered row (inside the app's context); returns how many."""
        with self._flushing:  # one writer at a time keeps the rows in order
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                with get_state().get_engine().begin() as connection:
                    insert_events(connection, rows)
            except SQLAlchemyError as exc:
                self._put_back(rows, exc)
                return 0
            return len(rows)

    def write_soon(self) -> None:
        """Have this process's writer thread write the buffer, and return at once.

        The page that fills the batch does not wait for the database: the writer waits on
        it, without the interpreter lock. The thread starts on first use (after a fork, a
        new one) and ends after a minute without work.
        """
        with self._lock:
            if (
                self._writer is None
                or self._writer_pid != os.getpid()
                or not self._writer.is_alive()
            ):
                self._writer = threading.Thread(
                    target=self._write_loop, name="koudai-funnel-writer", daemon=True
                )
                self._writer_pid = os.getpid()
                self._writer.start()
            self._idle.clear()
            self._wake.set()

    def _write_loop(self) -> None:
        while self._wake.wait(WRITER_IDLE):
            self._wake.clear()
            app = self._app()
            if app is None:
                return
            try:
                with app.app_context():
                    self.flush()
            except Exception:  # never let the writer die with rows to write
                log.exception("funnel: the event writer failed")
            finally:
                if not self._wake.is_set():
                    self._idle.set()
        with self._lock:  # idle for a while: end; the next write_soon starts another
            self._writer = None
            self._idle.set()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until the writer thread has nothing left to do (tests, shutdown)."""
        return self._idle.wait(timeout)

    def close(self, app: Flask) -> None:
        """The app stops: wait for the writer, write what is left, record nothing more."""
        self.settle()
        with app.app_context():
            self.flush()
        self.closed = True

    def _put_back(self, rows: list[dict[str, Any]], exc: Exception) -> None:
        limit = current_app.config["KOUDAI_FUNNEL_BATCH"] * _MAX_BACKLOG_BATCHES
        with self._lock:
            kept = rows + self._rows
            dropped = max(0, len(kept) - limit)
            self._rows = kept[dropped:]
            self._oldest = time.monotonic()
        log.warning(
            "funnel: %d event(s) not written (%s); kept for the next try%s",
            len(rows),
            type(exc).__name__,
            f", {dropped} dropped" if dropped else "",
        )


def insert_events(connection: Connection | Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert event rows; a row whose ``dedupe_key`` exists already is skipped."""
    plain = [row for row in rows if row["dedupe_key"] is None]
    once = [row for row in rows if row["dedupe_key"] is not None]
    if plain and isinstance(connection, Connection) and connection.dialect.driver == "psycopg":
        _copy(connection, plain)
    elif plain:
        connection.execute(insert(_TABLE), plain)
    if not once:
        return
    module = upsert_dialect(connection)
    if module is not None:
        connection.execute(module.insert(_TABLE).on_conflict_do_nothing(), once)
    else:
        for row in once:
            seen = connection.execute(
                select(_TABLE.c.id).where(_TABLE.c.dedupe_key == row["dedupe_key"])
            ).first()
            if seen is None:
                connection.execute(insert(_TABLE), [row])


_COPY_COLUMNS = (
    "occurred_at",
    "event",
    "channel",
    "campaign_id",
    "customer_id",
    "visitor",
    "ref",
    "amount",
)


def _copy(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: one ``COPY ... FROM STDIN`` instead of an INSERT per row (psycopg 3).

    A batch is then one round trip and a fraction of the client's CPU, which is what a
    busy page pays for its events.
    """
    raw: Any = connection.connection.dbapi_connection
    statement = f"COPY {_TABLE.name} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[column] for column in _COPY_COLUMNS])


# -- the per-process buffers -------------------------------------------------------------------

_buffers: weakref.WeakSet[EventBuffer] = weakref.WeakSet()
_create_lock = threading.Lock()


def buffer(app: Flask | None = None) -> EventBuffer:
    """This app's buffer in this process."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found: EventBuffer | None = app.extensions.get(_EXTENSION)
    if found is None:
        with _create_lock:
            found = app.extensions.get(_EXTENSION)
            if found is None:
                found = EventBuffer(app)
                app.extensions[_EXTENSION] = found
                _buffers.add(found)
                get_state(app).on_stop.append(found.close)
    return found


def record(event: str, **values: Any) -> None:
    """Buffer one step (see :func:`event_row` for ``values``); nothing when recording is off."""
    if current_app.config["KOUDAI_FUNNEL_EVENTS"]:
        buffer().add(event_row(event, **values))


def flush() -> int:
    """Write this process's buffered events of the current app now."""
    found: EventBuffer | None = current_app.extensions.get(_EXTENSION)
    return found.flush() if found is not None else 0


def flush_if_due(exc: BaseException | None = None) -> None:
    """End of a shop request: have the buffer written when it is full or old enough."""
    found: EventBuffer | None = current_app.extensions.get(_EXTENSION)
    if found is not None and found.due(current_app.config):
        found.write_soon()


@atexit.register
def _flush_all_at_exit() -> None:
    for found in list(_buffers):
        app = found._app()
        if app is None or found.closed:
            continue
        found.settle()  # a batch the writer thread holds is written before we go on
        if not len(found):
            continue
        try:
            with app.app_context():
                found.flush()
        except Exception:  # the process is ending: say so, never raise from atexit
            log.exception("funnel: events lost at exit")


# -- steps written at once ---------------------------------------------------------------------


def write_event(session: Session, event: str, **values: Any) -> None:
    """Add one step to the caller's transaction (nothing when recording is off)."""
    if event not in FUNNEL_STEPS:
        raise ValueError(f"unknown funnel step {event!r}")
    if current_app.config["KOUDAI_FUNNEL_EVENTS"]:
        insert_events(session, [event_row(event, **values)])


def visitor_of(customer_id: int | None) -> str:
    return f"c{customer_id}" if customer_id is not None else ""


def attribute_order(
    order_number: str, *, campaign_id: int, customer_id: int | None, visitor: str
) -> None:
    """Remember that a shop order came from a campaign (its payment will count there too)."""
    try:
        with unit_of_work() as session:
            session.add(
                OrderAttribution(
                    order_number=order_number,
                    campaign_id=campaign_id,
                    customer_id=customer_id,
                    visitor=visitor[:40],
                )
            )
    except IntegrityError:
        pass  # the same checkout submitted twice: the first attribution stands


def on_order_paid(topic: str, payload: dict[str, Any]) -> None:
    """Outbox handler of ``order.paid``: the ``order_paid`` step, with the order's campaign."""
    if not enabled():
        return
    number = str(payload["number"])
    customer_id = payload.get("customer_id")
    attribution = current_session().scalar(
        select(OrderAttribution).where(OrderAttribution.order_number == number)
    )
    with unit_of_work() as session:
        write_event(
            session,
            "order_paid",
            channel=str(payload.get("channel") or SHOP_CHANNEL),
            campaign_id=attribution.campaign_id if attribution else None,
            customer_id=customer_id,
            visitor=(attribution.visitor if attribution else "") or visitor_of(customer_id),
            ref=number,
            amount=int(payload.get("total") or 0),
            dedupe_key=f"order_paid:{number}",
        )
