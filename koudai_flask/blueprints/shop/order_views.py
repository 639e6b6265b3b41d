"""A buyer's orders: list, detail, payment, payment result and cancelling."""

from __future__ import annotations

import contextlib

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from koudai_flask import identity, payments
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.blueprints.shop.common import guest_orders, login_redirect, page_number
from koudai_flask.blueprints.shop.forms import (
    REFUND_REASONS,
    ActionForm,
    PayForm,
    RefundRequestForm,
)
from koudai_flask.errors import InvalidTransition, KoudaiError, ValidationError
from koudai_flask.i18n import CARRIERS
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Order
from koudai_flask.payments import PaymentGatewayError
from koudai_flask.services import order_address, order_states, orders, returns, reviews
from koudai_flask.services import payments as payment_service
from koudai_flask.services.checkout import SHOP_CHANNEL
from koudai_flask.services.transaction import current_session

PER_PAGE = 10
PROVIDER_LABELS = {
    "wechatpay": "微信支付 WeChat Pay",
    "alipay": "支付宝 Alipay",
    "offline": "货到付款 / 转账 Offline",
}


# The tabs of "My orders", as mobile shops give them: each the order states it lists.
TABS: dict[str, tuple[str, ...]] = {
    "all": (),
    "unpaid": ("pending_payment",),
    "to_ship": ("paid",),
    "to_receive": ("shipped", "delivered"),
    "after_sales": ("refunding", "refunded"),
}


def own_order(number: str) -> Order:
    """The buyer's own order, or 404: another buyer's order does not exist for them."""
    order = current_session().scalar(select(Order).where(Order.number == number))
    if order is None:
        abort(404)
    customer = identity.current_customer()
    mine = customer is not None and order.customer_id == customer.id
    if not mine and not (order.customer_id is None and number in guest_orders()):
        abort(404)
    return order


def after_sales_here(order: Order) -> bool:
    """Whether the buyer confirms receipt and asks for refunds here: for the own shop's
    orders; a marketplace's orders are handled on the marketplace, whose state we mirror."""
    return order.channel == SHOP_CHANNEL


def _after_sales_order(number: str) -> Order:
    """The buyer's own order whose after-sales happen here, or 404."""
    order = own_order(number)
    if not after_sales_here(order):
        abort(404)
    return order


def _asked_items(order: Order) -> dict[str, int] | None:
    """The units the buyer's refund request is for (``item-<sku>`` fields, none outside
    0..refundable), or None when the form names no items (the whole order)."""
    asked: dict[str, int] = {}
    for line in order.lines:
        raw = request.form.get(f"item-{line.sku_code}")
        if raw is None:
            continue
        units = int(raw) if raw.strip().isdigit() else 0
        asked[line.sku_code] = min(units, line.refundable)
    if not asked:
        return None
    return {code: units for code, units in asked.items() if units} or {}


def _order_page(
    order: Order, refund_form: RefundRequestForm | None = None, *, items_error: bool = False
) -> str:
    answer = order_states.last_declined(order.events)
    reviewable = order.customer_id is not None and reviews.can_review(order)
    return render_template(
        "koudai/shop/order.html",
        order=order,
        reviewable=reviewable,
        reviewed=reviews.reviewed_lines(order.id) if reviewable else {},
        form=ActionForm(),
        after_sales=after_sales_here(order),
        address_changeable=after_sales_here(order)
        and order_address.changeable(order, by_buyer=True),
        items_error=items_error,
        # Items are picked when there is a choice: more than one unit left to refund.
        pick_items=sum(line.refundable for line in order.lines) > 1,
        shipped=any(line.shipped_quantity for line in order.lines),
        refund_form=refund_form or RefundRequestForm(formdata=None),
        refund_request=order_states.refund_request(current_session(), order),
        return_waybill=returns.return_waybill(order),
        return_address=returns.return_address(order),
        carriers=CARRIERS,
        # The seller's answer, while the order stays where it went back to.
        declined=answer if answer is not None and answer is order.events[-1] else None,
    )


def _scene() -> str:
    agent = request.headers.get("User-Agent", "")
    if "MicroMessenger" in agent:
        return "jsapi"
    return "h5" if "Mobile" in agent else "page"


def register(bp: Blueprint) -> None:
    @bp.get("/orders")
    def my_orders() -> ResponseReturnValue:
        customer = identity.current_customer()
        numbers = guest_orders()
        if customer is None and not numbers:
            return login_redirect()
        tab = request.args.get("tab", "all")
        if tab not in TABS:
            abort(404)
        if customer is not None:
            mine = Order.customer_id == customer.id
        else:
            mine = Order.number.in_(numbers) & Order.customer_id.is_(None)
        session = current_session()
        by_status: dict[str, int] = {
            status: count
            for status, count in session.execute(
                select(Order.status, func.count()).where(mine).group_by(Order.status)
            ).all()
        }
        query = select(Order).where(mine).options(selectinload(Order.lines))
        if TABS[tab]:
            query = query.where(Order.status.in_(TABS[tab]))
        page = page_number()
        rows = session.scalars(
            query.order_by(Order.created_at.desc(), Order.id.desc())
            .limit(PER_PAGE + 1)
            .offset((page - 1) * PER_PAGE)
        ).all()
        return render_template(
            "koudai/shop/orders.html",
            orders=rows[:PER_PAGE],
            page=page,
            has_next=len(rows) > PER_PAGE,
            tab=tab,
            tabs=[
                (name, sum(by_status.get(status, 0) for status in TABS[name]))
                for name in TABS
                if name != "all"
            ],
        )

    @bp.get("/orders/<number>")
    def order_detail(number: str) -> ResponseReturnValue:
        order = own_order(number)
        return _order_page(order)

    @bp.post("/orders/<number>/received")
    def confirm_received(number: str) -> ResponseReturnValue:
        _after_sales_order(number)
        if not ActionForm().validate():
            abort(400)
        try:
            orders.confirm_received(number, actor="buyer")
            flash(_k("Thank you! The order is complete."), "success")
        except InvalidTransition:
            flash(_k("This order cannot be confirmed as received now."), "error")
        return redirect(url_for(".order_detail", number=number))

    @bp.post("/orders/<number>/refund")
    def request_refund(number: str) -> ResponseReturnValue:
        order = _after_sales_order(number)
        form = RefundRequestForm()
        if not form.validate():
            if form.csrf_token.errors:
                abort(400)
            return _order_page(order, refund_form=form), 422
        label = dict(REFUND_REASONS)[form.reason.data or "other"]
        details = " ".join((form.details.data or "").split())
        if form.reason.data == "other" and not details:
            form.details.errors = [_k("Tell the seller what is wrong.")]
            return _order_page(order, refund_form=form), 422
        asked = _asked_items(order)
        if asked == {}:  # items offered, none picked
            return _order_page(order, refund_form=form, items_error=True), 422
        try:
            orders.request_refund(
                number,
                reason=f"{label}: {details}" if details else str(label),
                actor="buyer",
                lines=asked,
                returning=form.returning.data == "1",
            )
            flash(_k("Refund requested. The seller will answer on this page."), "success")
        except InvalidTransition:
            flash(_k("A refund cannot be requested for this order now."), "error")
        except ValidationError as refused:
            flash(refusal_text(refused), "error")
        return redirect(url_for(".order_detail", number=number))

    @bp.post("/orders/<number>/refund/withdraw")
    def withdraw_refund(number: str) -> ResponseReturnValue:
        """The buyer takes their refund request back (撤销申请)."""
        _after_sales_order(number)
        if not ActionForm().validate():
            abort(400)
        try:
            orders.withdraw_refund(number, actor="buyer")
            flash(_k("Your refund request is withdrawn."), "success")
        except (InvalidTransition, ValidationError):
            flash(_k("This refund request cannot be withdrawn now."), "error")
        return redirect(url_for(".order_detail", number=number))

    @bp.post("/orders/<number>/return")
    def send_back(number: str) -> ResponseReturnValue:
        """The buyer posted the goods of a return: the waybill goes on the request."""
        _after_sales_order(number)
        if not ActionForm().validate():
            abort(400)
        try:
            returns.send_back(
                number,
                carrier=request.form.get("carrier", ""),
                tracking_number=request.form.get("tracking_number", ""),
            )
            flash(_k("Thank you: the seller refunds once the parcel arrives."), "success")
        except ValidationError as refused:
            flash(refusal_text(refused), "error")
        return redirect(url_for(".order_detail", number=number))

    @bp.route("/orders/<number>/pay", methods=["GET", "POST"])
    def pay(number: str) -> ResponseReturnValue:
        order = own_order(number)
        if order.status != "pending_payment":
            return redirect(url_for(".order_detail", number=number))
        enabled = payments.enabled()
        form = PayForm()
        form.provider.choices = [(name, PROVIDER_LABELS.get(name, name)) for name in enabled]
        if request.method == "GET":
            if enabled:
                form.provider.data = next(iter(enabled))
            return render_template("koudai/shop/pay.html", order=order, form=form)
        if not form.validate():
            return render_template(
                "koudai/shop/pay.html", order=order, form=form, error=_k("Choose how to pay.")
            ), 400
        try:
            action = payment_service.start(
                number,
                form.provider.data or "",
                scene=_scene(),
                notify_url=url_for(_hooks_endpoint(form.provider.data or ""), _external=True)
                if form.provider.data != "offline"
                else "",
                return_url=url_for(".payment_result", number=number, _external=True),
                client_ip=request.remote_addr or "127.0.0.1",
                openid=session.get(identity.OPENID_SESSION_KEY),
            )
        except PaymentGatewayError:
            return render_template(
                "koudai/shop/pay.html",
                order=order,
                form=form,
                error=_k("The payment service did not answer. Please try again."),
            ), 502
        if action.kind == "redirect" and action.url:
            return redirect(action.url)
        if action.kind == "jsapi":
            return render_template("koudai/shop/pay_jsapi.html", order=order, params=action.params)
        return redirect(url_for(".payment_result", number=number))

    @bp.get("/orders/<number>/result")
    def payment_result(number: str) -> ResponseReturnValue:
        order = own_order(number)
        # If the provider cannot be asked now, the notify still arrives; the page says waiting.
        with contextlib.suppress(KoudaiError):
            order = payment_service.confirm_from_query(number)
        return render_template("koudai/shop/result.html", order=order)

    @bp.post("/orders/<number>/cancel")
    def cancel(number: str) -> ResponseReturnValue:
        own_order(number)
        form = ActionForm()
        if not form.validate():
            abort(400)
        try:
            orders.cancel(number, reason="cancelled by the buyer", actor="buyer")
            flash(_k("Your order was cancelled."), "success")
        except InvalidTransition:
            flash(_k("This order can no longer be cancelled."), "error")
        return redirect(url_for(".order_detail", number=number))


def _hooks_endpoint(provider: str) -> str:
    return f"koudai_hooks.{provider}_notify"
