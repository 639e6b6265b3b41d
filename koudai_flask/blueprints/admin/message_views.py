"""The words of the buyer messages, one per (event, channel) (``marketing.manage``).

What buyers are told is the shop's voice, so it belongs to marketing, not to everyone who
may read orders. A template is tried on sample data before it is saved; empty parts fall
back to the built-in words.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select

from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, PermissionDenied
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.models import MessageTemplate
from koudai_flask.notifications import CHANNELS, EVENTS, render
from koudai_flask.services import catalog_admin
from koudai_flask.services.transaction import current_session

CHANNEL_LABELS = {"wechat": _l("WeChat"), "sms": _l("Text message"), "email": _l("Email")}


def _templates() -> dict[tuple[str, str], MessageTemplate]:
    rows = current_session().scalars(select(MessageTemplate))
    return {(row.event, row.channel): row for row in rows}


def _default(event: str, channel: str) -> render.Wording:
    return render.default_wording(event, channel, current_app.config["KOUDAI_DEFAULT_LOCALE"])


def register(bp: Blueprint) -> None:
    @bp.get("/messages")
    @staff_required("marketing.manage")
    def message_templates() -> ResponseReturnValue:
        saved = _templates()
        return render_template(
            "koudai/admin/messages.html",
            events=EVENTS,
            channels=CHANNELS,
            saved=saved,
            default=_default,
            channel_labels=CHANNEL_LABELS,
        )

    @bp.route("/messages/<event>/<channel>", methods=["GET", "POST"])
    @staff_required("marketing.manage")
    def message_template_edit(event: str, channel: str) -> ResponseReturnValue:
        if event not in EVENTS or channel not in CHANNELS:
            abort(404)
        row = _templates().get((event, channel))
        values = {
            "subject": row.subject if row else "",
            "body": row.body if row else "",
            "wechat_template_id": (row.wechat_template_id or "") if row else "",
        }
        error = None
        if request.method == "POST":
            checked_form()
            values = {key: request.form.get(key, "").strip() for key in values}
            try:
                catalog_admin.save_message_template(
                    actor_id(),
                    event,
                    channel,
                    subject=values["subject"] if channel == "email" else "",
                    body=values["body"],
                    wechat_template_id=values["wechat_template_id"]
                    if channel == "wechat"
                    else None,
                )
            except PermissionDenied:
                abort(403)
            except KoudaiError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Message saved."), "success")
                return redirect(url_for(".message_templates"), 303)
        return render_template(
            "koudai/admin/message_form.html",
            event=event,
            channel=channel,
            channel_label=CHANNEL_LABELS[channel],
            values=values,
            default=_default(event, channel),
            variables=render.variables_for(event),
            error=error,
            form=FlaskForm(),
        ), (422 if error else 200)
