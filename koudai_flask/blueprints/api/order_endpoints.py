"""Order endpoints: list, read, create for an external channel, pay, ship, cancel, refund,
change an unshipped order's address, the seller's memo and flag, and answer a refund request
(decline it, agree to a return)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import idempotent, principal, requires
from koudai_flask.schemas.api_orders import (
    CancelIn,
    DeclineRefundIn,
    MemoIn,
    OrderCreateIn,
    OrderListArgs,
    OrderOut,
    OrderPage,
    PaymentIn,
    RefundIn,
    ShipIn,
    SlipOut,
)
from koudai_flask.schemas.orders import AddressInput
from koudai_flask.services import (
    backoffice,
    order_memo,
    packing,
    platform_actions,
    platform_reads,
)


def register(bp: Blueprint) -> None:
    @bp.route("/orders", methods=["GET"])
    @requires("orders.view")
    @bp.arguments(OrderListArgs, location="query")
    @bp.response(200, OrderPage)
    def orders_list(args: dict[str, Any]) -> Any:
        """Orders of every channel the key may see, newest first."""
        return platform_reads.orders(
            principal(),
            status=args["status"],
            channel=args["channel"],
            sku_code=args["sku"],
            created_from=args["created_from"],
            created_to=args["created_to"],
            q=args["q"],
            cursor=args["cursor"],
            limit=args["limit"],
            customer_id=args["customer_id"],
            slip=args["slip"],
            flag=args["flag"],
        )

    @bp.route("/orders", methods=["POST"])
    @requires("channels.manage")
    @idempotent
    @bp.arguments(OrderCreateIn)
    @bp.response(201, OrderOut)
    def order_create(data: dict[str, Any]) -> Any:
        """Place an order taken on an external channel; its stock is reserved at once.
        The same `(channel, external_id)` again returns the first order."""
        return platform_actions.create_order(principal(), data)

    @bp.route("/orders/<number>", methods=["GET"])
    @requires("orders.view")
    @bp.response(200, OrderOut)
    def order_read(number: str) -> Any:
        """One order with its lines and shipments."""
        return platform_reads.order(principal(), number)

    @bp.route("/orders/<number>/payments", methods=["POST"])
    @requires("orders.mark_paid")
    @idempotent
    @bp.arguments(PaymentIn)
    @bp.response(201, OrderOut)
    def order_pay(data: dict[str, Any], number: str) -> Any:
        """Record that the channel took the money: the order becomes `paid`."""
        return platform_actions.pay(
            principal(), number, amount=data["amount"], transaction_id=data["transaction_id"]
        )

    @bp.route("/orders/<number>/shipments", methods=["POST"])
    @requires("orders.ship")
    @idempotent
    @bp.arguments(ShipIn)
    @bp.response(201, OrderOut)
    def order_ship(data: dict[str, Any], number: str) -> Any:
        """Ship a paid order, or some of its lines, with a carrier and tracking number."""
        return platform_actions.ship(
            principal(),
            number,
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
            lines=data["lines"],
        )

    @bp.route("/orders/<number>/slip", methods=["POST"])
    @requires("orders.ship")
    @idempotent
    @bp.response(200, SlipOut)
    def order_slip(number: str) -> Any:
        """Record that a paid order's packing slip was printed (by a printing or packing
        system), and say what is still to send; the back office's list then marks it."""
        return packing.record_print(principal(), number)

    @bp.route("/orders/<number>/cancel", methods=["POST"])
    @requires("orders.cancel")
    @idempotent
    @bp.arguments(CancelIn)
    @bp.response(200, OrderOut)
    def order_cancel(data: dict[str, Any], number: str) -> Any:
        """Cancel an unpaid order; its reserved stock goes back."""
        return platform_actions.cancel(principal(), number, reason=data["reason"])

    @bp.route("/orders/<number>/address", methods=["PUT"])
    @requires("orders.edit")
    @idempotent
    @bp.arguments(AddressInput)
    @bp.response(200, OrderOut)
    def order_address(data: dict[str, Any], number: str) -> Any:
        """Send an order that has not shipped to another address (unpaid or paid, not asking
        for a refund, not a marketplace's order nor one handed to an ERP system). The same
        address again changes nothing; receivers of `order.address_changed` learn both."""
        platform_reads.order(principal(), number, "orders.edit")
        backoffice.change_address(principal().user_id, number, data)
        return platform_reads.order(principal(), number)

    @bp.route("/orders/<number>/memo", methods=["PUT"])
    @requires("orders.edit")
    @idempotent
    @bp.arguments(MemoIn)
    @bp.response(200, OrderOut)
    def order_memo_put(data: dict[str, Any], number: str) -> Any:
        """Set the seller's memo and/or flag (卖家备注, 旗帜); buyers never see them. An
        order from a Taobao shop gets them on its trade there too. The same values again
        change nothing; receivers of `order.memo_changed` learn both the old and the new."""
        platform_reads.order(principal(), number, "orders.edit")
        order_memo.staff_set_memo(principal().user_id, number, memo=data["memo"], flag=data["flag"])
        return platform_reads.order(principal(), number)

    @bp.route("/orders/<number>/refund-request/decline", methods=["POST"])
    @requires("orders.refund")
    @idempotent
    @bp.arguments(DeclineRefundIn)
    @bp.response(200, OrderOut)
    def order_decline_refund(data: dict[str, Any], number: str) -> Any:
        """Decline the buyer's refund request: the order goes back to the state it was
        asked from, and the buyer reads `reason` on it."""
        return platform_actions.decline_refund(principal(), number, reason=data["reason"])

    @bp.route("/orders/<number>/refund-request/agree-return", methods=["POST"])
    @requires("orders.refund")
    @idempotent
    @bp.response(200, OrderOut)
    def order_agree_return(number: str) -> Any:
        """Agree to take back the goods the buyer asked to return: the buyer is sent the
        shop's return address (`refund_request.return_address`) and may then give the
        parcel's waybill. Agreeing again changes nothing."""
        return platform_actions.agree_return(principal(), number)

    @bp.route("/orders/<number>/refunds", methods=["POST"])
    @requires("orders.refund")
    @idempotent
    @bp.arguments(RefundIn)
    @bp.response(201, OrderOut)
    def order_refund(data: dict[str, Any], number: str) -> Any:
        """Refund all that is left (no `amount`), part of it, or some of its units
        (`lines`)."""
        return platform_actions.refund(
            principal(),
            number,
            amount=data["amount"],
            reason=data["reason"],
            restock=data["restock"],
            lines=data["lines"],
            settles=data["settles"],
        )
