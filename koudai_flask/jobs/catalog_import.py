"""The catalog import job: read a linked Taobao shop's items on sale and apply them one by one.

It lists the items (``items.onsale.get``, 200 a page), skips those whose binding is newer
than their ``modified`` time (the OCA rule, checked on the listing so an unchanged item
costs no call), fetches each other one (``item.seller.get``: SKUs, description, pictures),
downloads the pictures of an item not bound yet (with a timeout and a size cap), maps it to
plain records and hands it to :mod:`koudai_flask.services.catalog_import`. No transaction
is open during a network call.

Progress lives in the channel's settings under ``catalog_import`` (so it needs no Redis and
an admin page can read it): ``{"state": "idle|running|done|failed", "done", "total",
"created", "updated", "bound", "unchanged", "message"}``, written every
:data:`PROGRESS_EVERY` items and at the end. ``start_import`` runs the job on the channel's
queue through the sync engine (its lock, retry and dead-letter rules), in batches on RQ;
``run_import`` runs it here and now. Connector errors propagate as their typed errors.

The mapping of one item and the download of its pictures are
:mod:`koudai_flask.jobs.catalog_items`; their names are importable from here as well.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from koudai_flask.config import config_value
from koudai_flask.connectors.base import Connector
from koudai_flask.connectors.errors import PermanentFailure, TemporaryFailure
from koudai_flask.connectors.taobao.api import TaobaoAdapter
from koudai_flask.connectors.taobao.connector import TaobaoConnector
from koudai_flask.connectors.taobao.records import Item
from koudai_flask.errors import ValidationError
from koudai_flask.jobs.catalog_items import (
    MAX_TITLE,
    PICTURE_DEADLINE,
    PICTURE_TIMEOUT,
    PictureFetcher,
    map_item,
    picture_urls,
    plain_text,
)
from koudai_flask.services import catalog_import, channels
from koudai_flask.services.catalog_import import (
    BOUND,
    CREATED,
    OUTCOMES,
    UNCHANGED,
    UPDATED,
)
from koudai_flask.services.channels import ChannelInfo

log = logging.getLogger("koudai_flask.sync")

JOB = "import_catalog"  # its name in jobs.sync_tasks.JOBS
PROGRESS_KEY = "catalog_import"
PROGRESS_EVERY = 10
BATCH = 100  # items per job run on RQ: well inside RQ's 180 s job timeout
IDLE, RUNNING, DONE, FAILED = "idle", "running", "done", "failed"
LIST_FIELDS = "num_iid,title,modified"


@dataclass
class ImportReport:
    """Counts of one run; ``done`` items of ``total`` were looked at."""

    total: int = 0
    done: int = 0
    created: int = 0
    updated: int = 0
    bound: int = 0
    unchanged: int = 0

    def count(self, outcome: str) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown import outcome {outcome!r}")
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.done += 1

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.bound

    def summary(self) -> str:
        return (
            f"{self.done} of {self.total} item(s): {self.created} created, "
            f"{self.updated} updated, {self.bound} bound, {self.unchanged} unchanged"
        )

    def as_progress(self, state: str, message: str = "") -> dict[str, Any]:
        return {
            "state": state,
            "done": self.done,
            "total": self.total,
            CREATED: self.created,
            UPDATED: self.updated,
            BOUND: self.bound,
            UNCHANGED: self.unchanged,
            "message": message,
        }


ProgressCallback = Callable[[ImportReport], None]


# -- progress --------------------------------------------------------------------------------


def progress(channel_id: int) -> dict[str, Any]:
    """The last import of the channel as the admin shows it (``idle`` before the first)."""
    stored = channels.info(channel_id).settings.get(PROGRESS_KEY)
    shown = ImportReport().as_progress(IDLE)
    if isinstance(stored, dict):
        shown.update({key: stored[key] for key in shown if key in stored})
    return shown


def _save(channel: ChannelInfo, report: ImportReport, state: str, message: str = "") -> None:
    channels.update_settings(channel.name, {PROGRESS_KEY: report.as_progress(state, message)})


# -- running ---------------------------------------------------------------------------------


def _adapter(connector: Connector) -> TaobaoAdapter:
    if not isinstance(connector, TaobaoConnector):
        raise ValidationError(
            f"channel {connector.name} is not a Taobao shop: only Taobao catalogs can be imported",
            reason="import_taobao_only",
            detail={"channel": connector.name},
        )
    return connector.adapter


def _check_channel(channel: ChannelInfo) -> None:
    if channel.kind != TaobaoConnector.kind:
        raise ValidationError(
            f"channel {channel.name} is a {channel.kind} channel: "
            "only Taobao catalogs can be imported",
            reason="import_taobao_only",
            detail={"channel": channel.name},
        )
    if not channel.active:
        raise ValidationError(
            f"channel {channel.name} is paused: activate it before importing",
            reason="channel_paused",
            detail={"channel": channel.name},
        )


def import_catalog(connector: Connector, channel: ChannelInfo, after: int = 0) -> int:
    """The channel job (``jobs.sync_tasks.JOBS``): returns how many items it changed.

    On RQ one run takes at most ``import_batch`` items (a channel setting, default
    :data:`BATCH`) in ``num_iid`` order and queues the rest as the same job from the last
    one, so no run outlives RQ's job timeout or the channel's lock; inline it does all.
    """
    limit = None if config_value("JOBS") == "inline" else _batch(channel)
    report, cursor = _run(connector, channel, None, after=int(after), limit=limit)
    if cursor is not None:
        from koudai_flask.jobs.sync import schedule

        schedule(channel.id, JOB, cursor)
    return report.changed


def _batch(channel: ChannelInfo) -> int:
    value = channel.settings.get("import_batch", BATCH)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"channel {channel.name}: import_batch must be an integer >= 1")
    return value


def _run(
    connector: Connector,
    channel: ChannelInfo,
    on_progress: ProgressCallback | None,
    *,
    after: int = 0,
    limit: int | None = None,
) -> tuple[ImportReport, int | None]:
    """Import the items after ``after`` (at most ``limit``); returns the report and where
    a next run goes on (None when every item was looked at)."""
    report = _resumed(channel.id) if after else ImportReport()
    _save(channel, report, RUNNING, "listing the items on sale")
    pictures = PictureFetcher(timeout=float(channel.settings.get("timeout") or PICTURE_TIMEOUT))
    try:
        adapter = _adapter(connector)
        listed = {item.num_iid: item for item in adapter.all_onsale(LIST_FIELDS)}
        report.total = len(listed)
        report.done = sum(1 for num_iid in listed if num_iid <= after)
        todo = sorted(num_iid for num_iid in listed if num_iid > after)
        cursor = todo[limit - 1] if limit is not None and len(todo) > limit else None
        todo = todo[:limit]
        _save(channel, report, RUNNING)
        synced = catalog_import.synced_items(channel.name, todo)
        for num_iid in todo:
            outcome = _import_one(adapter, channel, num_iid, listed[num_iid], synced, pictures)
            report.count(outcome)
            if on_progress is not None:
                on_progress(report)
            if report.done % PROGRESS_EVERY == 0 and report.done < report.total:
                _save(channel, report, RUNNING)
    except Exception as exc:
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        _save(channel, report, FAILED, f"{type(exc).__name__}: {text}"[:500])
        raise
    finally:
        pictures.close()
    if cursor is not None:
        _save(channel, report, RUNNING, f"continuing after item {cursor}")
        return report, cursor
    _save(channel, report, DONE, report.summary())
    log.info("channel %s: catalog import: %s", channel.name, report.summary())
    return report, None


def _resumed(channel_id: int) -> ImportReport:
    """The counts of the runs before this one of the same import."""
    shown = progress(channel_id)
    report = ImportReport()
    for outcome in OUTCOMES:
        setattr(report, outcome, int(shown[outcome]))
    return report


def _import_one(
    adapter: TaobaoAdapter,
    channel: ChannelInfo,
    num_iid: int,
    summary: Item,
    synced: dict[int, Any],
    pictures: PictureFetcher,
) -> str:
    bound = num_iid in synced
    if bound and not catalog_import.is_due(summary.modified, synced[num_iid]):
        return UNCHANGED  # not modified since it was last synced: no call at all
    item = adapter.item(num_iid)
    # A bound item keeps the pictures it has: they are fetched for a new product only.
    images = [] if bound else pictures.fetch_all(picture_urls(item))
    try:
        record = map_item(item, images)
    except ValueError as exc:  # a price TOP should never send ("12.3.4"): this item is stuck
        raise PermanentFailure(f"taobao item {num_iid}: {exc}") from exc
    return catalog_import.import_item(channel.name, record).outcome


def run_import(channel_id: int, *, on_progress: ProgressCallback | None = None) -> ImportReport:
    """Import the channel's catalog here and now, under the channel's sync lock."""
    from koudai_flask.jobs.sync import ChannelBusy, build_connector, channel_lock

    channel = channels.info(channel_id)
    _check_channel(channel)
    connector = build_connector(channel)
    assert connector is not None  # a taobao channel always has one
    try:
        with channel_lock(channel.id):
            return _run(connector, channel, on_progress)[0]
    except ChannelBusy:
        raise TemporaryFailure(
            f"channel {channel.name} is busy with another sync job; try again in a moment"
        ) from None
    finally:
        connector.close()


def start_import(channel_id: int) -> str:
    """Start an import as a channel job; returns the progress state right after.

    On RQ it is queued on the channel's queue (``running`` until a worker ends it; a second
    start while one waits is the same job); inline it runs now and ends ``done`` or
    ``failed``, the error kept in the progress message and as a dead letter.
    """
    from koudai_flask.jobs.sync import schedule

    channel = channels.info(channel_id)
    _check_channel(channel)
    queued = config_value("JOBS") != "inline"
    if queued and progress(channel_id)["state"] != RUNNING:
        _save(channel, ImportReport(), RUNNING, "waiting for a worker")
    try:
        schedule(channel.id, JOB)
    except Exception as exc:
        _save(channel, ImportReport(), FAILED, f"could not queue the import: {exc}"[:500])
        raise
    return str(progress(channel_id)["state"])


__all__ = [
    "JOB",
    "MAX_TITLE",
    "PICTURE_DEADLINE",
    "PICTURE_TIMEOUT",
    "PROGRESS_KEY",
    "ImportReport",
    "PictureFetcher",
    "import_catalog",
    "map_item",
    "picture_urls",
    "plain_text",
    "progress",
    "run_import",
    "start_import",
]
