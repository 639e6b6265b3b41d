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

This module holds the importer and the drift check; the exporter (the "out" half) is
:mod:`koudai_flask.services.stock_export`, and its names are importable from here as well.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from koudai_flask.connectors.base import ADOPT, ListingRef, RemoteStock, connector_class
from koudai_flask.errors import KoudaiError
from koudai_flask.models import ChannelListing, DriftRecord, Sku, StockLevel
from koudai_flask.services import inventory
from koudai_flask.services.channels import get as get_channel
from koudai_flask.services.ledger import get_location
from koudai_flask.services.stock_export import (
    ListingState,
    PendingPush,
    StateRow,
    dirty_channels,
    expected_quantity,
    listing_ref,
    listing_rows,
    listing_states,
    mark_channel_dirty,
    mark_dirty_in,
    mark_listings_dirty,
    pending_pushes,
    record_pushed,
)
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.sync")


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
                mark_listings_dirty(session, [listing.id])
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
        for listing, code, on_hand, reserved in listing_rows(
            session, channel.id, dirty_only=False, limit=None
        ):
            ref = listing_ref(listing, code)
            quantity = seen.get((ref.external_item_id, ref.external_sku_id), seen_by_code.get(code))
            row = DriftRow(code, ref, quantity, expected_quantity(listing, on_hand, reserved))
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
            mark_listings_dirty(session, drifted_ids)
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
    "StateRow",
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
