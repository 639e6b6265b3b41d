"""Idempotent POSTs: one effect and one reply per (API key, Idempotency-Key).

``claim`` writes a ``pending`` record in its own short transaction before the request runs.
The unique constraint on (key id, idempotency key) lets exactly one concurrent duplicate
through; the others wait until the first one's reply is stored (``finish``) and get that
reply. A key reused for another request (method, path or body) is refused. A request that
failed unexpectedly gives its claim up (``abandon``), so a retry runs it again; a claim left
behind by a process that died is taken over after ``KOUDAI_API_IDEMPOTENCY_TIMEOUT``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from koudai_flask.config import config_value
from koudai_flask.errors import KoudaiError, ValidationError
from koudai_flask.models import IdempotencyRecord
from koudai_flask.models.base import utcnow
from koudai_flask.services.transaction import current_session, unit_of_work

POLL_INTERVAL = 0.05  # seconds between looks at a claim held by a concurrent request


class IdempotencyKeyReused(KoudaiError):
    """The Idempotency-Key was already used for a different request."""

    http_status = 422


class IdempotencyInProgress(KoudaiError):
    """The first request with this Idempotency-Key is still running."""

    http_status = 409


@dataclass(frozen=True)
class StoredReply:
    status: int
    body: str


def check_key(key: str) -> str:
    if not 1 <= len(key) <= 160 or not key.isascii() or not key.isprintable():
        raise ValidationError(
            "Idempotency-Key must be 1 to 160 printable ASCII characters",
            {"Idempotency-Key": ["1 to 160 printable ASCII characters"]},
        )
    return key


def claim(
    api_key_id: int, key: str, *, method: str, path: str, request_hash: str
) -> int | StoredReply:
    """The id of a new claim to ``finish``, or the reply stored for this key."""
    check_key(key)
    timeout: int = config_value("API_IDEMPOTENCY_TIMEOUT")
    deadline = time.monotonic() + timeout
    table = IdempotencyRecord.__table__
    while True:
        try:
            with unit_of_work() as session:
                record = IdempotencyRecord(
                    api_key_id=api_key_id,
                    key=key,
                    method=method,
                    path=path[:300],
                    request_hash=request_hash,
                    status="pending",
                )
                session.add(record)
                session.flush()
                return record.id
        except IntegrityError:
            pass
        session = current_session()
        row = session.execute(
            select(table).where(table.c.api_key_id == api_key_id, table.c.key == key)
        ).first()
        session.rollback()  # the next look reads afresh
        if row is None:  # given up or taken over meanwhile: claim it again
            continue
        if (row.method, row.path, row.request_hash) != (method, path[:300], request_hash):
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was used for another request; use a new key"
            )
        if row.status == "done":
            return StoredReply(row.response_status, row.response_body or "")
        if row.created_at < utcnow() - timedelta(seconds=timeout):
            _drop_pending(row.id)
            continue
        if time.monotonic() > deadline:
            raise IdempotencyInProgress(
                f"the request with Idempotency-Key {key!r} is still running; retry later"
            )
        time.sleep(POLL_INTERVAL)


def finish(record_id: int, status: int, body: str) -> None:
    """Store the reply of a claimed request; later duplicates get exactly this."""
    with unit_of_work() as session:
        session.execute(
            update(IdempotencyRecord)
            .execution_options(synchronize_session=False)
            .where(IdempotencyRecord.id == record_id)
            .values(
                status="done", response_status=status, response_body=body, completed_at=utcnow()
            )
        )


def abandon(record_id: int) -> None:
    """Give a claim up after an unexpected failure, so that a retry runs the request."""
    session = current_session()
    session.rollback()
    _drop_pending(record_id)


def _drop_pending(record_id: int) -> None:
    with unit_of_work() as session:
        session.execute(
            delete(IdempotencyRecord)
            .execution_options(synchronize_session=False)
            .where(IdempotencyRecord.id == record_id, IdempotencyRecord.status == "pending")
        )


# How long a key's reply is replayed; a repeat after that runs as a new request.
KEEP_REPLIES = timedelta(days=1)
PRUNE_INTERVAL = 3600  # seconds between two runs of the periodic prune


def prune(older_than: timedelta = KEEP_REPLIES) -> int:
    """Forget replies older than ``older_than``, and requests left pending as long (their
    process died; a repeat after ``KOUDAI_API_IDEMPOTENCY_TIMEOUT`` would have taken them
    over); returns how many. The periodic job ``koudai-idempotency-prune`` runs it hourly."""
    with unit_of_work() as session:
        result = session.execute(
            delete(IdempotencyRecord)
            .execution_options(synchronize_session=False)
            .where(IdempotencyRecord.created_at < utcnow() - older_than)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
