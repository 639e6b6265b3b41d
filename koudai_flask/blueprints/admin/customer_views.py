"""Customers as staff see them: within their channel scope (the CRM builds on this)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from koudai_flask.blueprints.admin.common import acting, actor_id, staff_required
from koudai_flask.blueprints.common import page_number
from koudai_flask.errors import NotFound
from koudai_flask.services import backoffice
from koudai_flask.services.transaction import current_session

PER_PAGE = 30


def register(bp: Blueprint) -> None:
    @bp.get("/customers")
    @staff_required("customers.view")
    def customers_list() -> ResponseReturnValue:
        q = request.args.get("q", "").strip()[:100] or None
        page = page_number()
        query = backoffice.customer_query(acting(), q)
        session = current_session()
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
        return render_template(
            "koudai/admin/customers.html",
            customers=rows,
            total=total,
            page=page,
            pages=max(1, -(-(total or 0) // PER_PAGE)),
            q=q,
        )

    @bp.get("/customers/<int:customer_id>")
    @staff_required("customers.view")
    def customer_detail(customer_id: int) -> ResponseReturnValue:
        try:
            customer, orders = backoffice.customer_for(actor_id(), customer_id)
        except NotFound:
            abort(404)
        return render_template("koudai/admin/customer.html", customer=customer, orders=orders)
