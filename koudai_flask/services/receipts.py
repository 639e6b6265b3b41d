"""Receipts of signed inbound messages: an event id is taken once per channel (replay refusal).

A signed callback proves who sent it, not that it is new: a copy replayed within the
timestamp tolerance would verify again. Each channel's message ids go into
:class:`~koudai_flask.models.ChannelReceipt`, whose unique ``(channel_id, receipt_id)`` makes
:func:`take` safe under concurrent deliveries of the same message.

Retention: a receiver accepts a timestamp up to ``tolerance`` seconds either side of its
clock, so a message received at ``t`` carries a timestamp of at most ``t + tolerance`` and any
copy of it is refused as stale after ``t + 2 * tolerance``. Receipts older than twice the
tolerance (10 minutes for the default 300 s) can therefore be pruned safely, since such
requests are refused as stale anyway; :func:`prune` is meant for a periodic cleanup.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from koudai_flask.errors import ValidationError
from koudai_flask.models import ChannelReceipt
from koudai_flask.services.transaction import current_session, unit_of_work

MAX_RECEIPT_ID = 128  # the column's length


def _check(receipt_id: str) -> None:
    if not isinstance(receipt_id, str) or not 1 <= len(receipt_id) <= MAX_RECEIPT_ID:
        raise ValidationError(f"a receipt id is 1 to {MAX_RECEIPT_ID} characters")


def seen(channel_id: int, receipt_id: str) -> bool:
    """Whether ``receipt_id`` was already taken on the channel."""
    _check(receipt_id)
    found = current_session().scalar(
        select(ChannelReceipt.id).where(
            ChannelReceipt.channel_id == channel_id, ChannelReceipt.receipt_id == receipt_id
        )
    )
    return found is not None


def take(channel_id: int, receipt_id: str) -> bool:
    """Record ``receipt_id`` as received; False if it was already (even by a concurrent call).

    Call it as its own unit of work: the unique constraint is what settles a race, and a
    failed insert rolls back this call's transaction only.
    """
    _check(receipt_id)
    if seen(channel_id, receipt_id):
        return False
    try:
        with unit_of_work() as session:
            session.add(ChannelReceipt(channel_id=channel_id, receipt_id=receipt_id))
            session.flush()
    except IntegrityError:
        return False
    return True


def prune(older_than: datetime) -> int:
    """Delete receipts received before ``older_than``; returns how many went.

    Pass a time at least twice the timestamp tolerance ago (see the module docstring).
    """
    if older_than.tzinfo is None:
        raise ValidationError("older_than must be timezone-aware (UTC)")
    with unit_of_work() as session:
        result = session.execute(
            delete(ChannelReceipt).where(ChannelReceipt.received_at < older_than)
        )
        return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["prune", "seen", "take"]
