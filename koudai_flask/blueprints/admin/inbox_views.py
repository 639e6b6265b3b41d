"""The WeChat customer-service inbox: conversations (``customers.view``) and replies
(``customers.edit``), within the staff member's scope (see :mod:`services.inbox`)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import func, select

from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.blueprints.common import page_number
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.connectors.errors import ConnectorError
from koudai_flask.errors import KoudaiError, NotFound, PermissionDenied
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import inbox
from koudai_flask.services.transaction import current_session

PER_PAGE = 30


def register(bp: Blueprint) -> None:
    @bp.get("/inbox")
    @staff_required("customers.view")
    def inbox_list() -> ResponseReturnValue:
        unread_only = request.args.get("unread") == "1"
        page = page_number()
        query = inbox.conversation_query(acting(), unread_only=unread_only)
        session = current_session()
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = session.execute(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
        return render_template(
            "koudai/admin/inbox.html",
            rows=rows,
            total=total or 0,
            page=page,
            pages=max(1, -(-(total or 0) // PER_PAGE)),
            unread_only=unread_only,
        )

    @bp.get("/inbox/<int:customer_id>")
    @staff_required("customers.view")
    def inbox_thread(customer_id: int) -> ResponseReturnValue:
        try:
            conversation = inbox.thread(actor_id(), customer_id)
        except NotFound:
            abort(404)
        return render_template(
            "koudai/admin/inbox_thread.html", thread=conversation, form=FlaskForm()
        )

    @bp.post("/inbox/<int:customer_id>/reply")
    @staff_required("customers.edit")
    def inbox_reply(customer_id: int) -> ResponseReturnValue:
        checked_form()
        try:
            inbox.reply(actor_id(), customer_id, request.form.get("text", ""))
        except PermissionDenied:
            abort(403)
        except NotFound:
            abort(404)
        except ConnectorError as exc:
            flash(_k("WeChat refused the reply: %(reason)s", reason=refusal_text(exc)), "error")
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return redirect(url_for(".inbox_thread", customer_id=customer_id), 303)
        else:
            flash(_k("Reply sent."), "success")
        return redirect(url_for(".inbox_thread", customer_id=customer_id), 303)
