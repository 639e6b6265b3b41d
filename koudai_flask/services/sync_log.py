"""Dead letters: channel jobs that retrying will not fix, kept until a person acts on them.

A job lands here when its channel refused it for good (``PermanentFailure``), when its
credentials expired and could not be renewed, or when it kept failing through every retry.
The admin (and ``flask koudai sync``) can requeue one, which runs it again, or discard it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.models import Channel, SyncFailure
from koudai_flask.models.base import utcnow
from koudai_flask.services.transaction import current_session, unit_of_work


@dataclass(frozen=True)
class DeadLetter:
    id: int
    channel: str
    job: str
    arguments: list[Any]
    error_kind: str
    message: str
    attempts: int
    status: str
    created_at: datetime


def record(
    channel_id: int, job: str, arguments: list[Any], *, error_kind: str, message: str, attempts: int
) -> int:
    """Keep a failed job; a second failure of the same job and arguments updates the first."""
    with unit_of_work() as session:
        existing = session.scalar(
            select(SyncFailure).where(
                SyncFailure.channel_id == channel_id,
                SyncFailure.job == job,
                SyncFailure.status == "dead",
            )
        )
        if existing is not None and list(existing.arguments) == list(arguments):
            existing.error_kind = error_kind
            existing.message = message[:500]
            existing.attempts += attempts
            return existing.id
        failure = SyncFailure(
            channel_id=channel_id,
            job=job,
            arguments=list(arguments),
            error_kind=error_kind,
            message=message[:500],
            attempts=attempts,
            status="dead",
        )
        session.add(failure)
        session.flush()
        return failure.id


def dead_letters(channel: str | None = None, *, status: str = "dead") -> list[DeadLetter]:
    session = current_session()
    query = (
        select(SyncFailure, Channel.name)
        .join(Channel, Channel.id == SyncFailure.channel_id)
        .where(SyncFailure.status == status)
        .order_by(SyncFailure.id.desc())
    )
    if channel is not None:
        query = query.where(Channel.name == channel)
    try:
        return [
            DeadLetter(
                f.id,
                name,
                f.job,
                list(f.arguments),
                f.error_kind,
                f.message,
                f.attempts,
                f.status,
                f.created_at,
            )
            for f, name in session.execute(query)
        ]
    finally:
        session.rollback()


def counts_by_channel() -> dict[int, int]:
    """How many dead letters wait on each channel (for the channels page)."""
    session = current_session()
    try:
        rows = session.execute(
            select(SyncFailure.channel_id, func.count())
            .where(SyncFailure.status == "dead")
            .group_by(SyncFailure.channel_id)
        ).all()
        return {channel_id: count for channel_id, count in rows}
    finally:
        session.rollback()


def _resolve(failure_id: int, status: str, by: str) -> SyncFailure:
    session = current_session()
    failure = session.get(SyncFailure, failure_id)
    if failure is None:
        raise NotFound(f"no dead letter {failure_id}")
    if failure.status != "dead":
        error = KoudaiError(
            f"dead letter {failure_id} is already {failure.status}", reason="not_dead"
        )
        error.http_status = 409
        raise error
    failure.status = status
    failure.resolved_at = utcnow()
    failure.resolved_by = by[:120]
    return failure


def take_for_requeue(failure_id: int, *, by: str) -> tuple[int, str, list[Any]]:
    """Mark a dead letter requeued; returns (channel id, job, arguments) to run again."""
    with unit_of_work():
        failure = _resolve(failure_id, "requeued", by)
        return failure.channel_id, failure.job, list(failure.arguments)


def discard(failure_id: int, *, by: str) -> None:
    with unit_of_work():
        _resolve(failure_id, "discarded", by)


__all__ = ["DeadLetter", "counts_by_channel", "dead_letters", "discard", "record"]
