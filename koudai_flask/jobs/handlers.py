"""The library's own outbox subscribers: which job functions react to which events.

Each entry is ``topic: [dotted path of handler(topic, payload)]``; they are imported when
an app is initialised, so a module listed here may import services freely.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

BUILTIN_HANDLERS: dict[str, list[str]] = {
    "order.cancelled": ["koudai_flask.services.payments:close_on_cancel"],
    # Money that came for an order already cancelled goes back to the buyer.
    "payment.refund_due": ["koudai_flask.services.payments:refund_late_payment"],
    # Tell the buyer (WeChat, SMS, e-mail: services.notifications).
    "order.paid": [
        "koudai_flask.services.notifications:on_order_event",
        # Every linked ERP that takes orders gets the paid order (jobs.sync).
        "koudai_flask.jobs.sync:on_order_paid",
        # The funnel's order_paid step, with the campaign the order came from.
        "koudai_flask.services.funnel:on_order_paid",
    ],
    "order.shipped": [
        "koudai_flask.services.notifications:on_order_event",
        # Subscribe the new waybills to Kuaidi100 pushes (services.logistics).
        "koudai_flask.services.logistics:subscribe_on_ship",
        # A marketplace's order is marked shipped there too (jobs.sync).
        "koudai_flask.jobs.sync:on_order_shipped",
    ],
    # The seller's memo changed here on a marketplace's order: it goes there too (jobs.sync).
    "order.memo_changed": ["koudai_flask.jobs.sync:on_order_memo_changed"],
    # A stock change marked listings of linked channels: push them (jobs.sync).
    "channel.push_due": ["koudai_flask.jobs.sync:on_push_due"],
    # A parcel of a partly shipped order is tracked from the moment it leaves.
    "order.partially_shipped": ["koudai_flask.services.logistics:subscribe_on_ship"],
    "order.delivered": ["koudai_flask.services.notifications:on_order_event"],
    "order.refunded": ["koudai_flask.services.notifications:on_order_event"],
    "order.partially_refunded": ["koudai_flask.services.notifications:on_order_event"],
    "order.refund_declined": ["koudai_flask.services.notifications:on_order_event"],
    # The shop sent the order elsewhere: the buyer is told the new address.
    "order.address_changed": ["koudai_flask.services.notifications:on_order_event"],
    # The seller agreed to a return: the buyer is told where to send the goods.
    "order.return_agreed": ["koudai_flask.services.notifications:on_order_event"],
    # A buyer's refund request: staff who may answer it are told by e-mail.
    "order.refunding": ["koudai_flask.services.staff_alerts:on_refund_requested"],
    # ... and when the buyer posts the goods of a return.
    # The return parcel is tracked like ours (services.logistics).
    "order.return_sent": [
        "koudai_flask.services.staff_alerts:on_return",
        "koudai_flask.services.logistics:subscribe_on_ship",
    ],
    # ... and staff are told when it was signed for.
    "order.return_arrived": ["koudai_flask.services.staff_alerts:on_return"],
    # A buyer's review of one or two stars: staff who answer reviews are told (差评).
    "review.created": ["koudai_flask.services.staff_alerts:on_low_review"],
}
# CRM: a customer's rule tags are recomputed when their orders or identities change, and
# for everyone when a rule is saved (services.rule_tags).
for _topic in (
    "order.paid",
    "order.refunding",
    "order.refunded",
    "order.partially_refunded",
    "customer.created",
    "customer.identity_linked",
    "customer.merged",
    "customer.split",
):
    BUILTIN_HANDLERS.setdefault(_topic, []).append(
        "koudai_flask.services.rule_tags:on_customer_event"
    )
BUILTIN_HANDLERS["customer.tag_rule_changed"] = ["koudai_flask.services.rule_tags:on_rule_changed"]


# Outbound webhooks (jobs.webhooks) subscribe to every topic that has a public event name
# (services.webhooks.TOPIC_EVENTS), but only with KOUDAI_WEBHOOKS: a topic nobody subscribes
# to is written done at once, and placing an order or changing stock stays that cheap.
WEBHOOK_HANDLER = "koudai_flask.jobs.webhooks:on_event"


def handler_paths(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The built-in subscribers of one app: ``BUILTIN_HANDLERS`` and those its config adds."""
    paths = {topic: list(handlers) for topic, handlers in BUILTIN_HANDLERS.items()}
    if config.get("KOUDAI_WEBHOOKS"):
        from koudai_flask.services.webhooks import TOPIC_EVENTS

        for topic in TOPIC_EVENTS:
            paths.setdefault(topic, []).append(WEBHOOK_HANDLER)
    return paths


# Topics whose handlers only put channel jobs on their queues (a Redis round trip, no remote
# call): on RQ they run right after the commit instead of as a job of their own, which saves
# the stock push a whole queue hop. If Redis fails there, the event stays for the relay.
DISPATCH_TIME_TOPICS = frozenset({"channel.push_due"})


def resolve(path: str) -> Callable[[str, dict[str, Any]], None]:
    module, _, name = path.partition(":")
    handler: Callable[[str, dict[str, Any]], None] = getattr(importlib.import_module(module), name)
    return handler
