"""The seller's memo and flag (卖家备注, 旗帜) from an order's page and on the ticked orders of
the list (``orders.edit``); see ``services.order_memo``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.admin.order_views import PER_PAGE, _act, order_or_404
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import order_memo


def register(bp: Blueprint) -> None:
    @bp.post("/orders/<number>/memo")
    @staff_required("orders.edit")
    def order_memo_save(number: str) -> ResponseReturnValue:
        checked_form()
        order_or_404(number, "orders.edit")
        return _act(
            number,
            lambda: order_memo.staff_set_memo(
                actor_id(),
                number,
                memo=request.form.get("memo", ""),
                flag=request.form.get("flag", "0"),
            ),
            _k("Memo saved."),
        )

    @bp.post("/orders/flag")
    @staff_required("orders.edit")
    def orders_flag() -> ResponseReturnValue:
        """Flag the ticked orders of the list with one colour (批量插旗), or take flags off."""
        checked_form()
        numbers = request.form.getlist("numbers")[:PER_PAGE]
        back = url_for(".orders_list", **_list_args())
        try:
            changed = order_memo.staff_set_flags(actor_id(), numbers, request.form.get("flag", ""))
        except KoudaiError as exc:
            if exc.http_status == 403:
                abort(403)
            flash(refusal_text(exc), "error")
            return redirect(back, 303)
        flash(_k("%(count)d orders flagged.", count=changed), "success")
        return redirect(back, 303)


def _list_args() -> dict[str, Any]:
    """The list's filters, sent along with the form, so staff come back to the same list."""
    return {
        key.removeprefix("list-"): value
        for key, value in request.form.items()
        if key.startswith("list-") and value
    }
