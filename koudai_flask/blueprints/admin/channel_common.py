"""What the channel pages share: finding a channel within the member's scope, labels, lag."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, url_for
from flask.typing import ResponseReturnValue

from koudai_flask.blueprints.admin.common import acting
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.connectors.base import (
    EVENTS,
    FETCH_ORDERS,
    FETCH_SHIPMENTS,
    FETCH_STOCK,
    PUSH_STOCK,
    Connector,
    RemoteStock,
    connector_class,
)
from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.models.base import utcnow
from koudai_flask.services import channels, staff
from koudai_flask.services.channels import ChannelInfo

STATUS_LABELS = {
    "ok": _l("Working"),
    "failing": _l("Failing"),
    "auth_expired": _l("Authorization expired"),
}
KIND_LABELS = {
    "taobao": _l("Taobao shop"),
    "tryton": _l("Tryton ERP"),
    "jushuitan": _l("Jushuitan ERP"),
    "webhook_erp": _l("In-house ERP (webhook)"),
}
SETTING_LABELS = {
    "app_key": _l("App key"),
    "app_secret": _l("App secret"),
    "gateway_url": _l("Gateway URL"),
    "oauth_base": _l("OAuth base URL"),
    "sign_method": _l("Sign method"),
    "url": _l("Server URL"),
    "database": _l("Database"),
    "username": _l("User name"),
    "password": _l("Password"),
    "base_url": _l("API base URL"),
    "access_token": _l("Access token"),
    "shop_id": _l("Shop id"),
    "order_url": _l("Order URL"),
    "secret": _l("Signing secret"),
}


def label(table: Mapping[str, Any], key: str) -> str:
    found = table.get(key)
    return str(found) if found is not None else key


def labels() -> dict[str, Any]:
    """The label functions every channel template uses."""
    return {
        "status_name": lambda key: label(STATUS_LABELS, key),
        "kind_name": lambda key: label(KIND_LABELS, key),
        "setting_name": lambda key: label(SETTING_LABELS, key),
    }


def channel_or_404(name: str, permission: str = "channels.view") -> ChannelInfo:
    """A channel a connector drives, within the acting member's scope; 404 otherwise.

    Outside one's scope a channel is not reachable at all, as orders of other channels are.
    """
    if not staff.can(acting().user_id, permission, channel=name):
        abort(404)
    try:
        info = channels.info(name)
    except NotFound:
        abort(404)
    if connector_class(info.kind) is None:
        abort(404)
    return info


def to_channel(name: str, anchor: str | None = None) -> ResponseReturnValue:
    return redirect(url_for(".channel_detail", name=name, _anchor=anchor), 303)


def refused(exc: KoudaiError) -> None:
    """A service's refusal as a flashed message; a permission refusal stays a 403."""
    if exc.http_status == 403:
        abort(403)
    flash(refusal_text(exc), "error")


def lag_text(oldest_dirty: datetime | None, now: datetime | None = None) -> str:
    """How long the oldest binding has waited for its push, or "up to date"."""
    if oldest_dirty is None:
        return _k("up to date")
    seconds = max(0, int(((now or utcnow()) - oldest_dirty).total_seconds()))
    if seconds < 60:
        return _k("%(n)d s", n=seconds)
    if seconds < 3600:
        return _k("%(n)d min", n=seconds // 60)
    if seconds < 86400:
        return _k("%(n)d h %(m)d min", n=seconds // 3600, m=seconds % 3600 // 60)
    return _k("%(n)d d %(h)d h", n=seconds // 86400, h=seconds % 86400 // 3600)


def sync_jobs(cls: type[Connector]) -> list[str]:
    """The jobs "Sync now" runs for a kind: what the periodic tick runs, plus a push."""
    jobs = []
    if EVENTS in cls.capabilities:
        jobs.append("poll_messages")
    if FETCH_ORDERS in cls.capabilities:
        jobs.append("import_orders")
    # Shipments before counts, as the tick does (jobs.sync.sync_tick).
    if FETCH_SHIPMENTS in cls.capabilities:
        jobs.append("pull_shipments")
    if FETCH_STOCK in cls.capabilities and PUSH_STOCK not in cls.capabilities:
        jobs.append("pull_stock")
    if PUSH_STOCK in cls.capabilities:
        jobs.append("push_stock")
    return jobs


def read_remote(info: ChannelInfo) -> tuple[list[RemoteStock], str | None]:
    """Everything the channel lists, read live; on failure no rows and the reason."""
    from koudai_flask.jobs.sync import build_connector

    connector = build_connector(info)
    if connector is None or not connector.can(FETCH_STOCK):
        return [], _k("This channel cannot list its SKUs: bind them by hand below.")
    try:
        return list(connector.fetch_stock(None)), None
    except KoudaiError as exc:
        return [], refusal_text(exc)
    finally:
        connector.close()
