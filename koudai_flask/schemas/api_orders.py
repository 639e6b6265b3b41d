"""REST API schemas of orders: what a page of orders shows and what each action takes."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowValidationError

from koudai_flask.schemas import Length
from koudai_flask.schemas.api_common import MAX_INT, PageArgs, page_of
from koudai_flask.schemas.orders import AddressInput
from koudai_flask.services.order_memo import FLAGS, MAX_MEMO
from koudai_flask.services.order_search import FLAG_FILTERS
from koudai_flask.services.order_states import STATES as ORDER_STATES
from koudai_flask.services.shipping import TRACKING_NUMBER

_AMOUNT = validate.Range(min=1, max=MAX_INT)

STATES = list(ORDER_STATES)
FLAG_TEXT = "the seller's flag (旗帜): " + ", ".join(f"{k} {v}" for k, v in FLAGS.items())


class OrderLineOut(Schema):
    sku = fields.String(required=True, attribute="sku_code")
    title = fields.String(required=True)
    variant = fields.String(required=True)
    unit_price = fields.Integer(required=True)
    quantity = fields.Integer(required=True)
    shipped_quantity = fields.Integer(required=True)
    refunded_quantity = fields.Integer(
        required=True, metadata={"description": "units refunded line by line"}
    )


class ShipmentOut(Schema):
    carrier = fields.String(required=True)
    tracking_number = fields.String(required=True)
    status = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(required=True, allow_none=True)


class WaybillOut(Schema):
    carrier = fields.String(required=True, metadata={"description": "a Kuaidi100 carrier code"})
    tracking_number = fields.String(required=True)


class ReturnAddressOut(Schema):
    name = fields.String(required=True)
    phone = fields.String(required=True)
    address = fields.String(required=True)


class ReturnWaybillOut(WaybillOut):
    status = fields.String(
        required=True,
        metadata={"enum": ["shipped", "delivered"], "description": "delivered: signed for"},
    )
    delivered_at = fields.DateTime(required=True, allow_none=True)


class RefundRequestOut(Schema):
    asked_at = fields.DateTime(required=True)
    actor = fields.String(required=True, metadata={"description": "buyer, staff:..., channel:..."})
    reason = fields.String(required=True)
    lines = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "the units asked for, {sku: quantity}; empty: the whole order"},
    )
    returning = fields.Boolean(
        required=True, metadata={"description": "the goods come back (退货退款)"}
    )
    return_agreed_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "when the seller agreed to take the goods back"},
    )
    return_address = fields.Nested(
        ReturnAddressOut,
        required=True,
        allow_none=True,
        metadata={"description": "where the seller, agreeing, told the buyer to send the goods"},
    )
    return_waybill = fields.Nested(
        ReturnWaybillOut,
        required=True,
        allow_none=True,
        metadata={"description": "the parcel the buyer sent back, tracked like a shipment"},
    )


class OrderOut(Schema):
    number = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": STATES})
    channel = fields.String(required=True)
    external_id = fields.String(required=True, allow_none=True)
    customer_id = fields.Integer(required=True, allow_none=True)
    address = fields.Dict(required=True, allow_none=True)
    note = fields.String(required=True)
    subtotal = fields.Integer(required=True)
    shipping_fee = fields.Integer(required=True)
    discount = fields.Integer(required=True)
    total = fields.Integer(required=True)
    paid_amount = fields.Integer(required=True)
    refunded_amount = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    paid_at = fields.DateTime(required=True, allow_none=True)
    lines = fields.List(fields.Nested(OrderLineOut), required=True)
    shipments = fields.List(fields.Nested(ShipmentOut), required=True)
    refund_request = fields.Nested(
        RefundRequestOut,
        required=True,
        allow_none=True,
        attribute="open_refund_request",
        metadata={"description": "what a refunding order waits on; null otherwise"},
    )
    seller_memo = fields.Function(
        lambda order: order.seller_memo.memo if order.seller_memo else "",
        required=True,
        metadata={
            "type": "string",
            "description": "the seller's memo (卖家备注); buyers never see it",
        },
    )
    seller_flag = fields.Function(
        lambda order: order.seller_memo.flag if order.seller_memo else 0,
        required=True,
        metadata={"type": "integer", "description": FLAG_TEXT},
    )


OrderPage = page_of(OrderOut, "OrderPage")


class MemoIn(Schema):
    memo = fields.String(
        load_default=None,
        validate=Length(max=MAX_MEMO),
        metadata={"description": "The new memo; empty clears it; left out keeps it."},
    )
    flag = fields.Integer(
        load_default=None,
        strict=True,
        validate=validate.Range(min=0, max=5),
        metadata={"description": FLAG_TEXT + "; left out keeps it"},
    )

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("memo") is None and data.get("flag") is None:
            raise MarshmallowValidationError("give memo, flag or both", field_name="memo")


class OrderListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(STATES))
    channel = fields.String(load_default=None, validate=Length(min=1, max=64))
    sku = fields.String(load_default=None, validate=Length(min=1, max=64))
    created_from = fields.Date(load_default=None, metadata={"description": "Shop's time zone."})
    created_to = fields.Date(load_default=None, metadata={"description": "Inclusive."})
    q = fields.String(
        load_default=None,
        validate=Length(min=1, max=64),
        metadata={"description": "An order number or a channel's order id."},
    )
    slip = fields.String(
        load_default=None,
        validate=validate.OneOf(["printed", "unprinted"]),
        metadata={"description": "Orders whose packing slip was printed, or never was."},
    )
    flag = fields.String(
        load_default=None,
        validate=validate.OneOf(FLAG_FILTERS),
        metadata={"description": "The seller's flag: any, none, or one colour 1-5."},
    )
    customer_id = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=MAX_INT),
        metadata={
            "description": "That customer's orders; a customer merged into another gives "
            "the orders of the one that stands now."
        },
    )


class ApiOrderLineInput(Schema):
    sku = fields.String(required=True, validate=Length(min=1, max=64))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=9999))
    unit_price = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=100_000_000),
        metadata={"description": "fen; the channel's price (default: ours)"},
    )


class OrderCreateIn(Schema):
    channel = fields.String(
        required=True,
        validate=Length(min=1, max=64),
        metadata={"description": "An existing channel other than the own shop ('web')."},
    )
    external_id = fields.String(
        required=True,
        validate=Length(min=1, max=64),
        metadata={"description": "The channel's own order id; the same one twice is one order."},
    )
    lines = fields.List(
        fields.Nested(ApiOrderLineInput), required=True, validate=Length(min=1, max=100)
    )
    address = fields.Nested(AddressInput, allow_none=True, load_default=None)
    shipping_fee = fields.Integer(
        strict=True, load_default=0, validate=validate.Range(min=0, max=100_000_000)
    )
    note = fields.String(load_default="", validate=Length(max=500))


class PaymentIn(Schema):
    amount = fields.Integer(
        required=True,
        strict=True,
        validate=_AMOUNT,
        metadata={"description": "fen; must equal the order's total"},
    )
    transaction_id = fields.String(required=True, validate=Length(min=1, max=64))


class ShipIn(Schema):
    carrier = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z0-9]{2,32}$"),
        metadata={"description": "Kuaidi100 carrier code: shunfeng, yuantong, ..."},
    )
    tracking_number = fields.String(
        required=True, validate=validate.Regexp(f"^{TRACKING_NUMBER.pattern}$")
    )
    lines = fields.Dict(
        keys=fields.String(validate=Length(min=1, max=64)),
        values=fields.Integer(strict=True, validate=validate.Range(min=1, max=9999)),
        load_default=None,
        metadata={"description": "Part of the order: {sku: quantity}; omit to ship the rest."},
    )


class SlipLineOut(Schema):
    sku = fields.String(required=True, attribute="sku_code")
    title = fields.String(required=True)
    variant = fields.String(required=True)
    quantity = fields.Integer(required=True, metadata={"description": "still to send"})


class SlipOut(Schema):
    number = fields.String(required=True, attribute="order.number")
    times = fields.Integer(
        required=True, metadata={"description": "how often its slip was printed, this included"}
    )
    lines = fields.List(fields.Nested(SlipLineOut), required=True)


class CancelIn(Schema):
    reason = fields.String(load_default="", validate=Length(max=300))


class DeclineRefundIn(Schema):
    reason = fields.String(
        required=True,
        validate=Length(min=1, max=200),
        metadata={"description": "why the sale stands; the buyer reads it on the order"},
    )


class RefundIn(Schema):
    settles = fields.Boolean(
        load_default=False,
        metadata={
            "description": "a partial refund agreed with the buyer ends their open refund "
            "request, as settled; `nothing_to_settle` when none is open"
        },
    )
    restock = fields.Boolean(
        load_default=False,
        metadata={
            "description": "the parcel came back: what shipped goes back on the shelf "
            "(a full refund, or the shipped units of `lines`)"
        },
    )
    amount = fields.Integer(
        strict=True,
        load_default=None,
        validate=_AMOUNT,
        metadata={"description": "fen; omit to refund everything left, or what `lines` cost"},
    )
    lines = fields.Dict(
        keys=fields.String(validate=Length(min=1, max=64)),
        values=fields.Integer(strict=True, validate=validate.Range(min=1, max=9999)),
        load_default=None,
        validate=Length(min=1),
        metadata={
            "description": "the units refunded, {sku: quantity}: those not shipped yet are "
            "no longer to ship and their stock goes back"
        },
    )
    reason = fields.String(load_default="", validate=Length(max=300))
