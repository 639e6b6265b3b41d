"""What the back office's channel pages read and change: status, settings, drift, dead letters.

Reads return plain data for the pages. Every change checks the acting member's permission
and channel scope, runs in one transaction and writes its audit entry in that transaction;
secrets are never written to the audit log (a secret setting shows as ``"set"``). Remote
calls (exchanging an OAuth code) stay with the views: the functions here take what those
calls returned, so no transaction is open during a network round trip. SKU bindings are in
:mod:`koudai_flask.services.channel_bindings`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from koudai_flask.connectors.base import Connector, connector_class
from koudai_flask.errors import NotFound, PermissionDenied
from koudai_flask.models import Channel, ChannelListing, Sku, SyncFailure
from koudai_flask.services import channels, staff, stock_sync, sync_log
from koudai_flask.services.channels import ChannelInfo
from koudai_flask.services.transaction import current_session, unit_of_work

# The settings a Taobao shop is created with; its tokens come from the OAuth flow.
TAOBAO_FIELDS = ("app_key", "app_secret", "gateway_url", "oauth_base", "sign_method")
# Settings kept by the engine itself, never shown nor edited as settings.
INTERNAL_SETTINGS = frozenset({"catalog_import"})


@dataclass(frozen=True)
class ChannelRow:
    """A channel with what its list row shows besides its own fields."""

    info: ChannelInfo
    oldest_dirty: datetime | None  # the oldest binding still waiting for a push
    dead_letters: int
    linked: int


@dataclass(frozen=True)
class ListingRow:
    """A binding with its rule and its expected, last pushed and last seen quantities."""

    sku_code: str
    external_item_id: str
    external_sku_id: str
    share: Decimal
    buffer: int
    cap: int | None
    expected: int
    last_pushed: int | None
    last_seen: int | None
    dirty_since: datetime | None

    @property
    def drifted(self) -> bool:
        return self.last_seen is not None and self.last_seen != self.expected


@dataclass(frozen=True)
class DriftEntry:
    sku_code: str
    published: int | None
    expected: int
    repaired: bool
    found_at: datetime


@dataclass(frozen=True)
class SettingField:
    name: str
    secret: bool


# -- reads -----------------------------------------------------------------------------------


def connector_of(kind: str) -> type[Connector]:
    cls = connector_class(kind)
    if cls is None:
        raise NotFound(f"channel kind {kind!r} has no connector")
    return cls


def setting_fields(kind: str) -> list[SettingField]:
    """The settings a person fills in for a channel of ``kind`` (secrets flagged)."""
    cls = connector_of(kind)
    names = TAOBAO_FIELDS if kind == "taobao" else cls.required_settings
    return [SettingField(name, name in cls.secret_settings) for name in names]


def masked(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as they may be shown or audited: secrets replaced by ``"set"``."""
    cls = connector_class(kind)
    secrets = set(cls.secret_settings) if cls is not None else set()
    return {
        name: ("set" if name in secrets else value)
        for name, value in sorted(settings.items())
        if name not in INTERNAL_SETTINGS and value not in (None, "")
    }


def channel_rows(visible: Collection[str] | None) -> list[ChannelRow]:
    """Every channel a connector drives (those in ``visible``, when given), by name."""
    infos = [
        c
        for c in channels.all_channels(with_connector=True)
        if visible is None or c.name in visible
    ]
    letters = sync_log.counts_by_channel()
    session = current_session()
    try:
        stats = {
            channel_id: (count, oldest)
            for channel_id, count, oldest in session.execute(
                select(
                    ChannelListing.channel_id,
                    func.count(),
                    func.min(ChannelListing.dirty_since),
                ).group_by(ChannelListing.channel_id)
            )
        }
    finally:
        session.rollback()
    return [
        ChannelRow(
            info,
            stats.get(info.id, (0, None))[1],
            letters.get(info.id, 0),
            stats.get(info.id, (0, None))[0],
        )
        for info in infos
    ]


def listing_rows(channel_id: int) -> list[ListingRow]:
    """A channel's bindings by SKU code, with the quantities the sync engine tracks."""
    states = {s.listing_id: s for s in stock_sync.listing_states(channel_id)}
    session = current_session()
    try:
        rows = session.execute(
            select(ChannelListing, Sku.code)
            .join(Sku, Sku.id == ChannelListing.sku_id)
            .where(ChannelListing.channel_id == channel_id)
            .order_by(Sku.code)
        ).all()
        return [
            ListingRow(
                code,
                listing.external_item_id,
                listing.external_sku_id,
                listing.share,
                listing.buffer,
                listing.cap,
                states[listing.id].expected if listing.id in states else 0,
                listing.last_pushed_quantity,
                listing.last_seen_quantity,
                listing.dirty_since,
            )
            for listing, code in rows
        ]
    finally:
        session.rollback()


def drift_entries(name: str, *, limit: int = 50) -> list[DriftEntry]:
    """The channel's latest drift records, newest first, with our SKU codes."""
    session = current_session()
    try:
        records = stock_sync.recent_drift(name, limit=limit)
        ids = {r.sku_id for r in records}
        codes = {i: c for i, c in session.execute(select(Sku.id, Sku.code).where(Sku.id.in_(ids)))}
        return [
            DriftEntry(codes.get(r.sku_id, ""), r.published, r.expected, r.repaired, r.found_at)
            for r in records
        ]
    finally:
        session.rollback()


def letter_channel(letter_id: int) -> str | None:
    """The name of the channel a dead letter belongs to (None: no such letter)."""
    session = current_session()
    try:
        return session.scalar(
            select(Channel.name)
            .join(SyncFailure, SyncFailure.channel_id == Channel.id)
            .where(SyncFailure.id == letter_id)
        )
    finally:
        session.rollback()


# -- changes ---------------------------------------------------------------------------------


def require_manager(user_id: str, name: str) -> str:
    """The audit actor of a member allowed to manage channel ``name``."""
    staff.require(user_id, "channels.manage", channel=name)
    return f"staff:{user_id}"


def create_channel(
    user_id: str, kind: str, name: str, settings: Mapping[str, Any], *, active: bool = True
) -> None:
    """A new channel; only a member not scoped to some channels may add one."""
    member = staff.require(user_id, "channels.manage")
    if member.channels is not None:
        raise PermissionDenied(f"staff {user_id} works on some channels only: cannot add one")
    with unit_of_work():
        channel = channels.create(kind, name, settings=dict(settings))
        channel.active = active
        after = {"kind": kind, "active": active, "settings": masked(kind, channel.settings)}
        staff.audit(f"staff:{user_id}", "channels.create", "channel", name, None, after)


def save_settings(user_id: str, name: str, changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into the settings, refused unless the connector accepts the result."""
    actor = require_manager(user_id, name)
    with unit_of_work():
        channel = channels.get(name)
        current = dict(channel.settings or {})
        connector_of(channel.kind).check_settings({**current, **changes})
        before = masked(channel.kind, current)
        channels.update_settings(name, dict(changes))
        after = masked(channel.kind, channel.settings)
        staff.audit(actor, "channels.settings", "channel", name, before, after)


def store_authorization(user_id: str, name: str, sealed: Mapping[str, Any]) -> None:
    """Keep a shop's sealed tokens: the channel is ``ok`` again, and a first link starts it."""
    actor = require_manager(user_id, name)
    with unit_of_work():
        channel = channels.get(name)
        first = not (channel.settings or {}).get("access_token")
        before = {
            "status": channel.status,
            "active": channel.active,
            "taobao_user_nick": (channel.settings or {}).get("taobao_user_nick"),
        }
        channels.update_settings(name, dict(sealed))
        channel.status, channel.last_error = "ok", None
        if first:
            channel.active = True
        after = {
            "status": "ok",
            "active": channel.active,
            "taobao_user_nick": sealed.get("taobao_user_nick"),
            "access_token": "set",
        }
        staff.audit(actor, "channels.authorize", "channel", name, before, after)


def set_active(user_id: str, name: str, active: bool) -> None:
    """Pause (no job runs) or resume a channel."""
    actor = require_manager(user_id, name)
    with unit_of_work():
        before = {"active": channels.get(name).active}
        channels.set_active(name, active)
        staff.audit(actor, "channels.set_active", "channel", name, before, {"active": active})


def record_action(
    user_id: str,
    name: str,
    action: str,
    details: Mapping[str, Any],
    *,
    object_type: str = "channel",
    object_id: str | None = None,
) -> None:
    """Audit an action run outside this transaction (jobs scheduled, a requeue, an import)."""
    actor = require_manager(user_id, name)
    with unit_of_work():
        channels.get(name)
        after = {"channel": name, **details} if object_id is not None else dict(details)
        staff.audit(actor, action, object_type, object_id or name, None, after)


def discard_letter(user_id: str, name: str, letter_id: int) -> None:
    """Drop a dead letter for good."""
    actor = require_manager(user_id, name)
    with unit_of_work():
        sync_log.discard(letter_id, by=actor)
        staff.audit(
            actor,
            "channels.discard",
            "sync_failure",
            str(letter_id),
            {"status": "dead"},
            {"status": "discarded", "channel": name},
        )


__all__ = [
    "TAOBAO_FIELDS",
    "ChannelRow",
    "DriftEntry",
    "ListingRow",
    "SettingField",
    "channel_rows",
    "connector_of",
    "create_channel",
    "discard_letter",
    "drift_entries",
    "letter_channel",
    "listing_rows",
    "masked",
    "record_action",
    "require_manager",
    "save_settings",
    "set_active",
    "setting_fields",
    "store_authorization",
]
