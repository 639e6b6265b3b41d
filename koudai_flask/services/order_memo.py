"""The seller's memo and flag on an order (卖家备注, 旗帜).

A seller marks orders while working through them: a red flag for "call the buyer first", a
line such as "gift wrap, no invoice". The order list shows the flag and the memo and
filters on the flag; buyers never see either. It is the pair a Taobao trade carries
(``seller_memo``, ``seller_flag``), so for an order imported from a shop that keeps memos
(a connector with the ``push_memo`` capability) it syncs both ways: a change here is pushed
to the trade (``jobs.sync``), a change made in the seller's Taobao back office comes in
with the trade (``order_sync.import_order``).

Flags are Taobao's numbers: 0 none (grey), 1 red, 2 yellow, 3 green, 4 blue, 5 purple. A memo
is at most 1,000 characters (Taobao's limit).

Which change wins: a change made here that has not reached the channel yet
(``push_pending``) wins over what the channel says until its push went out; after that the
latest change on either side wins. Each change is an audit entry and an
``order.memo_changed`` outbox event (the webhook of that name) with the values before it and
who made it (``origin`` names the channel when it came from one, so it is not pushed back).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update

from koudai_flask.errors import ValidationError
from koudai_flask.models import Channel, ChannelOrder, Order, OrderMemo
from koudai_flask.models.base import utcnow
from koudai_flask.services import outbox
from koudai_flask.services.order_states import get_order
from koudai_flask.services.staff import audit
from koudai_flask.services.transaction import current_session, unit_of_work

TOPIC = "order.memo_changed"
MAX_MEMO = 1000
# Taobao's flag numbers and the colour each one is.
FLAGS = {0: "none", 1: "red", 2: "yellow", 3: "green", 4: "blue", 5: "purple"}


@dataclass(frozen=True)
class MemoPush:
    """What to send to a channel: the trade, the memo and flag as they are now."""

    external_id: str
    memo: str
    flag: int
    version: int


def check(memo: str | None, flag: int | str | None) -> tuple[str | None, int | None]:
    """The memo and flag as they are stored, or ``ValidationError`` naming what to fix."""
    if memo is not None:
        if not isinstance(memo, str):
            raise ValidationError("memo must be text", {"memo": ["not text"]}, reason="memo")
        memo = memo.strip()
        if len(memo) > MAX_MEMO:
            raise ValidationError(
                f"memo is {len(memo)} characters; at most {MAX_MEMO}",
                {"memo": [f"longer than {MAX_MEMO} characters"]},
                reason="memo_long",
                detail={"limit": MAX_MEMO},
            )
    if flag is not None:
        try:
            number = int(flag)
        except (TypeError, ValueError):
            number = -1
        if isinstance(flag, bool) or number not in FLAGS:
            raise ValidationError(
                f"flag must be one of 0-5 ({', '.join(f'{k} {v}' for k, v in FLAGS.items())}),"
                f" got {flag!r}",
                {"flag": ["not a flag"]},
                reason="memo_flag",
            )
        flag = number
    return memo, flag


def set_memo(
    number: str,
    *,
    memo: str | None = None,
    flag: int | str | None = None,
    actor: str = "system",
    origin: str | None = None,
) -> OrderMemo | None:
    """Give order ``number`` this memo and/or flag (``None`` keeps what it has).

    ``origin`` is the channel a change came from (an import), else ``None`` for a change made
    here. The same values again change nothing. A change from a channel does not overwrite
    one made here that is still on its way there. Returns the memo row (``None`` for an
    order that never had one and still has none). ``NotFound`` for an unknown order,
    ``ValidationError`` for a bad memo or flag; either way nothing is written."""
    memo, flag = check(memo, flag)
    with unit_of_work() as session:
        order = get_order(session, number)
        # The order's row is the lock: two first memos of one order come one after the other.
        session.execute(select(Order.id).where(Order.id == order.id).with_for_update())
        row = session.get(OrderMemo, order.id, populate_existing=True)
        if origin is not None and row is not None and row.push_pending:
            return row  # ours is newer than the channel's until it went out
        before = (row.memo, row.flag) if row is not None else ("", 0)
        after = (before[0] if memo is None else memo, before[1] if flag is None else flag)
        if after == before:
            return row
        pending = origin is None and synced_channel(order) is not None
        if row is None:
            row = OrderMemo(order_id=order.id, version=0)
            session.add(row)
        row.memo, row.flag = after
        row.version = (row.version or 0) + 1
        row.push_pending = pending
        row.updated_by = actor[:80]
        row.updated_at = utcnow()
        audit(
            actor,
            "order.memo",
            "order",
            number,
            {"memo": before[0], "flag": before[1]},
            {"memo": after[0], "flag": after[1]},
        )
        outbox.record(
            session,
            TOPIC,
            {
                "number": number,
                "channel": order.channel,
                "memo": after[0],
                "flag": after[1],
                "previous": {"memo": before[0], "flag": before[1]},
                "actor": actor,
                "origin": origin,
                "push": pending,
            },
        )
        return row


def set_flags(numbers: Sequence[str], flag: int | str, *, actor: str = "system") -> int:
    """Flag several orders at once (批量插旗) in one transaction; returns how many changed.

    An unknown number refuses the whole batch (``NotFound``), nothing flagged."""
    _, checked = check(None, flag)
    assert checked is not None
    wanted = list(dict.fromkeys(n.strip() for n in numbers if n.strip()))
    if not wanted:
        raise ValidationError("choose at least one order to flag", reason="memo_none_chosen")
    with unit_of_work():
        changed = 0
        for number in wanted:
            before = _version(number)
            set_memo(number, flag=checked, actor=actor)
            changed += int(_version(number) != before)
        return changed


def staff_set_memo(
    user_id: str, number: str, *, memo: str | None = None, flag: int | str | None = None
) -> OrderMemo | None:
    """A staff member's change (``orders.edit`` on the order's channel; out of their scope the
    order is ``NotFound``)."""
    from koudai_flask.services import backoffice  # it imports the sync that imports us

    with unit_of_work():
        backoffice.order_for(user_id, number, "orders.edit")
        return set_memo(number, memo=memo, flag=flag, actor=f"staff:{user_id}")


def staff_set_flags(user_id: str, numbers: Sequence[str], flag: int | str) -> int:
    """A staff member flags the ticked orders of the list; one they may not edit refuses all."""
    from koudai_flask.services import backoffice

    with unit_of_work():
        for number in numbers:
            if number.strip():
                backoffice.order_for(user_id, number.strip(), "orders.edit")
        return set_flags(numbers, flag, actor=f"staff:{user_id}")


def _version(number: str) -> int:
    return int(
        current_session().scalar(
            select(OrderMemo.version)
            .join(Order, Order.id == OrderMemo.order_id)
            .where(Order.number == number)
        )
        or 0
    )


def memo_of(order_id: int) -> OrderMemo | None:
    return current_session().get(OrderMemo, order_id)


def memos_of(order_ids: Iterable[int]) -> dict[int, OrderMemo]:
    """The memos of these orders, by order id (the order list shows them)."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = current_session().scalars(select(OrderMemo).where(OrderMemo.order_id.in_(ids)))
    return {row.order_id: row for row in rows}


def synced_channel(order: Order) -> str | None:
    """The channel whose trade ``order`` is, if its connector takes memos (they then sync)."""
    from koudai_flask.connectors.base import PUSH_MEMO, connector_class

    found = (
        current_session()
        .execute(
            select(Channel.name, Channel.kind)
            .join(ChannelOrder, ChannelOrder.channel_id == Channel.id)
            .where(ChannelOrder.order_id == order.id, ChannelOrder.direction == "import")
        )
        .first()
    )
    if found is None:
        return None
    cls = connector_class(found.kind)
    return found.name if cls is not None and PUSH_MEMO in cls.capabilities else None


# -- the push to the channel (jobs.sync_tasks) -----------------------------------------------


def to_push(channel_name: str, number: str) -> MemoPush | None:
    """The memo of a channel's order if a change made here still has to go there."""
    session = current_session()
    try:
        row = session.execute(
            select(OrderMemo, ChannelOrder.external_id)
            .join(Order, Order.id == OrderMemo.order_id)
            .join(ChannelOrder, ChannelOrder.order_id == Order.id)
            .join(Channel, Channel.id == ChannelOrder.channel_id)
            .where(
                Order.number == number,
                Channel.name == channel_name,
                ChannelOrder.direction == "import",
            )
        ).first()
        if row is None or not row[0].push_pending:
            return None
        memo, external_id = row
        return MemoPush(external_id, memo.memo, memo.flag, memo.version)
    finally:
        session.rollback()


def record_pushed(number: str, version: int) -> bool:
    """The channel has the memo of ``version``; False if it changed again meanwhile (the
    change's own push then sends the newer one)."""
    with unit_of_work() as session:
        order_id = session.scalar(select(Order.id).where(Order.number == number))
        cleared = session.execute(
            update(OrderMemo)
            .where(OrderMemo.order_id == order_id, OrderMemo.version == version)
            .values(push_pending=False)
        ).rowcount  # type: ignore[attr-defined]
        return bool(cleared)


__all__ = [
    "FLAGS",
    "MAX_MEMO",
    "TOPIC",
    "MemoPush",
    "check",
    "memo_of",
    "memos_of",
    "record_pushed",
    "set_flags",
    "set_memo",
    "staff_set_flags",
    "staff_set_memo",
    "synced_channel",
    "to_push",
]
