"""Sending one campaign recipient's message, and what the jobs need around it.

:func:`send_recipient` claims its row with one conditional UPDATE (pending → sending)
before it sends and marks it sent in the same transaction as the ``push_sent`` funnel
step, so a job that runs twice, or two workers on one batch, send each customer one
message. ``jobs.campaigns`` calls these; :mod:`.campaigns` creates and starts campaigns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, func, select, update

from koudai_flask.connectors.errors import PermanentFailure, RateLimited, TemporaryFailure
from koudai_flask.errors import ValidationError
from koudai_flask.models import Campaign, CampaignRecipient, Customer
from koudai_flask.models.base import utcnow
from koudai_flask.notifications import render, sms
from koudai_flask.notifications.delivery import Outgoing, deliver
from koudai_flask.services import funnel, theme
from koudai_flask.services.campaigns import link_token, shop_link_base
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.campaigns")

MAX_ATTEMPTS = 3


def send_recipient(recipient_id: int) -> str:
    """Send one recipient's message unless it is sent or being sent; returns its status.

    A temporary failure puts the row back (until ``MAX_ATTEMPTS``) and is raised for the
    job layer; a permanent one marks it failed.
    """
    with unit_of_work() as session:
        claimed = session.execute(
            update(CampaignRecipient)
            .execution_options(synchronize_session=False)
            .where(CampaignRecipient.id == recipient_id, CampaignRecipient.status == "pending")
            # due_at becomes the claim's time: a claim this old was left by a dead worker.
            .values(status="sending", attempts=CampaignRecipient.attempts + 1, due_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        status = current_session().scalar(
            select(CampaignRecipient.status).where(CampaignRecipient.id == recipient_id)
        )
        current_session().rollback()
        return status or "missing"
    try:
        outgoing, recipient = _prepare(recipient_id)
        current_session().rollback()  # a read: end it before the channel is called
        message_id = deliver(outgoing)  # no transaction is held while the channel answers
    except (PermanentFailure, ValidationError) as exc:
        _failed(recipient_id, exc, final=True)
        return "failed"
    except Exception as exc:
        _failed(recipient_id, exc, final=False)
        if isinstance(exc, RateLimited):
            raise RateLimited(
                f"campaign recipient {recipient_id}", retry_after=exc.retry_after
            ) from None
        raise TemporaryFailure(
            f"campaign recipient {recipient_id}: {sms.describe_error(exc)}"
        ) from None
    with unit_of_work() as session:
        marked = session.execute(
            update(CampaignRecipient)
            .execution_options(synchronize_session=False)
            .where(CampaignRecipient.id == recipient_id, CampaignRecipient.status == "sending")
            .values(
                status="sent",
                sent_at=utcnow(),
                provider_message_id=message_id[:64],
                last_error=None,
            )
        ).rowcount  # type: ignore[attr-defined]
        if marked == 1:
            funnel.write_event(
                session,
                "push_sent",
                campaign_id=recipient.campaign_id,
                customer_id=recipient.customer_id,
                visitor=funnel.visitor_of(recipient.customer_id),
                ref=str(recipient.campaign_id),
                dedupe_key=f"push_sent:{recipient_id}",
            )
    return "sent"


@dataclass(frozen=True)
class _Recipient:
    campaign_id: int
    customer_id: int


def _prepare(recipient_id: int) -> tuple[Outgoing, _Recipient]:
    session = current_session()
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
    outgoing = Outgoing(
        id=recipient_id,
        channel=campaign.channel,
        recipient=row.address,
        message=message,
        wechat_template_id=campaign.wechat_template_id,
        # WeChat keeps one message per openid + client_msg_id (§3.3): a retry after a
        # lost answer reaches nobody twice.
        client_msg_id=f"kdc{recipient_id}",
    )
    return outgoing, _Recipient(row.campaign_id, row.customer_id)


def _failed(recipient_id: int, exc: BaseException, *, final: bool) -> None:
    current_session().rollback()
    with unit_of_work() as session:
        session.execute(
            update(CampaignRecipient)
            .execution_options(synchronize_session=False)
            .where(CampaignRecipient.id == recipient_id, CampaignRecipient.status == "sending")
            .values(
                status="failed"
                if final
                else case((CampaignRecipient.attempts >= MAX_ATTEMPTS, "failed"), else_="pending"),
                last_error=sms.describe_error(exc),
            )
        )
    log.warning("campaign recipient %s not sent: %s", recipient_id, sms.describe_error(exc))


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
