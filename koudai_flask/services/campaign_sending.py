"""Sending one campaign recipient's message, and what the jobs need around it.

:func:`send_recipient` sends as every message row is sent (``message_sending``: claimed
with one conditional UPDATE, pending → sending) and marks it sent in the same transaction
as the ``push_sent`` funnel step, so a job that runs twice, or two workers on one batch,
send each customer one message. ``jobs.campaigns`` calls these; :mod:`.campaigns` creates
and starts campaigns.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from koudai_flask.models import Campaign, CampaignRecipient, Customer
from koudai_flask.models.base import utcnow
from koudai_flask.notifications import render
from koudai_flask.notifications.delivery import Outgoing
from koudai_flask.services import funnel, message_sending, theme
from koudai_flask.services.campaigns import link_token, shop_link_base
from koudai_flask.services.transaction import unit_of_work

log = logging.getLogger("koudai_flask.campaigns")

MAX_ATTEMPTS = 3


def send_recipient(recipient_id: int) -> str:
    """Send one recipient's message unless it is sent or being sent; returns its status.

    A temporary failure puts the row back (until ``MAX_ATTEMPTS``) and is raised for the
    job layer; a permanent one marks it failed. Sending writes the ``push_sent`` funnel
    step in the same transaction that marks the row sent.
    """
    return message_sending.send(ROWS, recipient_id)


def _prepare(session: Session, recipient_id: int) -> Outgoing:
    row = session.get(CampaignRecipient, recipient_id)
    assert row is not None
    campaign = session.get(Campaign, row.campaign_id)
    assert campaign is not None
    customer = session.get(Customer, row.customer_id)
    base = campaign.link_base or shop_link_base(None)
    link = f"{base}/r/{link_token(campaign.id, row.customer_id, campaign.target)}"
    context = {
        "shop_name": theme.current().name,
        "name": (customer.name if customer else "") or "",
        "link": link,
        "order_url": link,  # the message's own link (WeChat url, e-mail anchor)
    }
    message = render.render(
        campaign.channel, render.Wording(campaign.subject, campaign.body), context
    )
    return Outgoing(
        id=recipient_id,
        channel=campaign.channel,
        recipient=row.address,
        message=message,
        wechat_template_id=campaign.wechat_template_id,
        # WeChat keeps one message per openid + client_msg_id (§3.3): a retry after a
        # lost answer reaches nobody twice.
        client_msg_id=f"kdc{recipient_id}",
    )


def _pushed(session: Session, recipient_id: int) -> None:
    """The funnel's first step, written with the row marked sent."""
    row = session.get(CampaignRecipient, recipient_id)
    assert row is not None
    funnel.write_event(
        session,
        "push_sent",
        campaign_id=row.campaign_id,
        customer_id=row.customer_id,
        visitor=funnel.visitor_of(row.customer_id),
        ref=str(row.campaign_id),
        dedupe_key=f"push_sent:{recipient_id}",
    )


ROWS = message_sending.MessageKind(
    label="campaign recipient",
    model=CampaignRecipient,
    claimable=("pending",),
    retry_status="pending",
    max_attempts=MAX_ATTEMPTS,
    prepare=_prepare,
    log=log,
    # due_at becomes the claim's time: a claim this old was left by a dead worker.
    claimed_values=lambda: {"due_at": utcnow()},
    sent_values=lambda outgoing: {"sent_at": utcnow()},
    on_sent=_pushed,
)


def postpone(campaign_id: int, seconds: float) -> int:
    """Move the campaign's waiting recipients later (a channel's rate limit answered)."""
    with unit_of_work() as session:
        moved: int = session.execute(
            update(CampaignRecipient)
            .execution_options(synchronize_session=False)
            .where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.status == "pending",
            )
            .values(due_at=utcnow() + timedelta(seconds=seconds))
        ).rowcount  # type: ignore[attr-defined]
    return moved


def finish_if_done(campaign_id: int) -> bool:
    """Mark a sending campaign sent once no recipient waits or is being sent."""
    with unit_of_work() as session:
        waiting = session.scalar(
            select(func.count())
            .select_from(CampaignRecipient)
            .where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.status.in_(("pending", "sending")),
            )
        )
        if waiting:
            return False
        done: int = session.execute(
            update(Campaign)
            .execution_options(synchronize_session=False)
            .where(Campaign.id == campaign_id, Campaign.status == "sending")
            .values(status="sent", finished_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        return done == 1
