"""Social channels: the WeChat Official Account (followers, messages, keyword replies) and
Weibo reputation monitoring (mentions and comments, keyword rules, alerts, cursors)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from koudai_flask.models.base import Base, Timestamped, utcnow


class WechatFollower(Base, Timestamped):
    """One openid of the Official Account: its customer, whether it follows, its inbox thread."""

    __tablename__ = "koudai_wechat_follower"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    subscribed: Mapped[bool] = mapped_column(default=False)
    subscribed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # The QR-code scene of the last subscribe or scan ("qrscene_" removed).
    scene: Mapped[str | None] = mapped_column(String(64))
    # The follower's last own message: customer-service replies are allowed for 48 hours.
    last_inbound_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None] = mapped_column(index=True)
    last_preview: Mapped[str] = mapped_column(String(120), default="")
    unread: Mapped[int] = mapped_column(default=0)


class WechatMessage(Base, Timestamped):
    """A message or event of a follower (``in``), or what we sent them (``out``)."""

    __tablename__ = "koudai_wechat_message"
    __table_args__ = (
        # WeChat's retries of one push: MsgId, or FromUserName + CreateTime (+ Event).
        UniqueConstraint("dedupe_key"),
        Index("ix_koudai_wechat_message_follower_time", "follower_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("koudai_wechat_follower.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    msg_type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(128), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    remote_created_at: Mapped[datetime | None]
    # Inbound: the passive reply we answered, so a retry gets the same answer.
    # Outbound: ``auto`` (passive keyword reply), ``sent`` or ``failed`` (agent's reply).
    reply: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="received")
    author: Mapped[str | None] = mapped_column(String(80))
    error: Mapped[str | None] = mapped_column(String(300))


class AutoReplyRule(Base, Timestamped):
    """A keyword (or menu key, or the subscribe event) and the text answered to it."""

    __tablename__ = "koudai_wechat_autoreply"
    __table_args__ = (UniqueConstraint("trigger", "keyword"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # keyword (a text message) | click (a menu's EventKey) | subscribe (welcome message)
    trigger: Mapped[str] = mapped_column(String(16))
    # exact | contains (keyword rules; the others match exactly)
    match: Mapped[str] = mapped_column(String(16), default="exact")
    keyword: Mapped[str] = mapped_column(String(64), default="")
    reply: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WeiboPost(Base, Timestamped):
    """A status that mentions the brand, or a comment to or about it, as Weibo gave it."""

    __tablename__ = "koudai_weibo_post"
    __table_args__ = (UniqueConstraint("kind", "weibo_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # mention | comment | search
    weibo_id: Mapped[str] = mapped_column(String(32))
    uid: Mapped[str] = mapped_column(String(32), index=True)
    screen_name: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    posted_at: Mapped[datetime | None]
    # A comment's status (the post it answers).
    status_id: Mapped[str | None] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WeiboKeywordRule(Base, Timestamped):
    """A word whose appearance in a mention or comment raises an alert."""

    __tablename__ = "koudai_weibo_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    keyword: Mapped[str] = mapped_column(String(64), unique=True)
    severity: Mapped[str] = mapped_column(String(16), default="warning")  # info|warning|critical
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(80), default="system")


class WeiboAlert(Base, Timestamped):
    """A post that matched a rule, until someone in the back office deals with it."""

    __tablename__ = "koudai_weibo_alert"
    __table_args__ = (
        UniqueConstraint("post_id", "rule_id"),
        Index("ix_koudai_weibo_alert_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("koudai_weibo_post.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("koudai_weibo_rule.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(80))


class WeiboCursor(Base):
    """Where polling a Weibo stream stopped: the highest id seen (``since_id``)."""

    __tablename__ = "koudai_weibo_cursor"

    id: Mapped[int] = mapped_column(primary_key=True)
    stream: Mapped[str] = mapped_column(String(80), unique=True)
    since_id: Mapped[str] = mapped_column(String(32), default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
