"""Bindings of our SKUs on a channel, as the SKU mapping page makes them: by hand or by outer id.

A binding is refused when either side is taken already (one of their SKUs is bound to one of
ours at most, and the other way round): rebinding means unlinking first, so a click never
silently moves a SKU. A new binding on a channel we publish to is marked for its first push.
Every change checks ``channels.manage`` within the member's scope and is audited in its own
transaction; the remote rows come from the view, which reads the channel with no transaction
open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from koudai_flask.connectors.base import PUSH_STOCK, RemoteStock
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Channel, ChannelListing, Sku
from koudai_flask.services import channels, staff, stock_sync
from koudai_flask.services.channel_admin import connector_of, require_manager
from koudai_flask.services.transaction import current_session, unit_of_work


@dataclass
class AutoBindReport:
    bound: list[str]  # our SKU codes, now bound
    ambiguous: list[str]  # outer ids carried by more than one remote SKU: left for a person


def _bound_pairs(session: Session, channel_id: int) -> dict[tuple[str, str], str]:
    rows = session.execute(
        select(ChannelListing.external_item_id, ChannelListing.external_sku_id, Sku.code)
        .join(Sku, Sku.id == ChannelListing.sku_id)
        .where(ChannelListing.channel_id == channel_id)
    )
    return {(item, sku or ""): code for item, sku, code in rows}


def unbound_remote(channel_id: int, remote: Iterable[RemoteStock]) -> list[RemoteStock]:
    """The remote SKUs whose (item, SKU) no binding of the channel names, in their order."""
    session = current_session()
    try:
        bound = _bound_pairs(session, channel_id)
    finally:
        session.rollback()
    return [r for r in remote if (r.external_item_id, r.external_sku_id) not in bound]


def unbound_sku_codes(channel_id: int) -> list[str]:
    """Our active SKU codes not bound on the channel yet, sorted."""
    session = current_session()
    try:
        bound = select(ChannelListing.sku_id).where(ChannelListing.channel_id == channel_id)
        return list(
            session.scalars(
                select(Sku.code)
                .where(Sku.active.is_(True), Sku.id.not_in(bound))
                .order_by(Sku.code)
            )
        )
    finally:
        session.rollback()


def _bind(
    session: Session,
    actor: str,
    channel: Channel,
    bound: dict[tuple[str, str], str],
    sku_code: str,
    rule: dict[str, Any],
) -> None:
    item, sku = rule["external_item_id"], rule["external_sku_id"] or ""
    taken = bound.get((item, sku))
    if taken is not None:
        raise ValidationError(
            f"{channel.name} item {item} SKU {sku or '-'} is bound to {taken}",
            reason="item_bound",
            detail={"item": item, "external_sku": sku or "-", "sku": taken},
        )
    if sku_code in bound.values():
        raise ValidationError(
            f"SKU {sku_code} is bound on {channel.name} already: unlink it first",
            reason="sku_bound",
            detail={"sku": sku_code, "channel": channel.name},
        )
    channels.link(channel.name, sku_code, **rule)
    if PUSH_STOCK in connector_of(channel.kind).capabilities:
        # The binding's first push publishes our figure there, at the next sync.
        stock_sync.mark_channel_dirty(channel.name, [sku_code])
    bound[(item, sku)] = sku_code
    after = {**rule, "share": str(rule["share"])}
    staff.audit(
        actor, "channels.link", "channel_listing", f"{channel.name}:{sku_code}", None, after
    )


def bind(
    user_id: str,
    name: str,
    sku_code: str,
    *,
    external_item_id: str,
    external_sku_id: str = "",
    share: Decimal = Decimal(1),
    buffer: int = 0,
    cap: int | None = None,
) -> None:
    """Bind one of our SKUs to an item (and SKU) of the channel, refusing a double binding."""
    actor = require_manager(user_id, name)
    rule = {
        "external_item_id": external_item_id,
        "external_sku_id": external_sku_id,
        "share": share,
        "buffer": buffer,
        "cap": cap,
    }
    with unit_of_work() as session:
        channel = channels.get(name)
        _bind(session, actor, channel, _bound_pairs(session, channel.id), sku_code, rule)


def auto_bind(user_id: str, name: str, remote: Iterable[RemoteStock]) -> AutoBindReport:
    """Bind every unbound remote SKU whose outer id is one of our free SKU codes (all or none).

    An outer id carried by two remote SKUs is ambiguous and left for a person to map.
    """
    actor = require_manager(user_id, name)
    report = AutoBindReport([], [])
    with unit_of_work() as session:
        channel = channels.get(name)
        bound = _bound_pairs(session, channel.id)
        by_code: dict[str, list[RemoteStock]] = {}
        for row in remote:
            if row.sku_code and (row.external_item_id, row.external_sku_id) not in bound:
                by_code.setdefault(row.sku_code, []).append(row)
        ours = set(
            session.scalars(select(Sku.code).where(Sku.code.in_(sorted(by_code))))
            if by_code
            else []
        )
        taken = set(bound.values())
        for code in sorted(ours - taken):
            rows = by_code[code]
            if len(rows) > 1:
                report.ambiguous.append(code)
                continue
            rule = {
                "external_item_id": rows[0].external_item_id,
                "external_sku_id": rows[0].external_sku_id,
                "share": Decimal(1),
                "buffer": 0,
                "cap": None,
            }
            _bind(session, actor, channel, bound, code, rule)
            report.bound.append(code)
    return report


def unlink(user_id: str, name: str, sku_code: str) -> None:
    """Remove a SKU's binding on the channel; nothing is pushed there for it any more."""
    actor = require_manager(user_id, name)
    with unit_of_work() as session:
        channel = channels.get(name)
        listing = session.scalar(
            select(ChannelListing)
            .join(Sku, Sku.id == ChannelListing.sku_id)
            .where(ChannelListing.channel_id == channel.id, Sku.code == sku_code)
        )
        if listing is None:
            raise NotFound(
                f"SKU {sku_code!r} is not bound on {name}",
                reason="sku_not_bound",
                detail={"sku": sku_code, "channel": name},
            )
        before = {
            "external_item_id": listing.external_item_id,
            "external_sku_id": listing.external_sku_id,
            "share": str(listing.share),
            "buffer": listing.buffer,
            "cap": listing.cap,
        }
        session.execute(delete(ChannelListing).where(ChannelListing.id == listing.id))
        staff.audit(actor, "channels.unlink", "channel_listing", f"{name}:{sku_code}", before, None)


__all__ = ["AutoBindReport", "auto_bind", "bind", "unbound_remote", "unbound_sku_codes", "unlink"]
