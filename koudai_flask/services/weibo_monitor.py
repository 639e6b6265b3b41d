"""Weibo reputation monitoring: poll the brand's mentions and comments, match keyword rules,
raise alerts, and link a Weibo user to a customer.

Each stream (``mentions``, ``comments_to_me``, ``comment_mentions`` and, with the
commercial search API, ``search:<keyword>`` per active rule) is read from its ``since_id``
cursor; its new posts, their alerts and the moved cursor are one transaction, so a failed
pass reads the same posts again and stores each once (posts are unique per kind and id,
alerts per post and rule). Remote calls hold no transaction open. A rule matches a post
whose text contains its keyword (letter case ignored); rules apply to posts polled after
they were made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from flask import current_app
from sqlalchemy import Select, exists, select, update

from koudai_flask.connectors.errors import ConnectorError, RateLimited
from koudai_flask.connectors.weibo.client import STREAMS, WeiboClient, WeiboRecord
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import (
    Channel,
    CustomerIdentity,
    StaffMember,
    WeiboAlert,
    WeiboCursor,
    WeiboKeywordRule,
    WeiboPost,
)
from koudai_flask.models.base import utcnow
from koudai_flask.schemas import length_messages
from koudai_flask.services import identities, outbox, staff
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.weibo")

SEVERITIES = ("info", "warning", "critical")
SEARCH_PREFIX = "search:"


def client_from_config() -> WeiboClient:
    settings = current_app.config["KOUDAI_WEIBO"]
    if settings is None:
        raise ValidationError("KOUDAI_WEIBO is not set: Weibo monitoring is off")
    return WeiboClient(settings)


def _cursor(stream: str) -> str:
    session = current_session()
    try:
        return (
            session.scalar(select(WeiboCursor.since_id).where(WeiboCursor.stream == stream)) or "0"
        )
    finally:
        session.rollback()


def poll(client: WeiboClient | None = None) -> int:
    """Read every stream once; returns the number of new posts stored.

    A rate limit ends the pass (the next one continues from the cursors); any other
    connector error skips its stream and is raised after the others were read.
    """
    own = client is None
    api = client or client_from_config()
    streams: list[tuple[str, Callable[[str], list[WeiboRecord]]]] = [
        (name, partial(api.stream, name)) for name in STREAMS
    ]
    if api.can_search:
        for keyword in _active_keywords():
            streams.append((f"{SEARCH_PREFIX}{keyword}", partial(api.search, keyword)))
    stored, failure = 0, None
    try:
        for stream, read in streams:
            try:
                records = read(_cursor(stream))
            except RateLimited:
                raise
            except ConnectorError as exc:
                log.warning("weibo: stream %s failed: %s", stream, exc.message)
                failure = failure or exc
                continue
            stored += store(stream, records)
    finally:
        if own:
            api.close()
    if failure is not None:
        raise failure
    return stored


def poll_due() -> int:
    """The periodic job: one pass, errors logged (the next pass retries from the cursors)."""
    try:
        return poll()
    except ConnectorError as exc:
        log.warning("weibo: polling stopped: %s", exc.message)
        return 0


def _active_keywords() -> list[str]:
    session = current_session()
    try:
        return list(
            session.scalars(
                select(WeiboKeywordRule.keyword)
                .where(WeiboKeywordRule.active.is_(True))
                .order_by(WeiboKeywordRule.id)
            )
        )
    finally:
        session.rollback()


def store(stream: str, records: list[WeiboRecord]) -> int:
    """Store one stream's new posts with their alerts and move its cursor; one transaction."""
    own_uid = (current_app.config["KOUDAI_WEIBO"] or {}).get("uid")
    with unit_of_work() as session:
        cursor = session.scalar(select(WeiboCursor).where(WeiboCursor.stream == stream))
        if cursor is None:
            cursor = WeiboCursor(stream=stream, since_id="0")
            session.add(cursor)
        rules = list(session.scalars(select(WeiboKeywordRule).where(WeiboKeywordRule.active)))
        stored = 0
        for record in records:
            if int(record.weibo_id) > int(cursor.since_id):
                cursor.since_id = record.weibo_id
            if own_uid and record.uid == own_uid:
                continue  # the brand's own replies
            known = session.scalar(
                select(WeiboPost.id).where(
                    WeiboPost.kind == record.kind, WeiboPost.weibo_id == record.weibo_id
                )
            )
            if known is not None:
                continue
            post = WeiboPost(
                kind=record.kind,
                weibo_id=record.weibo_id,
                uid=record.uid,
                screen_name=record.screen_name,
                text=record.text,
                posted_at=record.posted_at,
                status_id=record.status_id,
                customer_id=_customer_of(record.uid),
                raw=record.raw,
            )
            session.add(post)
            session.flush()
            stored += 1
            for rule in matching_rules(record.text, rules):
                alert = WeiboAlert(post_id=post.id, rule_id=rule.id, status="open")
                session.add(alert)
                session.flush()
                outbox.record(
                    session,
                    "weibo.alert",
                    {"alert_id": alert.id, "keyword": rule.keyword, "severity": rule.severity},
                )
        cursor.updated_at = utcnow()
        return stored


def matching_rules(text: str, rules: list[WeiboKeywordRule]) -> list[WeiboKeywordRule]:
    folded = text.casefold()
    return [r for r in rules if r.active and r.keyword.casefold() in folded]


def _customer_of(uid: str) -> int | None:
    if not uid:
        return None
    owner = current_session().scalar(
        select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "weibo_uid", CustomerIdentity.value == uid
        )
    )
    return identities.resolve(owner) if owner is not None else None


# -- what staff see and do -------------------------------------------------------------------


def sees_weibo(member: StaffMember) -> bool:
    """Unscoped staff see Weibo; staff scoped to channels, when one is of kind ``weibo``."""
    scope = staff.visible_channels(member)
    if scope is None:
        return True
    session = current_session()
    return bool(
        session.scalar(select(exists().where(Channel.name.in_(scope), Channel.kind == "weibo")))
    )


def alert_query(
    member: StaffMember, status: str | None = "open"
) -> Select[WeiboAlert, WeiboPost, WeiboKeywordRule]:
    query = (
        select(WeiboAlert, WeiboPost, WeiboKeywordRule)
        .join(WeiboPost, WeiboPost.id == WeiboAlert.post_id)
        .join(WeiboKeywordRule, WeiboKeywordRule.id == WeiboAlert.rule_id)
        .order_by(WeiboAlert.id.desc())
    )
    if status:
        query = query.where(WeiboAlert.status == status)
    if not sees_weibo(member):
        query = query.where(WeiboAlert.id.is_(None))
    return query


def resolve_alert(user_id: str, alert_id: int) -> WeiboAlert:
    with unit_of_work() as session:
        member = staff.require(user_id, "customers.edit")
        alert = session.get(WeiboAlert, alert_id)
        if alert is None or not sees_weibo(member):
            raise NotFound(f"unknown alert {alert_id}")
        if alert.status != "resolved":
            alert.status, alert.resolved_at, alert.resolved_by = "resolved", utcnow(), user_id
            staff.audit(
                f"staff:{user_id}",
                "weibo.alert_resolved",
                "weibo_alert",
                str(alert.id),
                {"status": "open"},
                {"status": "resolved"},
            )
        return alert


def add_rule(user_id: str | None, keyword: str, severity: str = "warning") -> WeiboKeywordRule:
    """A keyword rule (``marketing.manage``; None is the system)."""
    keyword = " ".join(keyword.split())
    errors: dict[str, list[str]] = {}
    if refused := length_messages(keyword, least=1, most=64):
        errors["keyword"] = refused
    if severity not in SEVERITIES:
        errors["severity"] = [f"Must be one of: {', '.join(SEVERITIES)}."]
    if errors:
        raise ValidationError("the keyword rule is not valid", errors)
    with unit_of_work() as session:
        actor = "system"
        if user_id is not None:
            actor = f"staff:{staff.require(user_id, 'marketing.manage').user_id}"
        rule = session.scalar(select(WeiboKeywordRule).where(WeiboKeywordRule.keyword == keyword))
        before = None if rule is None else {"severity": rule.severity, "active": rule.active}
        if rule is None:
            rule = WeiboKeywordRule(keyword=keyword, created_by=actor)
            session.add(rule)
        rule.severity, rule.active = severity, True
        session.flush()
        staff.audit(
            actor,
            "weibo.rule_saved",
            "weibo_rule",
            str(rule.id),
            before,
            {"keyword": keyword, "severity": severity, "active": True},
        )
        return rule


def deactivate_rule(user_id: str, rule_id: int) -> WeiboKeywordRule:
    """Rules are switched off, never deleted: their alerts keep pointing at them."""
    with unit_of_work() as session:
        staff.require(user_id, "marketing.manage")
        rule = session.get(WeiboKeywordRule, rule_id)
        if rule is None:
            raise NotFound(f"unknown keyword rule {rule_id}")
        if rule.active:
            rule.active = False
            staff.audit(
                f"staff:{user_id}",
                "weibo.rule_off",
                "weibo_rule",
                str(rule.id),
                {"active": True},
                {"active": False},
            )
        return rule


def link_user(user_id: str, uid: str, customer_id: int) -> int:
    """Say Weibo user ``uid`` is customer ``customer_id`` (``customers.edit``); returns the
    customer id the uid belongs to afterwards, and marks that user's stored posts."""
    uid = uid.strip()
    if not uid.isdigit() or len(uid) > 20:
        raise ValidationError(
            "a Weibo uid is a number", {"uid": ["not a number"]}, reason="weibo_uid"
        )
    with unit_of_work() as session:
        member = staff.require(user_id, "customers.edit")
        if not sees_weibo(member):
            raise NotFound(f"unknown Weibo user {uid}")
        owner = identities.link_identity("weibo_uid", uid, customer_id=customer_id)
        session.execute(update(WeiboPost).where(WeiboPost.uid == uid).values(customer_id=owner))
        staff.audit(
            f"staff:{user_id}",
            "weibo.user_linked",
            "customer",
            str(owner),
            None,
            {"weibo_uid": uid},
        )
        return owner
