"""One public service call = one transaction, with outbox dispatch after commit.

``unit_of_work()`` commits when the outermost service call returns and rolls back when it
raises. Outbox events recorded inside it are handed to the job dispatcher only after the
commit succeeded, so nothing is ever enqueued for a change that was rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from koudai_flask.extension import get_state

_DEPTH = "koudai_depth"
_OUTBOX = "koudai_outbox_ids"


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
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
            session.info.pop(_OUTBOX, None)
        raise
    finally:
        session.info[_DEPTH] = depth
    if depth == 0:
        event_ids = session.info.pop(_OUTBOX, [])
        if event_ids:
            from koudai_flask.jobs.outbox import dispatch_outbox

            dispatch_outbox(event_ids)


def remember_outbox_event(session: Session, event_id: int) -> None:
    session.info.setdefault(_OUTBOX, []).append(event_id)
