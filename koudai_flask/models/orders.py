"""Orders from every channel, their lines, events, payments, refunds and shipments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from koudai_flask.models.base import Base, Timestamped, utcnow

if TYPE_CHECKING:
    from koudai_flask.models.backoffice import OrderMemo, TrackingEvent
    from koudai_flask.models.customers import Customer

# Which way a parcel goes (``Shipment.direction``): sent by the shop, or sent back by the
# buyer for a return (退货), tracked the same way.
OUTBOUND, RETURN = "out", "return"


class Order(Base, Timestamped):
    __tablename__ = "koudai_order"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_koudai_order_status_created", "status", "created_at"),
        CheckConstraint("total >= 0", name="total_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    # One of koudai_flask.services.orders.STATES.
    status: Mapped[str] = mapped_column(String(20), default="pending_payment")
    # The channel's name ("web" is the own shop). No index of its own: the unique
    # (channel, external_id) constraint's index starts with it.
    channel: Mapped[str] = mapped_column(ForeignKey("koudai_channel.name"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    # A digest of what was asked, so a reused key with a different order is refused.
    request_digest: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    address: Mapped[dict[str, Any] | None]
    note: Mapped[str] = mapped_column(Text, default="")
    subtotal: Mapped[int] = mapped_column(default=0)
    shipping_fee: Mapped[int] = mapped_column(default=0)
    discount: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    paid_at: Mapped[datetime | None]
    # The provider the buyer chose to pay with (closed there if the order is cancelled).
    payment_provider: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.id", cascade="all, delete-orphan"
    )
    payments: Mapped[list[Payment]] = relationship(back_populates="order", order_by="Payment.id")
    refunds: Mapped[list[Refund]] = relationship(back_populates="order", order_by="Refund.id")
    # The parcels we sent; the ones a buyer sent back for a return are ``return_parcels``.
    shipments: Mapped[list[Shipment]] = relationship(
        back_populates="order",
        primaryjoin=f"and_(Order.id == Shipment.order_id, Shipment.direction == '{OUTBOUND}')",
        order_by="Shipment.id",
    )
    return_parcels: Mapped[list[Shipment]] = relationship(
        primaryjoin=f"and_(Order.id == Shipment.order_id, Shipment.direction == '{RETURN}')",
        order_by="Shipment.id",
        viewonly=True,
    )
    customer: Mapped[Customer | None] = relationship()
    # The seller's memo and flag (卖家备注, 旗帜), if it has one (services.order_memo).
    seller_memo: Mapped[OrderMemo | None] = relationship(viewonly=True)

    @property
    def paid_amount(self) -> int:
        return sum(p.amount for p in self.payments)

    @property
    def refunded_amount(self) -> int:
        return sum(r.amount for r in self.refunds)

    @property
    def open_refund_request(self) -> dict[str, Any] | None:
        """The refund request a ``refunding`` order waits on, as plain data: when and by whom
        it was asked, the reason, the items (``{sku: units}``, empty for the whole order),
        whether the goods come back, when the seller agreed to the return and the address it
        gave, and the return parcel's waybill once the buyer gave it, with where the parcel is
        (``status`` shipped or delivered, ``delivered_at``)."""
        if self.status != "refunding":
            return None
        request: OrderEvent | None = None
        agreed: OrderEvent | None = None
        waybill: dict[str, str] | None = None
        for event in self.events:
            if event.to_status == "refunding" and event.from_status != "refunding":
                # An earlier return's agreement and parcel are not this one's.
                request, agreed, waybill = event, None, None
            elif event.return_address is not None:
                agreed = event
            elif event.waybill is not None:
                waybill = event.waybill
        if request is None:
            return None
        if waybill is not None:
            waybill.update(self._return_parcel_state(waybill))
        return {
            "asked_at": request.created_at,
            "actor": request.actor,
            "reason": request.note,
            "lines": request.asked_lines,
            "returning": request.returning,
            "return_agreed_at": agreed.created_at if agreed else None,
            "return_address": agreed.return_address if agreed else None,
            "return_waybill": waybill,
        }

    def return_parcel(self, waybill: dict[str, str]) -> Shipment | None:
        """The tracked parcel of a return ``waybill`` (``{carrier, tracking_number}``)."""
        wanted = (waybill["carrier"], waybill["tracking_number"])
        return next(
            (p for p in self.return_parcels if (p.carrier, p.tracking_number) == wanted), None
        )

    def _return_parcel_state(self, waybill: dict[str, str]) -> dict[str, Any]:
        parcel = self.return_parcel(waybill)
        if parcel is None:  # given before returns were tracked
            return {"status": "shipped", "delivered_at": None}
        return {"status": parcel.status, "delivered_at": parcel.delivered_at}


class OrderLine(Base):
    __tablename__ = "koudai_order_line"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("koudai_sku.id"), index=True)
    # Snapshots: what the buyer saw, even if the catalog changes later.
    sku_code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(200), default="")
    unit_price: Mapped[int]
    quantity: Mapped[int]
    shipped_quantity: Mapped[int] = mapped_column(default=0)
    # Units refunded line by line (services.returns.take_back): those not shipped yet first,
    # so what is left to ship is quantity - shipped - refunded, never below 0.
    refunded_quantity: Mapped[int] = mapped_column(default=0, server_default="0")

    order: Mapped[Order] = relationship(back_populates="lines")

    @property
    def to_ship(self) -> int:
        """Units still to send: neither shipped nor refunded."""
        return max(0, self.quantity - self.shipped_quantity - self.refunded_quantity)

    @property
    def refundable(self) -> int:
        """Units that can still be refunded line by line."""
        return self.quantity - self.refunded_quantity

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


class OrderEvent(Base, Timestamped):
    """One transition (or a note) in an order's timeline."""

    __tablename__ = "koudai_order_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(80), default="system")
    note: Mapped[str] = mapped_column(Text, default="")
    # What a refund request asked for, when the buyer said: {"lines": {sku: units},
    # "returning": true when the goods go back} (services.orders.request_refund).
    detail: Mapped[dict[str, Any] | None]

    order: Mapped[Order] = relationship(back_populates="events")

    @property
    def by_channel(self) -> bool:
        """Made by a marketplace (the sync), not by the buyer or staff here."""
        return self.actor.startswith(CHANNEL_ACTOR)

    @property
    def asked_lines(self) -> dict[str, int]:
        """The units a refund request named, by SKU; empty when it was for the whole order."""
        return dict((self.detail or {}).get("lines") or {})

    @property
    def waybill(self) -> dict[str, str] | None:
        """The return parcel's ``{carrier, tracking_number}`` this entry recorded."""
        found = (self.detail or {}).get("return_waybill")
        return dict(found) if found else None

    @property
    def return_address(self) -> dict[str, str] | None:
        """Where the seller, agreeing to a return, told the buyer to send the goods."""
        found = (self.detail or {}).get("return_address")
        return dict(found) if found else None

    @property
    def returning(self) -> bool:
        """The refund request sends the goods back (退货退款), not money alone."""
        return bool((self.detail or {}).get("returning"))

    @property
    def step(self) -> str:
        """What the entry shows a buyer: the state it moved to, or the change made in place
        (``partially_refunded``, ``partially_shipped``), read from its note's first words."""
        if self.from_status == self.to_status:
            for opening, step in IN_PLACE_STEPS.items():
                if self.note.startswith(opening):
                    return step
        return self.to_status


# The actor of what a marketplace did, followed by the channel's name (channel_refunds).
CHANNEL_ACTOR = "channel:"
# The note of a timeline entry that keeps the order's state starts with its kind.
PARTIAL_REFUND, PARTIAL_SHIPMENT = "partial refund", "partial shipment"
RETURN_AGREED, RETURN_SENT, RETURN_ARRIVED = "return agreed", "return parcel", "return arrived"
ADDRESS_CHANGED = "address changed"
IN_PLACE_STEPS = {
    PARTIAL_REFUND: "partially_refunded",
    PARTIAL_SHIPMENT: "partially_shipped",
    RETURN_AGREED: "return_agreed",
    RETURN_SENT: "return_sent",
    RETURN_ARRIVED: "return_arrived",
    ADDRESS_CHANGED: "address_changed",
}


class Payment(Base, Timestamped):
    __tablename__ = "koudai_payment"
    __table_args__ = (
        UniqueConstraint("provider", "transaction_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    transaction_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="payments")


class Refund(Base, Timestamped):
    __tablename__ = "koudai_refund"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    amount: Mapped[int]
    reason: Mapped[str] = mapped_column(String(300), default="")
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))

    order: Mapped[Order] = relationship(back_populates="refunds")


class Shipment(Base, Timestamped):
    """A parcel of an order, with its waybill: one we sent, or the buyer's return."""

    __tablename__ = "koudai_shipment"
    __table_args__ = (
        UniqueConstraint("carrier", "tracking_number"),
        CheckConstraint(f"direction IN ('{OUTBOUND}', '{RETURN}')", name="direction_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("koudai_order.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8), default=OUTBOUND, server_default=OUTBOUND)
    # Kuaidi100 carrier code: shunfeng, yuantong, zhongtong, ...
    carrier: Mapped[str] = mapped_column(String(32))
    tracking_number: Mapped[str] = mapped_column(String(64))
    # shipped | delivered
    status: Mapped[str] = mapped_column(String(16), default="shipped")
    delivered_at: Mapped[datetime | None]
    # Logistics tracking: when we subscribed to pushes, last polled, the provider's state.
    subscribed_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    tracking_state: Mapped[str | None] = mapped_column(String(8))
    # Pushed back to the channel the order came from (e.g. Taobao's logistics.offline.send).
    pushed_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="shipments")
    tracking_events: Mapped[list[TrackingEvent]] = relationship(
        order_by="TrackingEvent.occurred_at.desc()", viewonly=True
    )
