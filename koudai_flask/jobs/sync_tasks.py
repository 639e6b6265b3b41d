"""The bodies of the channel jobs: each takes a built connector and the channel as plain data.

They call the connector (the network) and the sync services (the database) in turn, never
both at once, and each is safe to run twice: every apply is idempotent. The retry, back-off,
re-authorisation and dead-letter rules around them live in :mod:`koudai_flask.jobs.sync`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from koudai_flask.config import config_value
from koudai_flask.connectors.base import (
    ADOPT,
    EVENTS,
    FETCH_STOCK,
    ChannelMessage,
    Connector,
    RemoteOrder,
    RemoteStock,
    StockPush,
)
from koudai_flask.errors import InvalidTransition, NotFound
from koudai_flask.jobs.catalog_import import import_catalog
from koudai_flask.models.base import utcnow
from koudai_flask.services import channels, order_memo, order_sync, stock_sync, sync_log
from koudai_flask.services.channels import ChannelInfo

log = logging.getLogger("koudai_flask.sync")

MAX_PUSH_ROUNDS = 50  # a channel whose listings keep changing still lets the job end
ORDER_WINDOW = timedelta(days=1)  # TOP's increment window is at most one day (§1.6)
FIRST_IMPORT = timedelta(days=1)  # how far back the first order import of a channel looks

# Message topics in the order they are applied within one pulled batch: trades first, so
# that a stock change caused by a sale finds the sale already imported.
TRADE_TOPIC, STOCK_TOPIC = "trade", "stock"


def push_stock(connector: Connector, channel: ChannelInfo, *, poll_first: bool = True) -> int:
    """Publish every dirty listing's quantity, in batches; returns how many were pushed."""
    if poll_first and connector.can(EVENTS):
        poll_messages(connector, channel, push_after=False)  # import before export
    pushed = 0
    for _ in range(MAX_PUSH_ROUNDS):
        pending = stock_sync.pending_pushes(channel.id, limit=connector.push_batch)
        if not pending:
            break
        accepted = set(connector.push_stock([StockPush(p.listing, p.quantity) for p in pending]))
        done = [p for p in pending if StockPush(p.listing, p.quantity) in accepted]
        stock_sync.record_pushed(done)
        pushed += len(done)
        if len(done) < len(pending):
            break  # the channel refused some; they stay dirty for the next run
        if len(pending) < connector.push_batch:
            break  # all there was; a change since then has scheduled the next run
    return pushed


def reconcile(connector: Connector, channel: ChannelInfo, repair: bool = True) -> int:
    """Read every quantity the channel shows, compare with the rules, repair; returns drift."""
    if stock_sync.policy_of(channel.kind, channel.settings) == ADOPT:
        return pull_stock(connector, channel)
    published = list(connector.fetch_stock(None))
    rows = stock_sync.compare(channel.name, published, record=True, repair=repair)
    drifted = sum(1 for row in rows if row.drifted)
    if repair and drifted:
        push_stock(connector, channel)
    return drifted


def pull_stock(connector: Connector, channel: ChannelInfo) -> int:
    """An ERP's counts become our on-hand (the ADOPT policy); returns SKUs changed."""
    if not connector.can(FETCH_STOCK):
        return 0
    bound = [state.listing for state in stock_sync.listing_states(channel.id)]
    rows = list(connector.fetch_stock(bound or None))
    report = stock_sync.apply_remote_stock(
        channel.name, rows, reference=f"pull:{utcnow():%Y%m%d%H%M%S%f}"
    )
    return report.applied


def import_orders(connector: Connector, channel: ChannelInfo) -> int:
    """Orders modified on the channel since the cursor (stepped back a buffer); returns new."""
    now = utcnow()
    position = channels.cursor_position(channel.id, "orders")
    buffer = timedelta(seconds=config_value("SYNC_CURSOR_BUFFER"))
    since = (position - buffer) if position is not None else now - FIRST_IMPORT
    created = 0
    while since < now:
        until = min(now, since + ORDER_WINDOW)
        for remote in connector.fetch_orders(since, until):
            created += _import_remote(channel, remote)
        channels.advance_cursor(channel.id, "orders", until)
        since = until
    return created


def import_order(connector: Connector, channel: ChannelInfo, external_id: str) -> int:
    """One order by its id on the channel, in its current state."""
    return _import_remote(channel, connector.fetch_order(external_id))


def _import_remote(channel: ChannelInfo, remote: RemoteOrder) -> int:
    try:
        result = order_sync.import_order(channel.name, remote)
    except order_sync.UnmappedLine as exc:
        # One unmapped trade must not hold back the others: it waits for a person.
        sync_log.record(
            channel.id,
            "import_order",
            [remote.external_id],
            error_kind="UnmappedLine",
            message=exc.message,
            attempts=1,
        )
        return 0
    return 1 if result.outcome == "created" else 0


def poll_messages(connector: Connector, channel: ChannelInfo, *, push_after: bool = True) -> int:
    """Apply pulled messages (trades first, then stock), confirm them; returns how many."""
    messages = connector.fetch_messages()
    if not messages:
        return 0
    trades: dict[str, ChannelMessage] = {}
    stock: list[ChannelMessage] = []
    for message in messages:
        if message.topic == TRADE_TOPIC:
            trades.setdefault(str(message.content["external_id"]), message)
        elif message.topic == STOCK_TOPIC:
            stock.append(message)
    for external_id in trades:
        # The message says only that the trade changed; its current state is fetched, so
        # duplicates and messages out of order all end in the same state.
        import_order(connector, channel, external_id)
    marked = 0
    if stock:
        rows = [
            RemoteStock(
                str(m.content["external_item_id"]),
                str(m.content.get("external_sku_id") or ""),
                int(m.content["quantity"]),
            )
            for m in stock
            if m.content.get("quantity") is not None
        ]
        reference = f"messages:{stock[0].message_id}-{stock[-1].message_id}"
        marked = stock_sync.apply_remote_stock(channel.name, rows, reference=reference).applied
    connector.confirm_messages([m.message_id for m in messages])
    if marked and push_after:
        push_stock(connector, channel, poll_first=False)
    return len(messages)


def push_order(connector: Connector, channel: ChannelInfo, number: str) -> int:
    """Our paid order to an ERP, once."""
    if order_sync.is_exported(channel.name, number):
        return 0
    external_id = connector.push_order(order_sync.order_export(number))
    order_sync.record_export(channel.name, number, external_id)
    return 1


def push_shipment(connector: Connector, channel: ChannelInfo, number: str) -> int:
    """Our shipment of a channel's order back to that channel, once."""
    shipment = order_sync.shipment_to_push(channel.name, number)
    if shipment is None:
        return 0
    connector.push_shipment(shipment.external_id, shipment.carrier, shipment.tracking_number)
    order_sync.record_shipment_pushed(channel.name, shipment.external_id)
    return 1


def push_memo(connector: Connector, channel: ChannelInfo, number: str) -> int:
    """The seller's memo and flag of a channel's order, changed here, to that channel.

    What goes is the memo as it is now; if it changed again meanwhile, its push stays due
    (``record_pushed`` is False) and that change's own job sends it."""
    push = order_memo.to_push(channel.name, number)
    if push is None:
        return 0
    connector.push_memo(push.external_id, push.memo, push.flag)
    order_memo.record_pushed(number, push.version)
    return 1


def pull_shipments(connector: Connector, channel: ChannelInfo) -> int:
    """Shipments made in an ERP since the cursor ship our orders; returns how many."""
    now = utcnow()
    position = channels.cursor_position(channel.id, "shipments")
    buffer = timedelta(seconds=config_value("SYNC_CURSOR_BUFFER"))
    since: datetime = (position - buffer) if position is not None else now - FIRST_IMPORT
    shipped = 0
    for shipment in connector.fetch_shipments(since):
        try:
            shipped += int(order_sync.apply_remote_shipment(channel.name, shipment))
        except (NotFound, InvalidTransition) as exc:
            log.info("channel %s: shipment of %s skipped: %s", channel.name, shipment, exc)
    channels.advance_cursor(channel.id, "shipments", now)
    return shipped


JOBS: dict[str, Callable[..., int]] = {
    "push_stock": push_stock,
    "reconcile": reconcile,
    "pull_stock": pull_stock,
    "import_orders": import_orders,
    "import_order": import_order,
    "poll_messages": poll_messages,
    "push_order": push_order,
    "push_shipment": push_shipment,
    "push_memo": push_memo,
    "pull_shipments": pull_shipments,
    "import_catalog": import_catalog,
}
