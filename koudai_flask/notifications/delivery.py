"""Handing one rendered message to its channel: WeChat, SMS or e-mail.

The service reads and renders everything first (:class:`Outgoing` holds plain values, no
ORM objects), ends its transaction, and only then calls :func:`deliver`, so no database
transaction waits on a remote server.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from koudai_flask.connectors.errors import PermanentFailure
from koudai_flask.extension import get_state
from koudai_flask.notifications import sms, wechat
from koudai_flask.notifications.email import mailer_from_config
from koudai_flask.notifications.render import RenderedMessage


@dataclass(frozen=True)
class Outgoing:
    """Everything a channel needs, read before the transaction ends: no ORM objects."""

    id: int
    channel: str
    recipient: str
    message: RenderedMessage
    wechat_template_id: str | None
    client_msg_id: str


def deliver(outgoing: Outgoing) -> str:
    """Hand one message to its channel; returns the channel's message id."""
    config = current_app.config
    message = outgoing.message
    if outgoing.channel == "wechat":
        if not config["KOUDAI_WECHAT"]:
            raise PermanentFailure("KOUDAI_WECHAT is not set any more")
        assert outgoing.wechat_template_id is not None
        with wechat.client_from_config(config["KOUDAI_WECHAT"], get_state().get_engine()) as api:
            return api.send_template(
                outgoing.recipient,
                outgoing.wechat_template_id,
                message.wechat_fields,
                url=message.url,
                client_msg_id=outgoing.client_msg_id,
            )
    if outgoing.channel == "sms":
        provider = sms.get_provider()
        if provider is None:
            raise PermanentFailure("KOUDAI_SMS is not set any more")
        return provider.send(outgoing.recipient, message.text)
    if outgoing.channel == "email":
        if not config["KOUDAI_MAIL"]:
            raise PermanentFailure("KOUDAI_MAIL is not set any more")
        mailer = mailer_from_config(config["KOUDAI_MAIL"])
        return mailer.send(outgoing.recipient, message.subject, message.text, message.html)
    raise PermanentFailure(f"unknown notification channel {outgoing.channel!r}")
