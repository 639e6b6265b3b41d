"""The exporter of stock, the "out" half of :mod:`koudai_flask.services.stock_sync`.

Dirty marks on channel listings, the figure each dirty listing's rule gives now, and what
the channel accepted; the importer and the drift check read listings through the same
helpers (``listing_rows``, ``expected_quantity``, ``listing_ref``, ``mark_listings_dirty``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, select, update
from sqlalchemy.orm import Session

from koudai_flask.connectors.base import PUSH_STOCK, ListingRef, kinds_with
from koudai_flask.models import Channel, ChannelListing, Sku, StockLevel
from koudai_flask.models.base import utcnow
from koudai_flask.services import inventory, outbox
from koudai_flask.services.channels import get as get_channel
from koudai_flask.services.ledger import get_location
from koudai_flask.services.transaction import current_session, unit_of_work


@dataclass(frozen=True)
class PendingPush:
    """A listing to publish: its binding, the quantity its rule gives, the version read."""

    listing_id: int
    version: int
    listing: ListingRef
    quantity: int


@dataclass(frozen=True)
class ListingState:
    """One binding with what we expect there and what we last pushed and saw."""

    listing_id: int
    listing: ListingRef
    expected: int
    last_pushed: int | None
    last_seen: int | None


def mark_dirty_in(session: Session, *sku_codes: str) -> None:
    """Inside a stock change's transaction: mark the SKUs' listings on pushing channels.

    One UPDATE; only when it marked something is a ``channel.push_due`` event recorded, so a
    shop without linked channels pays a single statement per change. The mark commits with
    the change itself, so no crash or lost job can lose it (the periodic tick sweeps it).
    """
    kinds = kinds_with(PUSH_STOCK)
    if not kinds or not sku_codes:
        return
    pushing = select(Channel.id).where(Channel.active.is_(True), Channel.kind.in_(sorted(kinds)))
    marked = session.scalars(
        update(ChannelListing)
        .execution_options(synchronize_session=False)
        .where(
            ChannelListing.sku_id.in_(select(Sku.id).where(Sku.code.in_(sku_codes))),
            ChannelListing.channel_id.in_(pushing),
        )
        .values(dirty_values(utcnow()))
        .returning(ChannelListing.channel_id)
    ).all()
    if marked:
        payload = {"skus": sorted(sku_codes), "channels": sorted(set(marked))}
        outbox.record(session, "channel.push_due", payload)


def dirty_values(now: Any) -> dict[str, Any]:
    """What marking a listing for a push sets: since when it is dirty (kept if it already
    was) and a new push version. ``now`` is a time or an expression giving one (the placing
    statement passes its parameter)."""
    return {
        "dirty_since": case(
            (ChannelListing.dirty_since.is_(None), now),
            else_=ChannelListing.dirty_since,
        ),
        "push_version": ChannelListing.push_version + 1,
    }


def mark_listings_dirty(session: Session, listing_ids: Sequence[int]) -> None:
    """Mark listings for a push (by id), inside the caller's transaction."""
    session.execute(
        update(ChannelListing)
        .execution_options(synchronize_session=False)
        .where(ChannelListing.id.in_(listing_ids))
        .values(dirty_values(utcnow()))
    )


def mark_channel_dirty(channel_name: str, sku_codes: Iterable[str] | None = None) -> int:
    """Mark a channel's listings (all, or those of ``sku_codes``) for a push; returns how many."""
    with unit_of_work() as session:
        channel = get_channel(channel_name)
        query = select(ChannelListing.id).where(ChannelListing.channel_id == channel.id)
        if sku_codes is not None:
            query = query.join(Sku).where(Sku.code.in_(list(sku_codes)))
        ids = list(session.scalars(query))
        if ids:
            mark_listings_dirty(session, ids)
        return len(ids)


StateRow = tuple[ChannelListing, str, "int | None", "int | None"]


def listing_rows(
    session: Session, channel_id: int, *, dirty_only: bool, limit: int | None
) -> list[StateRow]:
    """A channel's listings with their SKU code and stock level at the default location."""
    location = get_location(session)
    query = (
        select(
            ChannelListing,
            Sku.code,
            StockLevel.on_hand,
            StockLevel.reserved,
        )
        .join(Sku, Sku.id == ChannelListing.sku_id)
        .outerjoin(
            StockLevel,
            and_(StockLevel.sku_id == Sku.id, StockLevel.location_id == location.id),
        )
        .where(ChannelListing.channel_id == channel_id)
        .order_by(ChannelListing.id)
    )
    if dirty_only:
        query = query.where(ChannelListing.dirty_since.is_not(None))
    if limit is not None:
        query = query.limit(limit)
    return [(row[0], row[1], row[2], row[3]) for row in session.execute(query)]


def expected_quantity(listing: ChannelListing, on_hand: int | None, reserved: int | None) -> int:
    """The quantity a listing's rule (share, buffer, cap) gives for this stock level."""
    available = (on_hand or 0) - (reserved or 0)
    return inventory.allocation(
        available, share=listing.share, buffer=listing.buffer, cap=listing.cap
    )


def listing_ref(listing: ChannelListing, sku_code: str) -> ListingRef:
    """The binding of a listing, as the connectors name it."""
    return ListingRef(sku_code, listing.external_item_id, listing.external_sku_id)


def pending_pushes(channel_id: int, *, limit: int = 1000) -> list[PendingPush]:
    """The dirty listings of a channel with the quantity their rule gives right now."""
    session = current_session()
    try:
        return [
            PendingPush(listing.id, listing.push_version, listing_ref(listing, code), quantity)
            for listing, code, on_hand, reserved in listing_rows(
                session, channel_id, dirty_only=True, limit=limit
            )
            for quantity in (expected_quantity(listing, on_hand, reserved),)
        ]
    finally:
        session.rollback()


def record_pushed(pushed: Sequence[PendingPush]) -> int:
    """Store what the channel accepted; a listing re-marked since it was read stays dirty.

    A binding write: it changes no stock and records no outbox event, so it never triggers
    another export (STYLE.md "Connectors").
    """
    if not pushed:
        return 0
    now = utcnow()
    cleaned = 0
    with unit_of_work() as session:
        for push in pushed:
            result = session.execute(
                update(ChannelListing)
                .execution_options(synchronize_session=False)
                .where(ChannelListing.id == push.listing_id)
                .values(
                    last_pushed_quantity=push.quantity,
                    last_synced_at=now,
                    dirty_since=case(
                        (ChannelListing.push_version == push.version, None),
                        else_=ChannelListing.dirty_since,
                    ),
                )
            )
            cleaned += result.rowcount  # type: ignore[attr-defined]
    return cleaned


def dirty_channels(older_than: datetime | None = None) -> list[int]:
    """Channels with listings still waiting for a push (marked before ``older_than``)."""
    session = current_session()
    query = (
        select(ChannelListing.channel_id)
        .join(Channel, Channel.id == ChannelListing.channel_id)
        .where(ChannelListing.dirty_since.is_not(None), Channel.active.is_(True))
        .distinct()
    )
    if older_than is not None:
        query = query.where(ChannelListing.dirty_since <= older_than)
    try:
        return sorted(session.scalars(query))
    finally:
        session.rollback()


def listing_states(channel_id: int) -> list[ListingState]:
    """Every binding of a channel with its expected, last pushed and last seen quantities."""
    session = current_session()
    try:
        return [
            ListingState(
                listing.id,
                listing_ref(listing, code),
                expected_quantity(listing, on_hand, reserved),
                listing.last_pushed_quantity,
                listing.last_seen_quantity,
            )
            for listing, code, on_hand, reserved in listing_rows(
                session, channel_id, dirty_only=False, limit=None
            )
        ]
    finally:
        session.rollback()
