"""Sales channels (backends) and the bindings of our SKUs on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Channel, ChannelListing, SyncCursor
from koudai_flask.services import inventory
from koudai_flask.services.transaction import current_session, unit_of_work

# Kinds without a connector: the own shop and channels whose orders arrive through it.
BUILTIN_KINDS = ("web", "wechat", "weibo", "erp")


def known_kinds() -> set[str]:
    """Built-in kinds plus every connector's (ours and the entry point group's)."""
    from koudai_flask.connectors.base import connector_kinds

    return set(BUILTIN_KINDS) | connector_kinds()


@dataclass(frozen=True)
class ChannelInfo:
    """A channel as plain data, for jobs that hold no session while they call it."""

    id: int
    name: str
    kind: str
    settings: dict[str, Any]
    active: bool
    status: str
    last_sync_at: datetime | None
    last_error: str | None


def _info(channel: Channel) -> ChannelInfo:
    return ChannelInfo(
        channel.id,
        channel.name,
        channel.kind,
        dict(channel.settings or {}),
        channel.active,
        channel.status,
        channel.last_sync_at,
        channel.last_error,
    )


def info(name_or_id: str | int) -> ChannelInfo:
    """The channel by name (or id) as plain data; the read transaction is closed."""
    session = current_session()
    try:
        if isinstance(name_or_id, int):
            channel = session.get(Channel, name_or_id)
            if channel is None:
                raise NotFound(f"unknown channel id {name_or_id}")
        else:
            channel = get(name_or_id)
        return _info(channel)
    finally:
        session.rollback()


def all_channels(*, with_connector: bool = False) -> list[ChannelInfo]:
    """Every channel by name; ``with_connector`` keeps only those a connector drives."""
    from koudai_flask.connectors.base import connector_kinds

    session = current_session()
    try:
        channels = [_info(c) for c in session.scalars(select(Channel).order_by(Channel.name))]
    finally:
        session.rollback()
    if with_connector:
        kinds = connector_kinds()
        channels = [c for c in channels if c.kind in kinds]
    return channels


def update_settings(name: str, changes: dict[str, Any]) -> ChannelInfo:
    """Merge ``changes`` into a channel's settings (renewed tokens, a new secret)."""
    with unit_of_work():
        channel = get(name)
        channel.settings = {**(channel.settings or {}), **changes}
        return _info(channel)


def set_active(name: str, active: bool) -> None:
    with unit_of_work():
        get(name).active = active


def record_sync(channel_id: int, *, error: str | None = None, status: str | None = None) -> None:
    """Note a finished job on the channel: success clears the error, a failure keeps it."""
    from koudai_flask.models.base import utcnow

    with unit_of_work() as session:
        channel = session.get(Channel, channel_id)
        if channel is None:
            return
        now = utcnow()
        if error is None:
            channel.last_sync_at = now
            channel.status = status or "ok"
            channel.last_error = None
        else:
            channel.status = status or "failing"
            channel.last_error = error[:500]
            channel.last_error_at = now


def get(name: str) -> Channel:
    channel = current_session().scalar(select(Channel).where(Channel.name == name))
    if channel is None:
        raise NotFound(f"unknown channel {name!r}; create it with services.channels.create()")
    return channel


def create(kind: str, name: str, *, settings: dict[str, Any] | None = None) -> Channel:
    if kind not in known_kinds():
        raise ValidationError(
            f"unknown channel kind {kind!r}; known kinds: {', '.join(sorted(known_kinds()))}"
        )
    if not name or len(name) > 64:
        raise ValidationError("channel name must be 1 to 64 characters", reason="channel_name")
    from flask import current_app

    from koudai_flask.connectors.base import connector_class

    connector = connector_class(kind)
    stored = dict(settings or {})
    if connector is not None:
        connector.check_settings(stored)
        stored = connector.prepare_settings(stored, str(current_app.config.get("SECRET_KEY") or ""))
    with unit_of_work() as session:
        if session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
            raise ValidationError(
                f"channel {name!r} already exists", reason="channel_taken", detail={"name": name}
            )
        channel = Channel(kind=kind, name=name, settings=stored, active=True)
        session.add(channel)
        session.flush()
        return channel


def link(
    name: str,
    sku_code: str,
    *,
    external_item_id: str,
    external_sku_id: str | None = None,
    share: float | Decimal = 1.0,
    buffer: int = 0,
    cap: int | None = None,
) -> ChannelListing:
    """Bind a SKU to an item (and SKU) on a channel, with its allocation rule."""
    try:
        share_value = Decimal(str(share))
    except InvalidOperation:
        raise ValidationError(f"share must be a number between 0 and 1, got {share!r}") from None
    if not Decimal(0) <= share_value <= Decimal(1):
        raise ValidationError(f"share must be between 0 and 1, got {share!r}")
    if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 0:
        raise ValidationError(f"buffer must be an integer >= 0, got {buffer!r}")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        raise ValidationError(f"cap must be None or an integer >= 0, got {cap!r}")
    if not external_item_id:
        raise ValidationError("external_item_id is required")
    with unit_of_work() as session:
        channel = get(name)
        sku = inventory.get_sku(session, sku_code)
        listing = session.scalar(
            select(ChannelListing).where(
                ChannelListing.channel_id == channel.id, ChannelListing.sku_id == sku.id
            )
        )
        if listing is None:
            listing = ChannelListing(channel_id=channel.id, sku_id=sku.id)
            session.add(listing)
        listing.external_item_id = external_item_id
        listing.external_sku_id = external_sku_id or ""
        listing.share = share_value
        listing.buffer = buffer
        listing.cap = cap
        session.flush()
        return listing


# -- incremental cursors ---------------------------------------------------------------------


def cursor_position(channel_id: int, stream: str) -> datetime | None:
    """Where the incremental import ``stream`` of a channel stopped (None: never ran)."""
    session = current_session()
    try:
        return session.scalar(
            select(SyncCursor.position).where(
                SyncCursor.channel_id == channel_id, SyncCursor.stream == stream
            )
        )
    finally:
        session.rollback()


def advance_cursor(channel_id: int, stream: str, position: datetime) -> None:
    """Move a cursor forward (never back: a slower concurrent run cannot rewind it)."""
    from koudai_flask.models.base import utcnow

    with unit_of_work() as session:
        cursor = session.scalar(
            select(SyncCursor).where(
                SyncCursor.channel_id == channel_id, SyncCursor.stream == stream
            )
        )
        if cursor is None:
            cursor = SyncCursor(channel_id=channel_id, stream=stream)
            session.add(cursor)
        if cursor.position is None or position > cursor.position:
            cursor.position = position
        cursor.updated_at = utcnow()
