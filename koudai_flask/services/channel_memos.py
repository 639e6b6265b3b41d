"""The seller's memo and flag of a channel's order, as the sync engine moves them.

In: an imported order takes the memo and flag its channel shows (``mirror``, from
``order_sync.import_order``), unless a change made here is still on its way there
(``order_memo.set_memo`` keeps ours then). Out: the orders whose memo still has to reach
their channel (``pending_pushes``), which the periodic tick schedules again, so a push job
lost with Redis, or a change made while the channel was paused, still goes out. A push that
became a dead letter waits for a person instead.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from koudai_flask.connectors.base import RemoteOrder
from koudai_flask.errors import ValidationError
from koudai_flask.models import ChannelOrder, Order, OrderMemo, SyncFailure
from koudai_flask.services import order_memo
from koudai_flask.services.channel_refunds import channel_actor
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.sync")

PUSH_JOB = "push_memo"  # jobs.sync_tasks


def mirror(channel_name: str, number: str, remote: RemoteOrder) -> bool:
    """Our order ``number`` takes the memo and flag of ``remote``; True if that changed them.

    A channel that keeps no memos (``remote.memo`` None) changes nothing. A memo or flag we
    cannot keep (a flag Taobao added since) is logged and left out: the order still imports.
    """
    if remote.memo is None:
        return False
    try:
        with unit_of_work() as session:
            before = _version(session, number)
            order_memo.set_memo(
                number,
                memo=remote.memo,
                flag=remote.flag or 0,
                actor=channel_actor(channel_name),
                origin=channel_name,
            )
            return _version(session, number) != before
    except ValidationError as exc:
        log.warning("order %s: memo from %s not kept: %s", number, channel_name, exc.message)
        return False


def _version(session: Session, number: str) -> int:
    found = session.scalar(
        select(OrderMemo.version)
        .join(Order, Order.id == OrderMemo.order_id)
        .where(Order.number == number)
    )
    return int(found or 0)


def pending_pushes(channel_id: int, *, limit: int = 200) -> list[str]:
    """The numbers of the channel's orders whose memo still has to go there, oldest change
    first, leaving out those whose push is a dead letter."""
    session = current_session()
    try:
        numbers = session.scalars(
            select(Order.number)
            .join(OrderMemo, OrderMemo.order_id == Order.id)
            .join(ChannelOrder, ChannelOrder.order_id == Order.id)
            .where(
                ChannelOrder.channel_id == channel_id,
                ChannelOrder.direction == "import",
                OrderMemo.push_pending.is_(True),
            )
            .order_by(OrderMemo.updated_at, OrderMemo.order_id)
            .limit(limit)
        ).all()
        if not numbers:
            return []
        dead = session.scalars(
            select(SyncFailure.arguments).where(
                SyncFailure.channel_id == channel_id,
                SyncFailure.job == PUSH_JOB,
                SyncFailure.status == "dead",
            )
        ).all()
        waiting = {str(arguments[0]) for arguments in dead if arguments}
        return [number for number in numbers if number not in waiting]
    finally:
        session.rollback()


__all__ = ["PUSH_JOB", "mirror", "pending_pushes"]
