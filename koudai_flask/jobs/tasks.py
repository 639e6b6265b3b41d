"""Job functions run by the worker's schedules. Each takes plain values and is safe twice."""

from __future__ import annotations

from koudai_flask.jobs.outbox import relay_outbox
from koudai_flask.services import inventory, order_clock


def expire_reservations() -> int:
    """Cancel unpaid orders past their hold and release other expired holds."""
    return len(order_clock.expire_unpaid()) + inventory.expire_holds()


def complete_overdue() -> int:
    """Complete the own shop's orders whose buyers never confirmed receipt."""
    return len(order_clock.complete_overdue())


def run_relay() -> int:
    return relay_outbox()


def sync_tick() -> int:
    """Pull what the linked channels changed and sweep what still waits to be pushed."""
    from koudai_flask.jobs.sync import sync_tick as tick

    return tick()


def reconcile_all() -> int:
    """Schedule a full reconcile of every linked channel."""
    from koudai_flask.jobs.sync import reconcile_all as reconcile

    return reconcile()


def recompute_rule_tags() -> int:
    """Recompute every rule tag for every customer (nightly: days since move with time)."""
    from koudai_flask.services.rule_tags import recompute_all

    return recompute_all()


def prune_outbox() -> int:
    """Delete outbox events handled longer ago than ``KOUDAI_OUTBOX_KEEP``."""
    from datetime import timedelta

    from koudai_flask.config import config_value
    from koudai_flask.services.outbox import prune

    keep = config_value("OUTBOX_KEEP")
    return 0 if keep is None else prune(timedelta(seconds=keep))


def prune_idempotency_records() -> int:
    """Forget the API's idempotency replies older than a day."""
    from koudai_flask.services.idempotency import prune

    return prune()
