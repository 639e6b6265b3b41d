"""The XML of Official Account pushes and passive replies (PROTOCOLS §3.1).

Inbound XML is parsed with ``defusedxml`` with DTDs refused outright, so a push can carry no
entity (no XXE, no entity expansion). Replies are built here with every text in CDATA.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from koudai_flask.connectors.wechat.oa_crypto import MessageCrypto

# A text message holds at most 2,048 characters; events are smaller still.
MAX_PUSH_BYTES = 64 * 1024


class MalformedPush(ValueError):
    """The body is not a WeChat push (not XML, a DTD, a missing field)."""


def parse_xml(body: bytes | str) -> dict[str, str]:
    """The child elements of the ``<xml>`` root as a flat ``{name: text}`` mapping."""
    try:
        root: Element = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise MalformedPush(f"not a WeChat XML push ({type(exc).__name__})") from None
    if root.tag != "xml":
        raise MalformedPush("the root element is not <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


@dataclass(frozen=True)
class InboundMessage:
    """One push from WeChat: a buyer's message or an event."""

    to_user: str
    from_user: str  # the sender's openid
    create_time: int
    msg_type: str  # text | image | voice | video | shortvideo | location | link | event
    msg_id: str | None = None
    content: str = ""
    event: str | None = None  # subscribe | unsubscribe | SCAN | CLICK | VIEW | LOCATION ...
    event_key: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """WeChat retries a push up to 3 times: messages repeat their MsgId; events repeat
        FromUserName + CreateTime (§3.1). The event name is part of an event's key, so two
        different events of one follower within the same second stay two."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.from_user}:{self.create_time}:{self.event or self.msg_type}"

    def summary(self) -> str:
        """What an agent reads for a message without text (an image, a location, ...)."""
        if self.msg_type == "text":
            return self.content
        if self.msg_type == "location":
            return (
                f"{self.fields.get('Label', '')} ({self.fields.get('Location_X', '')}, "
                f"{self.fields.get('Location_Y', '')})"
            )
        if self.msg_type == "link":
            return f"{self.fields.get('Title', '')} {self.fields.get('Url', '')}".strip()
        if self.msg_type == "voice" and self.fields.get("Recognition"):
            return self.fields["Recognition"]
        if self.msg_type == "event":
            return f"{self.event or ''} {self.event_key}".strip()
        return self.fields.get("PicUrl", "") or self.fields.get("MediaId", "")


def message_from_fields(values: dict[str, str]) -> InboundMessage:
    """An :class:`InboundMessage` from parsed fields; :class:`MalformedPush` if incomplete."""
    missing = [
        n for n in ("ToUserName", "FromUserName", "CreateTime", "MsgType") if not values.get(n)
    ]
    if missing:
        raise MalformedPush(f"missing {', '.join(missing)}")
    try:
        create_time = int(values["CreateTime"])
    except ValueError:
        raise MalformedPush("CreateTime is not a number") from None
    msg_type = values["MsgType"]
    event = values.get("Event") or None if msg_type == "event" else None
    if msg_type == "event" and not event:
        raise MalformedPush("an event without Event")
    msg_id = values.get("MsgId") or None
    return InboundMessage(
        to_user=values["ToUserName"][:64],
        from_user=values["FromUserName"][:64],
        create_time=create_time,
        msg_type=msg_type[:16],
        msg_id=msg_id[:64] if msg_id else None,
        content=values.get("Content", ""),
        event=event[:32] if event else None,
        event_key=values.get("EventKey", "")[:128],
        fields=values,
    )


def parse_message(body: bytes | str) -> InboundMessage:
    """A plain-mode push."""
    return message_from_fields(parse_xml(body))


def encrypted_part(body: bytes | str) -> str:
    """The ``<Encrypt>`` of a safe-mode push."""
    encrypted = parse_xml(body).get("Encrypt", "")
    if not encrypted:
        raise MalformedPush("a safe-mode push without Encrypt")
    return encrypted


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside CDATA: close the section there and open another.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(message: InboundMessage, content: str, *, now: int | None = None) -> str:
    """The passive text reply to ``message``: the same XML with To and From swapped."""
    created = int(time.time()) if now is None else now
    return (
        f"<xml><ToUserName>{_cdata(message.from_user)}</ToUserName>"
        f"<FromUserName>{_cdata(message.to_user)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType>{_cdata('text')}</MsgType>"
        f"<Content>{_cdata(content)}</Content></xml>"
    )


def encrypted_reply(crypto: MessageCrypto, reply: str, *, timestamp: str, nonce: str) -> str:
    """A safe-mode reply: ``reply`` encrypted and signed in WeChat's envelope."""
    encrypted = crypto.encrypt(reply)
    signature = crypto.msg_signature(timestamp, nonce, encrypted)
    return (
        f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt>"
        f"<MsgSignature>{_cdata(signature)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{_cdata(nonce)}</Nonce></xml>"
    )


def push_xml(values: dict[str, Any]) -> str:
    """A push as WeChat writes it (numbers bare, text in CDATA), for sandboxes and tests."""
    parts = []
    for name, value in values.items():
        text = str(value) if isinstance(value, int) else _cdata(str(value))
        parts.append(f"<{name}>{text}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"
