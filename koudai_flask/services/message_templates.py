"""The shop's own words for buyer messages: one template per (event, channel), checked.

A template is tried on sample data before it is saved, so a send never meets one that cannot
render; empty parts fall back to the built-in words of :mod:`koudai_flask.notifications.render`.
"""

from __future__ import annotations

import re

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from koudai_flask.errors import ValidationError
from koudai_flask.models import MessageTemplate
from koudai_flask.notifications import CHANNELS, EVENTS, render
from koudai_flask.services import staff
from koudai_flask.services.transaction import unit_of_work

_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STOCK_EVENT = "back_in_stock"  # services.stock_alerts: no order, its template id a setting


def save_template(
    event: str,
    channel: str,
    *,
    subject: str = "",
    body: str = "",
    wechat_template_id: str | None = None,
    actor: str = "system",
) -> MessageTemplate:
    """Save the words of one (event, channel) message; a template that cannot render is
    refused with ``ValidationError`` (it is tried on sample data). Empty parts mean the
    built-in words."""
    check_event(event)
    if channel not in CHANNELS:
        raise ValidationError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    template_id = (wechat_template_id or "").strip() or None
    if template_id is not None and event == STOCK_EVENT:
        raise ValidationError(
            "the back-in-stock template id is the setting KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE: "
            "whether a product page offers the alert is known without asking the database",
            {"wechat_template_id": ["a setting"]},
            reason="template_id_setting",
        )
    if template_id is not None and (channel != "wechat" or not _TEMPLATE_ID.match(template_id)):
        raise ValidationError(
            "wechat_template_id is for WeChat only: the id (letters, digits, - and _) from "
            "the Official Account's template library",
            {"wechat_template_id": ["invalid"]},
            reason="template_id",
        )
    locale = current_app.config["KOUDAI_DEFAULT_LOCALE"]
    default = render.default_wording(event, channel, locale)
    render.check(event, channel, render.Wording(subject or default.subject, body or default.body))
    values = {"subject": subject, "body": body, "wechat_template_id": template_id}
    for attempt in (1, 2):
        try:
            with unit_of_work() as session:
                row = session.scalar(
                    select(MessageTemplate).where(
                        MessageTemplate.event == event, MessageTemplate.channel == channel
                    )
                )
                before = None
                if row is None:
                    row = MessageTemplate(event=event, channel=channel)
                    session.add(row)
                else:
                    before = {key: getattr(row, key) for key in values}
                for key, value in values.items():
                    setattr(row, key, value)
                session.flush()
                staff.audit(actor, "template.save", "message_template", str(row.id), before, values)
                return row
        except IntegrityError:
            if attempt == 2:  # two first saves at once: the second updates the first's row
                raise
    raise AssertionError("unreachable")


def check_event(event: str) -> None:
    if event not in EVENTS:
        raise ValidationError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
