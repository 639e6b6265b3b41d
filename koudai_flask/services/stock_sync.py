"""Stock both ways between the ledger and the channels: what to push, what was seen, drift.

The importer and exporter of stock in the connector vocabulary (``connectors.base``). They
take and return plain records; the job layer holds the connector and calls them around its
remote calls, so no transaction is ever open during a network round trip.

- Out: a change of a SKU's stock marks its listings *dirty* (``mark_dirty``); a push job
  reads the dirty listings with the quantity their rule gives now (``pending_pushes``), sends
  them, and records what the channel accepted (``record_pushed``). A listing marked again
  while its push was in flight keeps its mark (``push_version``), so no change is lost, and a
  burst of changes to one SKU becomes one push of the latest figure.
- In: a quantity seen on a channel (``apply_remote_stock``) that equals what we last pushed is
  our own echo and is ignored; any other is applied by the channel's policy: ``overwrite``
  (marketplaces: we are the truth, publish ours again) or ``adopt`` (ERPs: their count becomes
  our on-hand, an adjustment movement).
- Drift (``compare``): what a channel publishes against what its rule says, recorded, and
  marked for repair when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, select, update
from sqlalchemy.orm import Session

from koudai_flask.connectors.base import (
    ADOPT,
    PUSH_STOCK,
    ListingRef,
    RemoteStock,
    connector_class,
    kinds_with,
)
from koudai_flask.errors import KoudaiError
from koudai_flask.models import Channel, ChannelListing, DriftRecord, Sku, StockLevel
from koudai_flask.models.base import utcnow
from koudai_flask.services import inventory, outbox
from koudai_flask.services.channels import get as get_channel
from koudai_flask.services.ledger import get_location
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.sync")


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


@dataclass
class StockApplyReport:
    """What an inbound batch of quantities did."""

    applied: int = 0  # changed our stock (adopt) or marked for a re-push (overwrite)
    unchanged: int = 0  # our echo, or already equal
    unknown: list[str] = field(default_factory=list)  # matched no binding and no SKU
    refused: list[str] = field(default_factory=list)  # could not be applied (e.g. < reserved)


@dataclass(frozen=True)
class DriftRow:
    sku_code: str
    listing: ListingRef
    published: int | None  # None: the channel does not list it
    expected: int

    @property
    def drifted(self) -> bool:
        return self.published != self.expected


def policy_of(kind: str, settings: Mapping[str, Any] | None) -> str:
    """A channel's stock policy: its setting ``stock_policy``, else its connector's default."""
    configured = (settings or {}).get("stock_policy")
    if configured:
        return str(configured)
    connector = connector_class(kind)
    return connector.stock_policy if connector is not None else ADOPT


# -- out: dirty listings and pushes ----------------------------------------------------------


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
        .values(_dirty_values())
        .returning(ChannelListing.channel_id)
    ).all()
    if marked:
        payload = {"skus": sorted(sku_codes), "channels": sorted(set(marked))}
        outbox.record(session, "channel.push_due", payload)


def _dirty_values() -> dict[Any, Any]:
    return {
        ChannelListing.dirty_since: case(
            (ChannelListing.dirty_since.is_(None), utcnow()),
            else_=ChannelListing.dirty_since,
        ),
        ChannelListing.push_version: ChannelListing.push_version + 1,
    }


def _bump(session: Session, listing_ids: Sequence[int]) -> None:
    session.execute(
        update(ChannelListing)
        .execution_options(synchronize_session=False)
        .where(ChannelListing.id.in_(listing_ids))
        .values(_dirty_values())
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
            _bump(session, ids)
        return len(ids)


StateRow = tuple[ChannelListing, str, "int | None", "int | None"]


def _states(
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


def _expected(listing: ChannelListing, on_hand: int | None, reserved: int | None) -> int:
    available = (on_hand or 0) - (reserved or 0)
    return inventory.allocation(
        available, share=listing.share, buffer=listing.buffer, cap=listing.cap
    )


def _ref(listing: ChannelListing, sku_code: str) -> ListingRef:
    return ListingRef(sku_code, listing.external_item_id, listing.external_sku_id)


def pending_pushes(channel_id: int, *, limit: int = 1000) -> list[PendingPush]:
    """The dirty listings of a channel with the quantity their rule gives right now."""
    session = current_session()
    try:
        return [
            PendingPush(listing.id, listing.push_version, _ref(listing, code), quantity)
            for listing, code, on_hand, reserved in _states(
                session, channel_id, dirty_only=True, limit=limit
            )
            for quantity in (_expected(listing, on_hand, reserved),)
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
                _ref(listing, code),
                _expected(listing, on_hand, reserved),
                listing.last_pushed_quantity,
                listing.last_seen_quantity,
            )
            for listing, code, on_hand, reserved in _states(
                session, channel_id, dirty_only=False, limit=None
            )
        ]
    finally:
        session.rollback()


# -- in: quantities seen on a channel --------------------------------------------------------


def _find_listing(
    session: Session, channel_id: int, row: RemoteStock
) -> tuple[ChannelListing, str] | None:
    query = select(ChannelListing, Sku.code).join(Sku, Sku.id == ChannelListing.sku_id)
    query = query.where(ChannelListing.channel_id == channel_id)
    if row.external_item_id:
        found = session.execute(
            query.where(
                ChannelListing.external_item_id == row.external_item_id,
                ChannelListing.external_sku_id == (row.external_sku_id or ""),
            )
        ).first()
        if found is not None:
            return found[0], found[1]
    if row.sku_code:
        found = session.execute(query.where(Sku.code == row.sku_code)).first()
        if found is not None:
            return found[0], found[1]
    return None


def _sku_exists(session: Session, code: str) -> bool:
    return bool(code) and session.scalar(select(Sku.id).where(Sku.code == code)) is not None


def apply_remote_stock(
    channel_name: str, rows: Sequence[RemoteStock], *, reference: str
) -> StockApplyReport:
    """Apply quantities seen on a channel by its policy (echoes ignored); idempotent."""
    report = StockApplyReport()
    channel = get_channel(channel_name)
    channel_id, policy = channel.id, policy_of(channel.kind, channel.settings)
    adopt: list[tuple[str, int, str]] = []
    with unit_of_work() as session:
        for row in rows:
            label = row.sku_code or f"{row.external_item_id}/{row.external_sku_id}"
            found = _find_listing(session, channel_id, row)
            if found is None:
                if policy == ADOPT and _sku_exists(session, row.sku_code):
                    adopt.append((row.sku_code, row.quantity, label))
                else:
                    report.unknown.append(label)
                continue
            listing, code = found
            listing.last_seen_quantity = row.quantity
            if policy == ADOPT:
                adopt.append((code, row.quantity, label))
            elif row.quantity == listing.last_pushed_quantity:
                report.unchanged += 1  # our own echo
            else:
                _bump(session, [listing.id])
                report.applied += 1
                log.info(
                    "channel %s shows %d of %s, not what we pushed (%s): publishing ours again",
                    channel_name,
                    row.quantity,
                    code,
                    listing.last_pushed_quantity,
                )
    for code, quantity, label in adopt:
        try:
            on_hand_before = _on_hand(code)
            if on_hand_before == quantity:
                report.unchanged += 1
                continue
            inventory.set_on_hand(
                code,
                quantity,
                source=f"channel:{channel_name}",
                reference=reference[:120],
                idempotency_key=f"count:{channel_name}:{reference}:{code}"[:200],
            )
            report.applied += 1
        except KoudaiError as exc:
            log.warning("channel %s: count of %s not applied: %s", channel_name, code, exc)
            report.refused.append(label)
    return report


def _on_hand(sku_code: str) -> int:
    session = current_session()
    location = get_location(session)
    value = session.scalar(
        select(StockLevel.on_hand)
        .join(Sku, Sku.id == StockLevel.sku_id)
        .where(Sku.code == sku_code, StockLevel.location_id == location.id)
    )
    session.rollback()
    return int(value or 0)


# -- drift -----------------------------------------------------------------------------------


def compare(
    channel_name: str, published: Iterable[RemoteStock], *, record: bool, repair: bool
) -> list[DriftRow]:
    """Every binding of a channel: what it publishes against what its rule says.

    ``record`` keeps a DriftRecord per drifted listing; ``repair`` also marks them dirty so
    the next push publishes the expected figure (and stores what was seen).
    """
    channel = get_channel(channel_name)
    seen: dict[tuple[str, str], int] = {}
    seen_by_code: dict[str, int] = {}
    for remote in published:
        seen[(remote.external_item_id, remote.external_sku_id or "")] = remote.quantity
        if remote.sku_code:
            seen_by_code[remote.sku_code] = remote.quantity
    rows: list[DriftRow] = []
    drifted_ids: list[int] = []
    with unit_of_work() as session:
        for listing, code, on_hand, reserved in _states(
            session, channel.id, dirty_only=False, limit=None
        ):
            ref = _ref(listing, code)
            quantity = seen.get((ref.external_item_id, ref.external_sku_id), seen_by_code.get(code))
            row = DriftRow(code, ref, quantity, _expected(listing, on_hand, reserved))
            rows.append(row)
            if quantity is not None:
                listing.last_seen_quantity = quantity
            if row.drifted:
                drifted_ids.append(listing.id)
                if record:
                    session.add(
                        DriftRecord(
                            channel_id=channel.id,
                            sku_id=listing.sku_id,
                            published=quantity,
                            expected=row.expected,
                            repaired=repair,
                        )
                    )
        if repair and drifted_ids:
            _bump(session, drifted_ids)
    return rows


def recent_drift(channel_name: str | None = None, *, limit: int = 100) -> list[DriftRecord]:
    """The latest drift records (all channels, or one), newest first."""
    session = current_session()
    query = select(DriftRecord).order_by(DriftRecord.id.desc()).limit(limit)
    if channel_name is not None:
        query = query.where(DriftRecord.channel_id == get_channel(channel_name).id)
    return list(session.scalars(query))


__all__ = [
    "DriftRow",
    "ListingState",
    "PendingPush",
    "StockApplyReport",
    "apply_remote_stock",
    "compare",
    "dirty_channels",
    "listing_states",
    "mark_channel_dirty",
    "mark_dirty_in",
    "pending_pushes",
    "policy_of",
    "record_pushed",
    "recent_drift",
]
