"""Campaign jobs: the fan-out into batches, one job per batch, and the periodic sweeps.

Pacing: ``send_campaign`` gives each batch a due time (``services.campaigns``); a batch
due now is enqueued at once, a later one on RQ's scheduler at its time (``enqueue_at``;
``flask koudai worker`` runs the scheduler). :func:`sweep`, a periodic job, enqueues any
batch whose time has come and that still waits (inline jobs have no scheduler, and Redis
may lose a job), and closes finished campaigns. Every job is safe to run twice: the
recipient rows decide who still needs a message.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from koudai_flask.config import config_value
from koudai_flask.connectors.errors import AuthExpired, RateLimited, TemporaryFailure
from koudai_flask.jobs.dispatch import enqueue
from koudai_flask.models import Campaign, CampaignRecipient
from koudai_flask.models.base import utcnow
from koudai_flask.services import campaign_sending, funnel_stats
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.campaigns")

# A recipient still "sending" this long after its claim was left by a worker that died
# mid-send: it is marked failed, not sent again (the message may have gone out).
STALE_SENDING = timedelta(minutes=10)


def _waiting_batches(campaign_id: int) -> list[tuple[int, datetime]]:
    """(batch, due time) of the campaign's batches that still have recipients waiting."""
    session = current_session()
    rows = session.execute(
        select(CampaignRecipient.batch, CampaignRecipient.due_at)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.status == "pending",
        )
        .distinct()
        .order_by(CampaignRecipient.batch)
    ).all()
    session.rollback()
    earliest: dict[int, datetime] = {}
    for batch, due_at in rows:
        earliest[batch] = min(due_at, earliest.get(batch, due_at))
    return sorted(earliest.items())


def _enqueue_batch(campaign_id: int, batch: int, job_id: str) -> None:
    try:
        enqueue(send_batch, campaign_id, batch, job_id=job_id)
    except Exception:  # inline, after its retries: the sweep tries again later
        log.exception("campaign %s batch %s: not sent yet", campaign_id, batch)


def fan_out(campaign_id: int, *, now: datetime | None = None) -> int:
    """Send the batches due now and schedule the later ones; returns batches handed over."""
    now = now or utcnow()
    handed = 0
    rq = config_value("JOBS") == "rq"
    for batch, due_at in _waiting_batches(campaign_id):
        if due_at <= now:
            _enqueue_batch(campaign_id, batch, f"campaign-{campaign_id}-batch-{batch}")
            handed += 1
        elif rq:
            from koudai_flask.jobs.queue import get_queue

            get_queue().enqueue_at(
                due_at,
                send_batch,
                campaign_id,
                batch,
                job_id=f"{config_value('QUEUE_NAME')}-campaign-{campaign_id}-batch-{batch}",
                description=f"koudai campaign {campaign_id} batch {batch}",
            )
            handed += 1
    campaign_sending.finish_if_done(campaign_id)
    return handed


def send_batch(campaign_id: int, batch: int) -> int:
    """Send the waiting recipients of one batch (a job); returns how many were sent.

    A temporary failure of some recipients is raised after the others were tried, so the
    job layer runs the batch again (the sent ones are skipped then). A rate limit from the
    channel moves the campaign's waiting recipients to when it lifts.
    """
    session = current_session()
    ids = session.scalars(
        select(CampaignRecipient.id)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.batch == batch,
            CampaignRecipient.status == "pending",
            CampaignRecipient.due_at <= utcnow(),
        )
        .order_by(CampaignRecipient.id)
    ).all()
    session.rollback()
    sent = failed = 0
    for recipient_id in ids:
        try:
            status = campaign_sending.send_recipient(recipient_id)
        except RateLimited as exc:
            campaign_sending.postpone(campaign_id, exc.retry_after or 60.0)
            log.warning("campaign %s: the channel limits us; waiting", campaign_id)
            return sent
        except (TemporaryFailure, AuthExpired):  # tried again by the batch's next run
            failed += 1
            continue
        sent += status == "sent"
    campaign_sending.finish_if_done(campaign_id)
    if failed:
        raise TemporaryFailure(f"campaign {campaign_id} batch {batch}: {failed} not sent yet")
    return sent


def sweep(now: datetime | None = None) -> int:
    """Periodic: enqueue the due batches of every sending campaign; returns batches."""
    now = now or utcnow()
    session = current_session()
    sending = session.scalars(
        select(Campaign.id).where(Campaign.status == "sending").order_by(Campaign.id)
    ).all()
    session.rollback()
    tick = int(now.timestamp()) // config_value("CAMPAIGN_INTERVAL")
    handed = 0
    for campaign_id in sending:
        _give_up_interrupted(campaign_id, now)
        for batch, due_at in _waiting_batches(campaign_id):
            if due_at <= now:
                _enqueue_batch(campaign_id, batch, f"campaign-{campaign_id}-batch-{batch}-{tick}")
                handed += 1
        campaign_sending.finish_if_done(campaign_id)
    return handed


def _give_up_interrupted(campaign_id: int, now: datetime) -> None:
    with unit_of_work() as session:
        session.execute(
            update(CampaignRecipient)
            .execution_options(synchronize_session=False)
            .where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.status == "sending",
                CampaignRecipient.due_at < now - STALE_SENDING,
            )
            .values(status="failed", last_error="interrupted while sending; not sent again")
        )


def rollup_funnel() -> int:
    """Periodic: recompute today's and yesterday's funnel rollups."""
    return funnel_stats.rollup_recent()
