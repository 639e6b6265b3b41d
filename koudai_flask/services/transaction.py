"""One public service call = one transaction, with outbox dispatch after commit.

``unit_of_work()`` commits when the outermost service call returns and rolls back when it
raises. Outbox events recorded inside it are handed to the job dispatcher only after the
commit succeeded, so nothing is ever enqueued for a change that was rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Insert, Table, insert
from sqlalchemy.orm import Session

from koudai_flask.extension import get_state
from koudai_flask.models.base import upsert_dialect

_DEPTH = "koudai_depth"
_OUTBOX = "koudai_outbox_ids"
_BEFORE_COMMIT = "koudai_before_commit"


def current_session() -> Session:
    return get_state().session


@contextmanager
def unit_of_work() -> Iterator[Session]:
    session = current_session()
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            for callback in session.info.pop(_BEFORE_COMMIT, {}).values():
                callback(session)
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
            session.info.pop(_OUTBOX, None)
            session.info.pop(_BEFORE_COMMIT, None)
        raise
    finally:
        session.info[_DEPTH] = depth
    if depth == 0:
        event_ids = session.info.pop(_OUTBOX, [])
        if event_ids:
            from koudai_flask.jobs.outbox import dispatch_outbox

            dispatch_outbox(event_ids)


def outermost(session: Session) -> bool:
    """Whether the running service call is the outermost: its commit is the transaction's."""
    return bool(session.info.get(_DEPTH) == 1)


def before_commit(session: Session, key: Hashable, callback: Callable[[Session], None]) -> None:
    """Run ``callback`` once, just before the outermost service call commits (the last one
    given for ``key`` wins; none runs after a rollback): for what must show the state the
    whole call left, however many of its steps changed it."""
    session.info.setdefault(_BEFORE_COMMIT, {})[key] = callback


def before_commit_pending(session: Session, key: Hashable) -> Callable[[Session], None] | None:
    """The callback waiting for the commit under ``key``, if any."""
    pending: dict[Hashable, Callable[[Session], None]] = session.info.get(_BEFORE_COMMIT, {})
    return pending.get(key)


def remember_outbox_event(session: Session, event_id: int) -> None:
    session.info.setdefault(_OUTBOX, []).append(event_id)


def insert_ignoring_duplicate(session: Session, model: Any, values: dict[str, Any]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new id, None for a duplicate.

    For a row two requests may add at once (a tag on a customer, a follower): the second
    waits for the first to commit, then adds nothing, instead of failing on the unique
    constraint. Other databases than PostgreSQL and SQLite get a plain INSERT: the caller
    looked first, and the constraint still holds.
    """
    module = upsert_dialect(session)
    if module is None:
        return session.execute(insert(model).values(values).returning(model.id)).scalar_one()
    statement = module.insert(model).values(values).on_conflict_do_nothing().returning(model.id)
    return session.execute(statement).scalar()


# -- an order's rows, in Core statements -----------------------------------------------------

Rows = Sequence[Mapping[str, Any]]


def insert_linked(
    connection: Connection,
    parent: Table,
    row: Mapping[str, Any],
    linked: Sequence[tuple[Table, Rows]],
) -> tuple[int, list[int]]:
    """Insert ``row`` into ``parent``, then each table's rows of ``linked``, one INSERT each.

    A linked table's ``<parent>_id`` column (``order_id`` for ``koudai_order``), where it has
    one, gets the new parent's id. Returns that id and the ids of the last table's rows, in
    the order given.
    """
    link = f"{parent.name.removeprefix('koudai_')}_id"
    parent_id: int = connection.execute(_insert_returning(parent), row).scalar_one()
    last: list[int] = []
    for t, (table, rows) in enumerate(linked):
        values = [{**values, link: parent_id} if link in table.c else values for values in rows]
        if t == len(linked) - 1:
            last = list(connection.execute(_insert_returning(table), values).scalars())
        elif values:
            connection.execute(insert(table), values)
    return parent_id, last


@lru_cache(maxsize=32)
def _insert_returning(table: Table) -> Insert:
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)
