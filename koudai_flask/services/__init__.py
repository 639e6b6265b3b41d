"""Domain logic: plain functions over the models, each public one a single transaction."""

from __future__ import annotations

from koudai_flask.services import catalog, channels, inventory, orders, outbox, staff

__all__ = ["catalog", "channels", "inventory", "orders", "outbox", "staff"]
