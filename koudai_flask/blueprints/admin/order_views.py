"""Orders from every channel in one list, an order's page and what staff do to it."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import func, select

from koudai_flask.blueprints.admin import packing_views
from koudai_flask.blueprints.admin.common import (
    acting,
    actor_id,
    checked_form,
    staff_required,
    uploaded_text,
)
from koudai_flask.blueprints.common import page_number
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.i18n import CARRIERS, carrier_label
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Channel, Order
from koudai_flask.services import (
    backoffice,
    notifications,
    order_address,
    order_csv,
    order_memo,
    order_search,
    order_states,
    orders,
    packing,
    returns,
    staff,
    theme,
)
from koudai_flask.services.order_sync import CHANNEL_PROVIDER
from koudai_flask.services.shipping import remaining
from koudai_flask.services.transaction import current_session

PER_PAGE = 30


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def filters_from_request() -> order_search.OrderFilters:
    args = request.args
    return order_search.OrderFilters(
        status=args.get("status") or None,
        channel=args.get("channel") or None,
        date_from=_day(args.get("from")),
        date_to=_day(args.get("to")),
        buyer=args.get("buyer") or None,
        sku=args.get("sku") or None,
        tracking_number=args.get("tracking") or None,
        q=args.get("q") or None,
        message_failed=args.get("messages") == "failed",
        return_arrived=args.get("returns") == "arrived",
        slip_unprinted=args.get("slip") == "unprinted",
        flag=args.get("flag") or None,
    )


def _row_text(result: order_csv.RowResult) -> str:
    """A CSV row's outcome in the reader's language."""
    if result.outcome == "shipped":
        return _k(
            "Shipped with %(carrier)s %(tracking)s",
            carrier=carrier_label(result.carrier),
            tracking=result.tracking,
        )
    if result.outcome == "duplicate":
        return _k("The same parcel as an earlier row.")
    if result.outcome == "incomplete":
        return _k("Needs the order number, the carrier and the tracking number.")
    if result.outcome == "too_many_rows":
        return _k("Too many rows: split the file and upload each part.")
    return refusal_text(result.refusal) if result.refusal is not None else result.message


def order_or_404(number: str, permission: str = "orders.view") -> Any:
    try:
        return backoffice.order_for(actor_id(), number, permission)
    except NotFound:
        abort(404)


def register(bp: Blueprint) -> None:
    @bp.get("/orders")
    @staff_required("orders.view")
    def orders_list() -> ResponseReturnValue:
        filters = filters_from_request()
        page = page_number()
        query = order_search.order_query(acting(), filters)
        session = current_session()
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
        waiting = [order.id for order in rows if order.status == "refunding"]
        # Refund requests whose returned goods are back: flagged on their rows.
        arrived = (
            set(
                session.scalars(
                    select(Order.number).where(Order.id.in_(waiting), returns.goods_arrived())
                )
            )
            if waiting
            else set()
        )
        scope = staff.visible_channels(acting())
        channels = [
            c
            for c in session.scalars(select(Channel.name).order_by(Channel.name))
            if scope is None or c in scope
        ]
        return render_template(
            "koudai/admin/orders.html",
            orders=rows,
            returns_arrived=arrived,
            printed=packing.printed(order.id for order in rows),
            total=total,
            page=page,
            pages=max(1, -(-(total or 0) // PER_PAGE)),
            filters=filters,
            channels=channels,
            statuses=orders.STATES,
            form=FlaskForm(),
            carriers=CARRIERS,
        )

    @bp.get("/orders/export.csv")
    @staff_required("orders.export")
    def orders_export() -> ResponseReturnValue:
        rows = order_csv.export_orders(actor_id(), filters_from_request())
        return Response(
            stream_with_context(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=orders.csv"},
        )

    @bp.post("/orders/ship-csv")
    @staff_required("orders.ship")
    def orders_ship_csv() -> ResponseReturnValue:
        checked_form()
        text = uploaded_text()
        if text is None:
            flash(_k("Choose a CSV file."), "error")
            return redirect(url_for(".orders_list"))
        results = order_csv.ship_from_csv(actor_id(), text)
        return render_template(
            "koudai/admin/ship_results.html", results=results, row_text=_row_text
        )

    @bp.post("/orders/bulk")
    @staff_required("orders.view")
    def orders_bulk() -> ResponseReturnValue:
        """Bulk actions on ticked orders: cancel unpaid ones (each checked on its own)."""
        checked_form()
        numbers = request.form.getlist("numbers")[:200]
        action = request.form.get("action")
        if action != "cancel":
            abort(400)
        done, failed = 0, 0
        for number in numbers:
            try:
                backoffice.cancel(actor_id(), number, reason="bulk cancel")
                done += 1
            except KoudaiError:
                failed += 1
        flash(
            _k("%(done)d cancelled, %(failed)d not.", done=done, failed=failed),
            "success" if not failed else "error",
        )
        return redirect(url_for(".orders_list"))

    @bp.get("/orders/<number>")
    @staff_required("orders.view")
    def order_detail(number: str) -> ResponseReturnValue:
        order = order_or_404(number)
        member = acting()
        asked = order_states.refund_request(current_session(), order)
        return render_template(
            "koudai/admin/order.html",
            order=order,
            notes=backoffice.notes(order),
            left=remaining(order),
            address_changeable=order_address.changeable(order),
            memo_channel=order_memo.synced_channel(order),
            form=FlaskForm(),
            carriers=CARRIERS,
            can=lambda codename: staff.can(member.user_id, codename, channel=order.channel),
            notifications=_notifications(order.number),
            refund_request=asked,
            return_waybill=returns.return_waybill(order),
            return_address=returns.return_address(order),
            shop_return_address=theme.current().return_address,
            previous_status=order_states.state_before(current_session(), order) if asked else None,
            # Paid on a marketplace: its refunds are made there, and mirrored here.
            marketplace=order.channel
            if any(p.provider == CHANNEL_PROVIDER for p in order.payments)
            else None,
        )

    @bp.post("/orders/<number>/ship")
    @staff_required("orders.ship")
    def order_ship(number: str) -> ResponseReturnValue:
        checked_form()
        order_or_404(number, "orders.ship")
        lines = {
            key.removeprefix("qty-"): int(value)
            for key, value in request.form.items()
            if key.startswith("qty-") and value.strip().isdigit()
        }
        partial = request.form.get("partial") == "1"
        carrier = request.form.get("carrier", "")

        scanning = request.form.get("next") == "scan"  # from the scan page: back there

        def ship() -> None:
            backoffice.ship(
                actor_id(),
                number,
                carrier=carrier,
                tracking_number=request.form.get("tracking_number", ""),
                lines=lines if partial else None,
            )
            if scanning:
                packing_views.remember_carrier(carrier)

        if scanning:
            return _act(
                number,
                ship,
                _k("Shipped. Scan the next slip."),
                back=url_for(".orders_scan"),
                retry=url_for(".orders_scan", number=number),
            )
        return _act(number, ship, _k("Shipped."))

    @bp.post("/orders/<number>/cancel")
    @staff_required("orders.cancel")
    def order_cancel(number: str) -> ResponseReturnValue:
        checked_form()
        order_or_404(number, "orders.cancel")
        return _act(
            number,
            lambda: backoffice.cancel(actor_id(), number, reason=request.form.get("reason", "")),
            _k("Cancelled."),
        )

    @bp.post("/orders/<number>/mark-paid")
    @staff_required("orders.mark_paid")
    def order_mark_paid(number: str) -> ResponseReturnValue:
        checked_form()
        order_or_404(number, "orders.mark_paid")
        return _act(
            number,
            lambda: backoffice.mark_paid_offline(
                actor_id(), number, reference=request.form.get("reference", "")
            ),
            _k("Marked paid."),
        )

    @bp.post("/orders/<number>/refund")
    @staff_required("orders.refund")
    def order_refund(number: str) -> ResponseReturnValue:
        checked_form()
        order_or_404(number, "orders.refund")
        raw = request.form.get("amount", "").strip()
        try:
            amount = _fen(raw) if raw else None
        except ValueError:
            flash(_k("Write the amount like 12.50."), "error")
            return redirect(url_for(".order_detail", number=number))
        lines: dict[str, int] = {}
        for key, value in request.form.items():
            if key.startswith("refund-") and value.strip() not in ("", "0"):
                if not value.strip().isdigit():
                    flash(_k("Write how many items as a whole number."), "error")
                    return redirect(url_for(".order_detail", number=number))
                lines[key.removeprefix("refund-")] = int(value)
        return _act(
            number,
            lambda: backoffice.refund(
                actor_id(),
                number,
                amount=amount,
                reason=request.form.get("reason", ""),
                restock=request.form.get("restock") == "1",
                lines=lines or None,
                settles=request.form.get("settles") == "1",
            ),
            _k("Refunded."),
        )

    @bp.post("/orders/<number>/decline-refund")
    @staff_required("orders.refund")
    def order_decline_refund(number: str) -> ResponseReturnValue:
        checked_form()
        order_or_404(number, "orders.refund")
        return _act(
            number,
            lambda: backoffice.decline_refund(
                actor_id(), number, reason=request.form.get("reason", "")
            ),
            _k("Refund declined; the buyer sees your reason on the order."),
        )

    @bp.post("/orders/<number>/return/agree")
    @staff_required("orders.refund")
    def order_agree_return(number: str) -> ResponseReturnValue:
        checked_form()
        order_or_404(number, "orders.refund")
        return _act(
            number,
            lambda: backoffice.agree_return(
                actor_id(),
                number,
                address={
                    key: request.form.get(f"return_{key}", "")
                    for key in ("name", "phone", "address")
                },
            ),
            _k("Return agreed; the buyer is told where to send the goods."),
        )

    @bp.post("/orders/<number>/note")
    @staff_required("orders.view")
    def order_note(number: str) -> ResponseReturnValue:
        checked_form()
        order_or_404(number)
        return _act(
            number,
            lambda: backoffice.add_note(actor_id(), number, request.form.get("body", "")),
            _k("Note added."),
        )

    @bp.post("/orders/<number>/notifications/<int:notification_id>/resend")
    @staff_required("orders.view")
    def order_resend(number: str, notification_id: int) -> ResponseReturnValue:
        checked_form()
        order = order_or_404(number)
        if not any(n.id == notification_id for n in notifications.for_order(order.number)):
            abort(404)  # another order's message: not reachable through this one
        return _act(
            number,
            lambda: notifications.resend(notification_id, actor=f"staff:{actor_id()}"),
            _k("Sent again."),
        )


def _fen(text: str) -> int:
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if value <= 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(text)
    return int(value * 100)


def _act(
    number: str, action: Any, done: str, *, back: str | None = None, retry: str | None = None
) -> ResponseReturnValue:
    """Run a staff action on an order; then to ``back`` (refused: ``retry``), by default the
    order's page, saying what happened."""
    page = url_for(".order_detail", number=number)
    try:
        action()
    except KoudaiError as exc:
        if exc.http_status == 403:
            abort(403)
        flash(refusal_text(exc), "error")
        return redirect(retry or page), 303
    flash(done, "success")
    return redirect(back or page), 303


def _notifications(number: str) -> list[Any]:
    return list(notifications.for_order(number))
