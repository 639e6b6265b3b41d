"""Campaigns: one message to a CRM segment by WeChat template message, SMS or e-mail.

:func:`send_campaign` resolves the segment to customers once, stores one
``CampaignRecipient`` per customer (unique per campaign) with the address to use, and
numbers them into batches, each due at its minute so that no minute since the start sends
more than the campaign's ``rate_per_minute``; ``jobs.campaigns`` then sends the batches,
one recipient at a time (:mod:`.campaign_sending`), so that each customer gets one
message however often a job runs.

Every message carries the customer's own tracked link, ``<shop>/r/<token>``: the token is
signed with the app's secret and names the campaign, the customer and where the link
leads (:func:`link_token`, :func:`read_link`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, insert, select, update
from werkzeug.routing import BuildError

from koudai_flask.errors import NotFound, SignatureError, ValidationError
from koudai_flask.models import Campaign, CampaignRecipient, Customer, CustomerIdentity
from koudai_flask.models.base import utcnow
from koudai_flask.notifications import CHANNELS, render
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.campaigns")

MAX_RATE = 100_000
VARIABLES = ("shop_name", "name", "link")
_LINK_SALT = "koudai-campaign-link"
_IN_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class Link:
    """What a tracked link names."""

    campaign_id: int
    customer_id: int
    target: str


# -- links -------------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    secret = current_app.config.get("SECRET_KEY")
    if not secret:
        raise ValidationError("campaign links are signed with the app's SECRET_KEY; set one")
    return URLSafeTimedSerializer(secret, salt=_LINK_SALT)


def link_token(campaign_id: int, customer_id: int, target: str) -> str:
    return _serializer().dumps([campaign_id, customer_id, target])


def read_link(token: str) -> Link | None:
    """The link a token names; None when it is genuine but too old to count.

    A token that is not ours (edited, or signed with another secret) raises
    ``SignatureError``.
    """
    max_age = current_app.config["KOUDAI_CAMPAIGN_LINK_MAX_AGE"]
    try:
        value = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        return None
    except BadSignature:
        raise SignatureError("this campaign link is not valid") from None
    campaign_id, customer_id, target = value
    return Link(int(campaign_id), int(customer_id), safe_target(str(target)))


def safe_target(target: str) -> str:
    """A path inside the shop ("/products/x"), never another site."""
    target = target.strip() or "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        raise ValidationError(
            "the link target must be a path inside the shop, such as /products/oxford-shirt",
            {"target": ["not a shop path"]},
            reason="link_target",
        )
    if len(target) > 500 or any(ord(c) < 32 for c in target):
        raise ValidationError(
            "the link target is not a usable path", {"target": ["invalid"]}, reason="link_target"
        )
    return target


def shop_link_base(given: str | None) -> str:
    base = given or current_app.config["KOUDAI_CAMPAIGN_LINK_BASE"]
    if not base:
        try:
            base = url_for("koudai_shop.index", _external=True)
        except (RuntimeError, BuildError):
            raise ValidationError(
                "campaign links need the shop's address: set KOUDAI_CAMPAIGN_LINK_BASE"
            ) from None
    if not base.startswith(("http://", "https://")):
        raise ValidationError("KOUDAI_CAMPAIGN_LINK_BASE must be an absolute http(s) URL")
    return base.rstrip("/")


# -- creating ----------------------------------------------------------------------------------


def sample_context() -> dict[str, Any]:
    link = "https://shop.example.com/shop/r/sample"
    return {"shop_name": "示例小店", "name": "李雷", "link": link, "order_url": link}


def check_message(channel: str, subject: str, body: str) -> None:
    """Render the words on sample data; a template that cannot be used is refused."""
    try:
        render.render(channel, render.Wording(subject, body), sample_context())
    except ValidationError as exc:
        reasons = "; ".join(str(m) for ms in exc.messages.values() for m in ms) or exc.message
        raise ValidationError(
            f"the message cannot be used ({reasons}); it may use {', '.join(VARIABLES)}",
            exc.messages,
            reason=exc.reason,
            detail={**(exc.detail or {}), "variables": ", ".join(VARIABLES)},
        ) from None


def create_campaign(
    *,
    name: str,
    channel: str,
    segment_id: int | None,
    body: str,
    subject: str = "",
    wechat_template_id: str | None = None,
    target: str = "/",
    rate_per_minute: int = 600,
    actor: str = "system",
) -> Campaign:
    """A draft campaign; nothing is sent until :func:`send_campaign`."""
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationError(
            "a campaign needs a name (at most 120 characters)",
            {"name": ["?"]},
            reason="campaign_name",
        )
    if channel not in CHANNELS:
        raise ValidationError(
            f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}",
            {"channel": ["?"]},
            reason="campaign_channel",
        )
    template_id = (wechat_template_id or "").strip() or None
    if channel == "wechat" and template_id is None:
        raise ValidationError(
            "a WeChat campaign needs the template id registered in the Official Account",
            {"wechat_template_id": ["required"]},
            reason="campaign_template_id",
        )
    if not 1 <= rate_per_minute <= MAX_RATE:
        raise ValidationError(
            f"the rate must be 1 to {MAX_RATE} messages a minute",
            {"rate_per_minute": ["?"]},
            reason="campaign_rate",
            detail={"most": MAX_RATE},
        )
    target = safe_target(target)
    subject = subject.strip() if channel == "email" else ""
    check_message(channel, subject, body)
    with unit_of_work() as session:
        if segment_id is not None:
            from koudai_flask.models import Segment

            if session.get(Segment, segment_id) is None:
                raise ValidationError(
                    f"unknown segment {segment_id}", {"segment_id": ["?"]}, reason="unknown_segment"
                )
        campaign = Campaign(
            name=name,
            channel=channel,
            segment_id=segment_id,
            subject=subject,
            body=body,
            wechat_template_id=template_id if channel == "wechat" else None,
            target=target,
            rate_per_minute=rate_per_minute,
            status="draft",
            created_by=actor,
        )
        session.add(campaign)
        session.flush()
        staff.audit(
            actor,
            "campaign.create",
            "campaign",
            str(campaign.id),
            None,
            {"name": name, "channel": channel, "segment_id": segment_id, "target": target},
        )
        return campaign


def get(campaign_id: int) -> Campaign:
    campaign = current_session().get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        raise NotFound(f"unknown campaign {campaign_id}")
    return campaign


def segment_customer_ids(segment_id: int) -> list[int]:
    from koudai_flask.services import segments

    return sorted(set(segments.customer_ids(segment_id)))


def audience_size(segment_id: int) -> int:
    """How many customers a segment holds now (the preview before sending)."""
    from koudai_flask.services import segments

    return int(segments.count(segment_id))


# -- starting ----------------------------------------------------------------------------------


def send_campaign(
    campaign_id: int,
    *,
    actor: str,
    customer_ids: Sequence[int] | None = None,
    link_base: str | None = None,
    now: datetime | None = None,
) -> Campaign:
    """Start sending a draft: store its recipients (its segment's customers, or
    ``customer_ids``), then hand its batches to the jobs. A campaign already started is
    returned as it is."""
    campaign = get(campaign_id)
    if campaign.status != "draft":
        return campaign
    setting = {"wechat": "KOUDAI_WECHAT", "sms": "KOUDAI_SMS", "email": "KOUDAI_MAIL"}
    if not current_app.config[setting[campaign.channel]]:
        raise ValidationError(
            f"set {setting[campaign.channel]} to send {campaign.channel} campaigns; "
            "nothing was sent",
            reason="campaign_channel_off",
            detail={"setting": setting[campaign.channel]},
        )
    if customer_ids is None:
        if campaign.segment_id is None:
            raise ValidationError(
                "this campaign has no segment to send to", reason="campaign_no_segment"
            )
        ids = segment_customer_ids(campaign.segment_id)
    else:
        ids = sorted(set(int(i) for i in customer_ids))
    base = shop_link_base(link_base)
    now = now or utcnow()
    with unit_of_work() as session:
        started = session.execute(
            update(Campaign)
            .execution_options(synchronize_session=False)
            .where(Campaign.id == campaign_id, Campaign.status == "draft")
            .values(status="sending", started_at=now, link_base=base, recipient_count=len(ids))
        ).rowcount  # type: ignore[attr-defined]
        if started != 1:  # someone else pressed "send" at the same time
            return get(campaign_id)
        addresses = _addresses(campaign.channel, ids)
        size = min(current_app.config["KOUDAI_CAMPAIGN_BATCH"], campaign.rate_per_minute)
        per_minute = -(-campaign.rate_per_minute // size)  # batches that start each minute
        rows, reachable = [], 0
        for customer_id in ids:
            address = addresses.get(customer_id, "")
            # Message n goes in minute n // rate, in that minute's batch (n % rate) // size.
            minute, place = divmod(reachable, campaign.rate_per_minute)
            batch = minute * per_minute + place // size
            rows.append(
                {
                    "campaign_id": campaign_id,
                    "customer_id": customer_id,
                    "address": address,
                    "status": "pending" if address else "skipped",
                    "batch": batch if address else 0,
                    "due_at": now + timedelta(minutes=minute),
                    "attempts": 0,
                }
            )
            reachable += 1 if address else 0
        if rows:
            session.execute(insert(CampaignRecipient), rows)
        staff.audit(
            actor,
            "campaign.send",
            "campaign",
            str(campaign_id),
            {"status": "draft"},
            {"status": "sending", "recipients": len(ids), "reachable": reachable},
        )
    from koudai_flask.jobs import campaigns as campaign_jobs

    campaign_jobs.fan_out(campaign_id)
    return get(campaign_id)


def _addresses(channel: str, ids: Sequence[int]) -> dict[int, str]:
    """customer id → openid, phone or e-mail for ``channel`` (the newest identity wins)."""
    session = current_session()
    found: dict[int, str] = {}
    kinds = {"wechat": ("wechat_openid",), "sms": ("phone",), "email": ("email",)}[channel]
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = list(ids[start : start + _IN_CHUNK])
        if channel != "wechat":
            column = Customer.phone if channel == "sms" else Customer.email
            for customer_id, value in session.execute(
                select(Customer.id, column).where(Customer.id.in_(chunk))
            ):
                if value and value.strip():
                    found[customer_id] = value.strip()
        for customer_id, value in session.execute(
            select(CustomerIdentity.customer_id, CustomerIdentity.value)
            .where(CustomerIdentity.customer_id.in_(chunk), CustomerIdentity.kind.in_(kinds))
            .order_by(CustomerIdentity.id.desc())
        ):
            found.setdefault(customer_id, value.strip())
    return {customer_id: value[:254] for customer_id, value in found.items() if value}


def progress(campaign_id: int) -> dict[str, int]:
    """Recipients per status (pending, sending, sent, failed, skipped)."""
    counts = dict.fromkeys(("pending", "sending", "sent", "failed", "skipped"), 0)
    for status, count in current_session().execute(
        select(CampaignRecipient.status, func.count())
        .where(CampaignRecipient.campaign_id == campaign_id)
        .group_by(CampaignRecipient.status)
    ):
        counts[status] = int(count)
    return counts


def campaigns_list(limit: int = 100) -> list[Campaign]:
    return list(
        current_session().scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit))
    )
