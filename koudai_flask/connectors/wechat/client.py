"""Customer-service messages of the Official Account API (the agent's reply to a buyer).

``POST /cgi-bin/message/custom/send?access_token=...`` with
``{"touser": OPENID, "msgtype": "text", "text": {"content": ...}}``. WeChat lets an account
answer this way only within 48 hours of the follower's last message (errcode 45015,
"response out of time limit") and a limited number of times per message (45047); both are
permanent for that reply. The token and its refresh are
:class:`koudai_flask.notifications.wechat.WechatClient`'s, shared with template messages.
"""

from __future__ import annotations

from koudai_flask.notifications.wechat import WechatClient, client_from_config

CUSTOM_SEND = "/cgi-bin/message/custom/send"
# The 48-hour window has closed; too many replies to one message.
OUT_OF_TIME = 45015
OUT_OF_COUNT = 45047
# WeChat refuses a text message longer than 2,048 bytes... in practice characters.
MAX_TEXT = 2000


def send_text(api: WechatClient, openid: str, content: str) -> None:
    """Send ``content`` to ``openid`` as a customer-service text message."""
    api.call(
        CUSTOM_SEND,
        {"touser": openid, "msgtype": "text", "text": {"content": content[:MAX_TEXT]}},
    )


__all__ = ["CUSTOM_SEND", "MAX_TEXT", "WechatClient", "client_from_config", "send_text"]
