"""Sales channels and the bindings of our SKUs on them."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Channel, ChannelListing
from koudai_flask.services import inventory
from koudai_flask.services.transaction import current_session, unit_of_work

BUILTIN_KINDS = ("web", "wechat", "weibo", "taobao", "erp")


def known_kinds() -> set[str]:
    """Built-in kinds plus those registered under the ``koudai_flask.connectors`` entry point."""
    from importlib.metadata import entry_points

    return set(BUILTIN_KINDS) | {ep.name for ep in entry_points(group="koudai_flask.connectors")}


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
        raise ValidationError("channel name must be 1 to 64 characters")
    with unit_of_work() as session:
        if session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
            raise ValidationError(f"channel {name!r} already exists")
        channel = Channel(kind=kind, name=name, settings=dict(settings or {}), active=True)
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
