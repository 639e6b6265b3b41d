"""The connector framework: what every channel backend implements and how kinds are found.

The vocabulary is the OCA connector framework's (STYLE.md "Connectors"):

- the *backend* is a :class:`~koudai_flask.models.Channel` row (a linked Taobao shop, an
  ERP); a connector object is built from its name, kind and settings;
- the *bindings* are :class:`~koudai_flask.models.ChannelListing` (our SKU ↔ their item and
  SKU, with the last quantity pushed and seen) and :class:`~koudai_flask.models.ChannelOrder`
  (our order ↔ their order, with the last sync time);
- the *adapter* speaks the wire protocol and nothing else (``connectors.taobao.api``,
  ``connectors.erp.tryton``, ...);
- the *mapper* turns their records into the plain records below, and ours into theirs;
- the *importers and exporters* are the services that apply those records
  (``services.stock_sync``, ``services.order_sync``): they skip stale imports, import before
  they export when the remote changed, and never export what a binding write changed.

A connector never touches the database: it takes and returns the plain records of this
module and raises the typed errors of :mod:`koudai_flask.connectors.errors`, which the job
layer maps to retry, back-off, re-authorisation or a dead letter. Third-party connectors
register a :class:`Connector` subclass under the entry-point group
``koudai_flask.connectors``, named by their kind.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar

from koudai_flask.errors import ValidationError

log = logging.getLogger("koudai_flask.sync")

ENTRY_POINT_GROUP = "koudai_flask.connectors"

# What a connector can do; the engine only asks for what a kind declares.
PUSH_STOCK = "push_stock"  # we publish quantities there (marketplaces)
FETCH_STOCK = "fetch_stock"  # they publish quantities we read (ERPs; reconcile of marketplaces)
FETCH_ORDERS = "fetch_orders"  # orders placed there become ours
PUSH_ORDER = "push_order"  # our paid orders go there (ERPs)
PUSH_SHIPMENT = "push_shipment"  # our shipments of their orders go there (marketplaces)
FETCH_SHIPMENTS = "fetch_shipments"  # their shipments of our orders come back (ERPs)
EVENTS = "events"  # a message queue to pull (Taobao TMC)
PUSH_MEMO = "push_memo"  # the seller's memo and flag on their orders go there (Taobao)

# What to do with a quantity seen on a channel that is not our own echo (DESIGN.md).
OVERWRITE = "overwrite"  # we are the truth: publish our figure again
ADOPT = "adopt"  # their count is the truth: set our on-hand to it


# -- the plain records connectors exchange with the engine -----------------------------------


@dataclass(frozen=True)
class ListingRef:
    """A binding as a connector sees it: their ids, and our SKU code."""

    sku_code: str
    external_item_id: str
    external_sku_id: str = ""


@dataclass(frozen=True)
class StockPush:
    """Publish ``quantity`` (absolute) for one binding."""

    listing: ListingRef
    quantity: int


@dataclass(frozen=True)
class RemoteStock:
    """A quantity read on a channel, for their item/SKU (our code when they know it)."""

    external_item_id: str
    external_sku_id: str
    quantity: int
    sku_code: str = ""


@dataclass(frozen=True)
class RemoteOrderLine:
    external_item_id: str
    external_sku_id: str
    quantity: int
    price: int  # fen, per unit
    sku_code: str = ""  # the channel's merchant code for the SKU (Taobao outer_sku_id)
    title: str = ""
    external_line_id: str = ""  # the channel's id of the line (Taobao oid)
    refund: str = "none"  # one of REMOTE_REFUNDS: the line's after-sales on the channel
    paid: int = 0  # fen the buyer paid for the line (what a refund of it gives back)


# Remote order states, in our vocabulary (services.order_sync maps them to transitions).
# "cancelled" closed before payment; "refunded" closed after it, the money given back there.
REMOTE_STATES = ("pending_payment", "paid", "shipped", "completed", "cancelled", "refunded")
# A line's after-sales on the channel: none (or a request withdrawn or refused), asked (the
# buyer asked for a refund and waits on the seller or a return), refunded (money given back).
REMOTE_REFUNDS = ("none", "asked", "refunded")


@dataclass(frozen=True)
class RemoteOrder:
    """An order placed on a channel, mapped to our vocabulary."""

    external_id: str
    status: str  # one of REMOTE_STATES
    remote_status: str  # the channel's own word for it, kept on the binding
    modified: datetime
    lines: tuple[RemoteOrderLine, ...]
    total: int  # fen
    shipping_fee: int = 0
    buyer: str = ""
    address: Mapping[str, Any] = field(default_factory=dict)
    # The seller's memo and flag (0-5) as the channel keeps them; None where it keeps none.
    memo: str | None = None
    flag: int | None = None
    buyer_message: str = ""  # what the buyer wrote with the order (买家留言)

    @property
    def refund_asked(self) -> bool:
        """A line waits on a refund request made on the channel."""
        return any(line.refund == "asked" for line in self.lines)


@dataclass(frozen=True)
class OrderExport:
    """One of our orders, as an ERP needs it."""

    number: str
    channel: str
    placed_at: datetime
    total: int
    shipping_fee: int
    lines: tuple[Mapping[str, Any], ...]  # {"sku", "name", "quantity", "unit_price"}
    address: Mapping[str, Any] = field(default_factory=dict)
    buyer: str = ""


@dataclass(frozen=True)
class RemoteShipment:
    """A shipment made in an ERP for one of our orders (carrier: a Kuaidi100 code)."""

    order_number: str
    carrier: str
    tracking_number: str
    shipped_at: datetime | None = None


@dataclass(frozen=True)
class ChannelMessage:
    """One message pulled from a channel's queue (e.g. a TMC message), already decoded."""

    message_id: str
    topic: str
    content: Mapping[str, Any]


# -- the connector ---------------------------------------------------------------------------


class Connector:
    """A backend's connector: built from the channel's name and settings, stateless otherwise.

    Subclasses set ``kind`` and ``capabilities`` and implement the methods of those
    capabilities; the base methods raise ``NotImplementedError`` so a missing one is loud.
    ``settings_schema`` names the settings a channel of this kind must have.
    """

    kind: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    stock_policy: ClassVar[str] = OVERWRITE
    required_settings: ClassVar[tuple[str, ...]] = ()
    # Settings never shown in the admin nor written to logs.
    secret_settings: ClassVar[tuple[str, ...]] = ()
    # How many bindings one push_stock call may carry before the engine splits the batch.
    push_batch: ClassVar[int] = 200

    def __init__(self, name: str, settings: Mapping[str, Any], *, secret_key: str = "") -> None:
        self.name = name
        self.settings = dict(settings)
        self.secret_key = secret_key

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """Refuse settings a channel of this kind cannot work with (``ValidationError``)."""
        missing = [name for name in cls.required_settings if not settings.get(name)]
        if missing:
            raise ValidationError(
                f"a {cls.kind} channel needs the settings {', '.join(missing)}",
                {name: ["required"] for name in missing},
            )

    @classmethod
    def prepare_settings(cls, settings: Mapping[str, Any], secret_key: str) -> dict[str, Any]:
        """The settings as stored: a connector seals what must not be kept in clear."""
        return dict(settings)

    # Each capability's calls; a connector implements those it declares.

    def push_stock(self, pushes: Sequence[StockPush]) -> list[StockPush]:
        """Publish absolute quantities; returns the pushes the channel accepted."""
        raise NotImplementedError

    def fetch_stock(self, listings: Sequence[ListingRef] | None = None) -> Iterator[RemoteStock]:
        """Read quantities: of the given bindings, or of everything the channel lists."""
        raise NotImplementedError

    def fetch_orders(self, since: datetime, until: datetime) -> Iterator[RemoteOrder]:
        """Orders modified in ``[since, until]``; the engine keeps the cursor."""
        raise NotImplementedError

    def fetch_order(self, external_id: str) -> RemoteOrder:
        """One order's current state (after a message said it changed)."""
        raise NotImplementedError

    def push_order(self, order: OrderExport) -> str:
        """Create (or find) our order on the channel; returns their id for it."""
        raise NotImplementedError

    def push_shipment(self, external_id: str, carrier: str, tracking_number: str) -> None:
        """Tell the channel its order left with ``carrier`` (a Kuaidi100 code)."""
        raise NotImplementedError

    def push_memo(self, external_id: str, memo: str, flag: int) -> None:
        """Set the seller's memo and flag (0-5) of the channel's order; an empty memo clears
        it there."""
        raise NotImplementedError

    def fetch_shipments(self, since: datetime) -> Iterator[RemoteShipment]:
        """Shipments of our orders made on the channel since ``since``."""
        raise NotImplementedError

    def fetch_messages(self) -> list[ChannelMessage]:
        """Pull pending messages; each comes back until :meth:`confirm_messages` is called."""
        raise NotImplementedError

    def confirm_messages(self, message_ids: Iterable[str]) -> None:
        raise NotImplementedError

    def renew_auth(self) -> dict[str, Any] | None:
        """Renew expired credentials; returns settings to store, or None if it cannot."""
        return None

    def close(self) -> None:
        """Release network resources (sessions); called when a job is done with it."""


# -- the registry ----------------------------------------------------------------------------

BUILTIN_CONNECTORS: dict[str, str] = {
    "taobao": "koudai_flask.connectors.taobao.connector:TaobaoConnector",
    "tryton": "koudai_flask.connectors.erp.tryton_connector:TrytonConnector",
    "jushuitan": "koudai_flask.connectors.erp.jushuitan_connector:JushuitanConnector",
    "webhook_erp": "koudai_flask.connectors.erp.webhook:WebhookErpConnector",
}


def _load(path: str) -> type[Connector]:
    module, _, name = path.partition(":")
    loaded = getattr(importlib.import_module(module), name)
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise TypeError(f"{path} is not a koudai_flask.connectors.base.Connector subclass")
    return loaded


@cache
def _registered() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN_CONNECTORS}


def connector_kinds() -> set[str]:
    """Every kind with a connector: built in, or registered by an installed package."""
    return set(_registered())


def connector_class(kind: str) -> type[Connector] | None:
    """The connector class of ``kind``, or None for kinds without one (``web``, ``wechat``)."""
    path = _registered().get(kind)
    return None if path is None else _load(path)


@cache
def kinds_with(capability: str) -> frozenset[str]:
    """The kinds whose connector declares ``capability``."""
    found = set()
    for kind in _registered():
        try:
            cls = connector_class(kind)
        except (ImportError, AttributeError, TypeError) as exc:
            # A broken third-party connector must not stop every stock change: say so once.
            log.error("connector kind %r cannot be loaded: %s", kind, exc)
            continue
        if cls is not None and capability in cls.capabilities:
            found.add(kind)
    return frozenset(found)


def refresh_registry() -> None:
    """Forget the cached entry points (after installing a connector package at runtime)."""
    _registered.cache_clear()
    kinds_with.cache_clear()


__all__ = [
    "ADOPT",
    "BUILTIN_CONNECTORS",
    "ENTRY_POINT_GROUP",
    "EVENTS",
    "FETCH_ORDERS",
    "FETCH_SHIPMENTS",
    "FETCH_STOCK",
    "OVERWRITE",
    "PUSH_ORDER",
    "PUSH_MEMO",
    "PUSH_SHIPMENT",
    "PUSH_STOCK",
    "REMOTE_REFUNDS",
    "REMOTE_STATES",
    "ChannelMessage",
    "Connector",
    "ListingRef",
    "OrderExport",
    "RemoteOrder",
    "RemoteOrderLine",
    "RemoteShipment",
    "RemoteStock",
    "StockPush",
    "connector_class",
    "connector_kinds",
    "kinds_with",
    "refresh_registry",
]
