"""Official Account pushes applied to the shop, and the keyword auto-replies staff set.

One push is one transaction: the follower (and the customer its openid is linked to), the
message in the follower's inbox thread, tags, and the passive reply, which is stored with
the message. WeChat retries a push it got no answer to within 5 s, up to 3 times; a retry
carries the same MsgId (events: FromUserName + CreateTime), finds the stored message, changes
nothing and gets the same reply.

- ``subscribe``: the follower follows again; their customer gets the ``subscribe_tag`` and
  the tag ``scene_tags`` maps the QR-code scene to (``EventKey`` ``qrscene_<scene>``);
  the ``subscribe`` auto-reply, if any, welcomes them.
- ``unsubscribe``: recorded on the follower (tags stay: they describe the past).
- ``SCAN`` (a follower scanned a QR code): the scene's tag. ``CLICK``: the ``click``
  auto-reply for the menu key. A text message: the ``keyword`` auto-reply it matches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from koudai_flask.connectors.wechat.oa_messages import InboundMessage, text_reply
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import AutoReplyRule, WechatFollower, WechatMessage
from koudai_flask.models.base import utcnow
from koudai_flask.schemas import length_messages
from koudai_flask.services import identities, outbox, staff, tags
from koudai_flask.services.transaction import (
    current_session,
    insert_ignoring_duplicate,
    unit_of_work,
)

log = logging.getLogger("koudai_flask.wechat")

TRIGGERS = ("keyword", "click", "subscribe")
MATCHES = ("exact", "contains")
MAX_REPLY = 2000
SCENE_PREFIX = "qrscene_"


def _follower(session: Session, openid: str) -> WechatFollower:
    found = session.scalar(select(WechatFollower).where(WechatFollower.openid == openid))
    if found is not None:
        return found
    insert_ignoring_duplicate(
        session,
        WechatFollower,
        {
            "openid": openid,
            "subscribed": False,
            "last_preview": "",
            "unread": 0,
            "created_at": utcnow(),
        },
    )
    return session.execute(
        select(WechatFollower).where(WechatFollower.openid == openid)
    ).scalar_one()


def _stored_reply(session: Session, key: str) -> str | None:
    return session.scalar(select(WechatMessage.reply).where(WechatMessage.dedupe_key == key))


def receive(
    message: InboundMessage,
    *,
    subscribe_tag: str | None = None,
    scene_tags: Mapping[str, str] | None = None,
) -> str | None:
    """Apply one push; return the passive reply XML (plain), or None for no reply."""
    key = message.dedupe_key
    with unit_of_work() as session:
        if session.scalar(select(WechatMessage.id).where(WechatMessage.dedupe_key == key)):
            return _stored_reply(session, key)
        follower = _follower(session, message.from_user)
        now = utcnow()
        message_id = insert_ignoring_duplicate(
            session,
            WechatMessage,
            {
                "follower_id": follower.id,
                "direction": "in",
                "msg_type": message.msg_type,
                "event": message.event,
                "event_key": message.event_key,
                "content": message.summary()[:4000],
                "dedupe_key": key,
                "remote_created_at": datetime.fromtimestamp(message.create_time, UTC),
                "status": "received",
                "created_at": now,
            },
        )
        if message_id is None:  # a retry that raced the first delivery: it committed first
            return _stored_reply(session, key)
        text = _apply(session, follower, message, subscribe_tag, scene_tags or {}, now)
        reply = None
        if text:
            reply = text_reply(message, text)
            session.get_one(WechatMessage, message_id).reply = reply
            session.add(
                WechatMessage(
                    follower_id=follower.id,
                    direction="out",
                    msg_type="text",
                    content=text,
                    status="auto",
                    created_at=now,
                )
            )
        outbox.record(
            session,
            "wechat.message_received",
            {
                "follower_id": follower.id,
                "customer_id": follower.customer_id,
                "msg_type": message.msg_type,
                "event": message.event,
            },
        )
        return reply


def _apply(
    session: Session,
    follower: WechatFollower,
    message: InboundMessage,
    subscribe_tag: str | None,
    scene_tags: Mapping[str, str],
    now: datetime,
) -> str | None:
    """The push's effects on the follower; returns the auto-reply text, if any."""
    if follower.customer_id is None and message.event != "unsubscribe":
        follower.customer_id = identities.link_identity("wechat_openid", follower.openid)
    follower.last_message_at = now
    follower.last_preview = message.summary()[:120]
    event = message.event
    if event is None:
        follower.last_inbound_at = now
        # In SQL, so that two messages of one follower at once both count.
        follower.unread = WechatFollower.unread + 1
        if message.msg_type == "text":
            return keyword_reply(message.content)
        return None
    if event == "subscribe":
        follower.subscribed, follower.subscribed_at, follower.unsubscribed_at = True, now, None
        scene = message.event_key.removeprefix(SCENE_PREFIX) if message.event_key else ""
        follower.scene = scene[:64] or follower.scene
        _tag(follower, subscribe_tag)
        _tag(follower, scene_tags.get(scene) if scene else None)
        return _rule_reply("subscribe", "")
    if event == "unsubscribe":
        follower.subscribed, follower.unsubscribed_at = False, now
        return None
    if event == "SCAN":
        follower.scene = message.event_key[:64] or follower.scene
        _tag(follower, scene_tags.get(message.event_key))
        return None
    if event == "CLICK":
        return _rule_reply("click", message.event_key)
    return None


def _tag(follower: WechatFollower, name: str | None) -> None:
    if not name or follower.customer_id is None:
        return
    try:
        tags.add_tag(follower.customer_id, name, source="wechat")
    except ValidationError as exc:
        # A tag computed by a rule cannot be set by hand: the push still counts.
        log.warning("wechat: tag %r not set on customer %s: %s", name, follower.customer_id, exc)


def _rule_reply(trigger: str, key: str) -> str | None:
    return current_session().scalar(
        select(AutoReplyRule.reply).where(
            AutoReplyRule.trigger == trigger,
            AutoReplyRule.keyword == key,
            AutoReplyRule.active.is_(True),
        )
    )


def keyword_reply(content: str) -> str | None:
    """The reply of the rule ``content`` matches: an exact keyword first (letter case
    ignored), else the longest keyword ``content`` contains."""
    text = content.strip().casefold()
    if not text:
        return None
    rules = (
        current_session()
        .scalars(
            select(AutoReplyRule).where(
                AutoReplyRule.trigger == "keyword", AutoReplyRule.active.is_(True)
            )
        )
        .all()
    )
    for rule in rules:
        if rule.keyword.casefold() == text:
            return rule.reply
    contained = [r for r in rules if r.match == "contains" and r.keyword.casefold() in text]
    if not contained:
        return None
    return max(contained, key=lambda r: (len(r.keyword), -r.id)).reply


# -- the auto-reply rules (marketing.manage) -------------------------------------------------


def rules() -> list[AutoReplyRule]:
    return list(
        current_session().scalars(
            select(AutoReplyRule).order_by(AutoReplyRule.trigger, AutoReplyRule.keyword)
        )
    )


def save_rule(
    user_id: str | None,
    *,
    trigger: str,
    keyword: str,
    reply: str,
    match: str = "exact",
    active: bool = True,
) -> AutoReplyRule:
    """Create the rule for (trigger, keyword), or change it; audited.

    ``user_id`` is the staff member (who needs ``marketing.manage``); None is the system.
    """
    keyword, reply = " ".join(keyword.split()), reply.strip()
    errors: dict[str, list[str]] = {}
    if trigger not in TRIGGERS:
        errors["trigger"] = [f"Must be one of: {', '.join(TRIGGERS)}."]
    if match not in MATCHES:
        errors["match"] = [f"Must be one of: {', '.join(MATCHES)}."]
    if trigger == "subscribe":
        keyword, match = "", "exact"
    elif refused := length_messages(keyword, least=1, most=64):
        errors["keyword"] = refused
    if refused := length_messages(reply, least=1, most=MAX_REPLY):
        errors["reply"] = refused
    if errors:
        raise ValidationError("the auto-reply rule is not valid", errors)
    with unit_of_work() as session:
        actor = "system"
        if user_id is not None:
            actor = f"staff:{staff.require(user_id, 'marketing.manage').user_id}"
        rule = session.scalar(
            select(AutoReplyRule).where(
                AutoReplyRule.trigger == trigger, AutoReplyRule.keyword == keyword
            )
        )
        before = _describe(rule) if rule else None
        if rule is None:
            rule = AutoReplyRule(trigger=trigger, keyword=keyword, reply=reply)
            session.add(rule)
        rule.reply, rule.match, rule.active = reply, match, active
        session.flush()
        staff.audit(
            actor, "wechat.autoreply_saved", "autoreply", str(rule.id), before, _describe(rule)
        )
        return rule


def delete_rule(user_id: str, rule_id: int) -> None:
    with unit_of_work() as session:
        member = staff.require(user_id, "marketing.manage")
        rule = session.get(AutoReplyRule, rule_id)
        if rule is None:
            raise NotFound(f"unknown auto-reply rule {rule_id}")
        staff.audit(
            f"staff:{member.user_id}",
            "wechat.autoreply_deleted",
            "autoreply",
            str(rule.id),
            _describe(rule),
            None,
        )
        session.delete(rule)


def _describe(rule: AutoReplyRule) -> dict[str, Any]:
    return {
        "trigger": rule.trigger,
        "keyword": rule.keyword,
        "match": rule.match,
        "active": rule.active,
        "reply": rule.reply[:200],
    }
