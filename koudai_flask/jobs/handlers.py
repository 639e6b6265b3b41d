"""The library's own outbox subscribers: which job functions react to which events.

Each entry is ``topic: [dotted path of handler(topic, payload)]``; they are imported when
an app is initialised, so a module listed here may import services freely.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

BUILTIN_HANDLERS: dict[str, list[str]] = {
    "order.cancelled": ["koudai_flask.services.payments:close_on_cancel"],
    # Tell the buyer (WeChat, SMS, e-mail: services.notifications).
    "order.paid": [
        "koudai_flask.services.notifications:on_order_event",
        # Every linked ERP that takes orders gets the paid order (jobs.sync).
        "koudai_flask.jobs.sync:on_order_paid",
    ],
    "order.shipped": [
        "koudai_flask.services.notifications:on_order_event",
        # Subscribe the new waybills to Kuaidi100 pushes (services.logistics).
        "koudai_flask.services.logistics:subscribe_on_ship",
        # A marketplace's order is marked shipped there too (jobs.sync).
        "koudai_flask.jobs.sync:on_order_shipped",
    ],
    # A stock change marked listings of linked channels: push them (jobs.sync).
    "channel.push_due": ["koudai_flask.jobs.sync:on_push_due"],
    # A parcel of a partly shipped order is tracked from the moment it leaves.
    "order.partially_shipped": ["koudai_flask.services.logistics:subscribe_on_ship"],
    "order.delivered": ["koudai_flask.services.notifications:on_order_event"],
    "order.refunded": ["koudai_flask.services.notifications:on_order_event"],
}


# Topics whose handlers only put channel jobs on their queues (a Redis round trip, no remote
# call): on RQ they run right after the commit instead of as a job of their own, which saves
# the stock push a whole queue hop. If Redis fails there, the event stays for the relay.
DISPATCH_TIME_TOPICS = frozenset({"channel.push_due"})


def resolve(path: str) -> Callable[[str, dict[str, Any]], None]:
    module, _, name = path.partition(":")
    handler: Callable[[str, dict[str, Any]], None] = getattr(importlib.import_module(module), name)
    return handler
