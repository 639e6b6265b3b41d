"""The customer-service inbox of the WeChat Official Account.

A conversation is a follower's thread, shown under the customer their openid is linked to.
Agents read with ``customers.view`` and reply with ``customers.edit``; a reply goes out as a
customer-service message, which WeChat accepts only within 48 hours of the follower's last
own message. The Official Account is the ``wechat`` channel of the staff scope: unscoped
staff see every conversation, staff scoped to channels see them only when one of their
channels is of kind ``wechat``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import Select, exists, select, update

from koudai_flask.connectors.errors import ConnectorError
from koudai_flask.connectors.wechat import client as oa_client
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import Channel, Customer, StaffMember, WechatFollower, WechatMessage
from koudai_flask.models.base import utcnow
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.wechat")

REPLY_WINDOW = timedelta(hours=48)


def sees_inbox(member: StaffMember) -> bool:
    scope = staff.visible_channels(member)
    if scope is None:
        return True
    return bool(
        current_session().scalar(
            select(exists().where(Channel.name.in_(scope), Channel.kind == "wechat"))
        )
    )


def conversation_query(
    member: StaffMember, *, unread_only: bool = False
) -> Select[WechatFollower, Customer]:
    """Followers with a thread, most recent first, with their customers."""
    query = (
        select(WechatFollower, Customer)
        .outerjoin(Customer, Customer.id == WechatFollower.customer_id)
        .where(WechatFollower.last_message_at.is_not(None))
        .order_by(WechatFollower.last_message_at.desc(), WechatFollower.id.desc())
    )
    if unread_only:
        query = query.where(WechatFollower.unread > 0)
    if not sees_inbox(member):
        query = query.where(WechatFollower.id.is_(None))
    return query


@dataclass(frozen=True)
class Thread:
    customer: Customer
    followers: list[WechatFollower]
    messages: list[WechatMessage]

    @property
    def reply_to(self) -> WechatFollower | None:
        """The follower a reply goes to: the one who wrote last."""
        writing = [f for f in self.followers if f.last_inbound_at is not None]
        return max(writing, key=lambda f: f.last_inbound_at) if writing else None  # type: ignore[arg-type,return-value]

    def window_open(self) -> bool:
        follower = self.reply_to
        return bool(
            follower
            and follower.last_inbound_at
            and utcnow() - follower.last_inbound_at < REPLY_WINDOW
        )


def thread(user_id: str, customer_id: int, *, mark_read: bool = True, limit: int = 200) -> Thread:
    """A customer's WeChat conversation (NotFound out of scope); reading it marks it read."""
    with unit_of_work() as session:
        member = staff.require(user_id, "customers.view")
        customer = session.get(Customer, customer_id)
        if customer is None or not sees_inbox(member):
            raise NotFound(f"unknown customer {customer_id}")
        followers = list(
            session.scalars(
                select(WechatFollower)
                .where(WechatFollower.customer_id == customer_id)
                .order_by(WechatFollower.id)
            )
        )
        ids = [f.id for f in followers]
        messages = list(
            session.scalars(
                select(WechatMessage)
                .where(WechatMessage.follower_id.in_(ids))
                .order_by(WechatMessage.id.desc())
                .limit(limit)
            )
        )[::-1]
        if mark_read and any(f.unread for f in followers):
            session.execute(
                update(WechatFollower).where(WechatFollower.id.in_(ids)).values(unread=0)
            )
            for follower in followers:
                session.refresh(follower)
        return Thread(customer, followers, messages)


def reply(user_id: str, customer_id: int, text: str) -> WechatMessage:
    """Send ``text`` to the customer's follower as a customer-service message.

    The message is recorded ``sent`` or, when WeChat refuses it, ``failed`` with the
    reason, which is raised as the connector's typed error after it was recorded.
    """
    text = text.strip()
    if not 1 <= len(text) <= oa_client.MAX_TEXT:
        raise ValidationError(
            f"a reply is 1 to {oa_client.MAX_TEXT} characters",
            {"text": ["length"]},
            reason="reply_length",
            detail={"most": oa_client.MAX_TEXT},
        )
    settings = current_app.config["KOUDAI_WECHAT"]
    if not settings:
        raise ValidationError(
            "KOUDAI_WECHAT is not set: replies cannot be sent", reason="wechat_off"
        )
    session = current_session()
    try:
        member = staff.require(user_id, "customers.edit")
        if session.get(Customer, customer_id) is None or not sees_inbox(member):
            raise NotFound(f"unknown customer {customer_id}")
        current = thread(user_id, customer_id, mark_read=False, limit=1)
        follower = current.reply_to
        if follower is None:
            raise ValidationError(
                "this customer has not written to the Official Account", reason="never_wrote"
            )
        if not current.window_open():
            raise ValidationError(
                "WeChat allows replies only within 48 hours of the buyer's last message",
                {"text": ["window closed"]},
                reason="reply_window",
            )
        follower_id, openid = follower.id, follower.openid
    finally:
        session.rollback()  # no transaction stays open across the remote call
    error: ConnectorError | None = None
    try:
        with oa_client.client_from_config(settings, get_state().get_engine()) as api:
            oa_client.send_text(api, openid, text)
    except ConnectorError as exc:
        error = exc
        log.warning("wechat: reply to follower %s failed: %s", follower_id, exc.message)
    with unit_of_work() as session:
        row = WechatMessage(
            follower_id=follower_id,
            direction="out",
            msg_type="text",
            content=text,
            status="failed" if error else "sent",
            author=str(user_id),
            error=error.message[:300] if error else None,
        )
        session.add(row)
        session.execute(
            update(WechatFollower)
            .where(WechatFollower.id == follower_id)
            .values(last_message_at=utcnow(), last_preview=text[:120], unread=0)
        )
        session.flush()
        staff.audit(
            f"staff:{user_id}",
            "wechat.reply",
            "customer",
            str(customer_id),
            None,
            {"status": row.status, "message_id": row.id},
        )
    if error is not None:
        raise error
    return row
