"""Back-in-stock alerts (到货提醒): a signed-in buyer asks to be told when a sold-out SKU is
back, and is told once, on the first channel that reaches them.

A periodic sweep (``KOUDAI_STOCK_ALERT_INTERVAL``) finds the waiting alerts whose SKU the
shop shows in stock again (on hand minus reserved at the default location, as the product
page counts it; the product on sale) and gives each a job of its own, oldest first. The job
claims its row with one conditional UPDATE (waiting → sending; ``message_sending``), so a
job run twice, or a sweep that queued it again, tells the buyer once. No transaction is
held while a channel answers. A buyer is told by WeChat (when the shop set
``KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE`` and knows their openid), else by SMS, else by
e-mail, in the shop's words for the ``back_in_stock`` message (the back office's buyer
messages) or the built-in ones; a temporary failure is tried again up to
``MAX_ATTEMPTS``, a permanent one is kept on the row.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Subquery, and_, delete, func, select, update
from sqlalchemy.orm import Session

from koudai_flask.connectors.errors import PermanentFailure
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.jobs.dispatch import enqueue
from koudai_flask.models import Customer, MessageTemplate, Product, Sku, StockAlert, StockLevel
from koudai_flask.models.base import utcnow
from koudai_flask.notifications import sms
from koudai_flask.notifications.delivery import Outgoing
from koudai_flask.notifications.render import Wording, effective_wording, render
from koudai_flask.services import inventory, message_sending, theme
from koudai_flask.services.ledger import get_location, get_sku
from koudai_flask.services.message_templates import STOCK_EVENT
from koudai_flask.services.notifications import contacts
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.stock_alerts")

MAX_WAITING = 50  # alerts one buyer may have waiting at a time
MAX_ATTEMPTS = 3  # sends of one alert that failed for a while before it is left failed
SWEEP_BATCH = 500  # alerts one sweep queues at most; the next sweep takes the rest
STALE_SENDING = timedelta(minutes=10)  # a claim this old was left by a worker that died

_BACK = {"zh_CN": "已到货", "en": "back in stock"}


@dataclass(frozen=True)
class AlertRow:
    """One of a buyer's alerts as their page lists it."""

    id: int
    status: str
    sku: str
    variant: str
    product: str
    slug: str
    asked_at: datetime
    notified_at: datetime | None


def offered(config: Mapping[str, Any] | None = None) -> bool:
    """Whether the shop can tell anyone anything: some channel is set up (in ``config``,
    by default the current app's)."""
    config = current_app.config if config is None else config
    wechat = bool(config["KOUDAI_WECHAT"] and config["KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE"])
    return bool(wechat or config["KOUDAI_SMS"] or config["KOUDAI_MAIL"])


# -- the buyer -------------------------------------------------------------------------------


def subscribe(customer_id: int, sku_code: str) -> StockAlert:
    """Ask to be told when ``sku_code`` is back. Asking again while waiting changes nothing;
    after being told, it waits again. Refused (``ValidationError``, nothing written) for a
    SKU not on sale or in stock now, a buyer no channel of the shop reaches, or a buyer with
    ``MAX_WAITING`` alerts waiting."""
    with unit_of_work() as session:
        sku = get_sku(session, sku_code)
        product = session.get(Product, sku.product_id)
        if not sku.active or product is None or product.status != "active":
            raise ValidationError(f"SKU {sku_code} is not on sale", reason="not_on_sale")
        if inventory.available(sku_code) > 0:
            raise ValidationError(
                f"SKU {sku_code} is in stock: it can be bought now",
                reason="alert_in_stock",
                detail={"sku": sku_code},
            )
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFound(f"unknown customer {customer_id}")
        if _channel(contacts(session, customer)) is None:
            raise ValidationError(
                "the shop has no way to reach this buyer: add a phone number or an e-mail "
                "address to the account",
                reason="alert_unreachable",
            )
        alert = session.scalar(
            select(StockAlert).where(
                StockAlert.sku_id == sku.id, StockAlert.customer_id == customer_id
            )
        )
        if alert is not None and alert.status in ("waiting", "sending"):
            return alert
        waiting = session.scalar(
            select(func.count())
            .select_from(StockAlert)
            .where(StockAlert.customer_id == customer_id, StockAlert.status == "waiting")
        )
        if (waiting or 0) >= MAX_WAITING:
            raise ValidationError(
                f"at most {MAX_WAITING} alerts wait at a time",
                reason="alert_limit",
                detail={"most": MAX_WAITING},
            )
        if alert is None:
            alert = StockAlert(sku_id=sku.id, customer_id=customer_id)
            session.add(alert)
        else:  # told before (or failed): wait again
            alert.status, alert.attempts, alert.armed_at = "waiting", 0, utcnow()
            alert.channel = alert.last_error = alert.provider_message_id = None
            alert.notified_at = None
        session.flush()
        return alert


def awaited(customer_id: int, sku_ids: Collection[int]) -> set[int]:
    """Which of ``sku_ids`` the buyer already waits for (the product page says so instead
    of offering the button again)."""
    if not sku_ids:
        return set()
    rows = current_session().scalars(
        select(StockAlert.sku_id).where(
            StockAlert.customer_id == customer_id,
            StockAlert.sku_id.in_(list(sku_ids)),
            StockAlert.status.in_(("waiting", "sending")),
        )
    )
    return set(rows)


def cancel(customer_id: int, alert_id: int) -> None:
    """The buyer no longer wants to hear; another buyer's alert is ``NotFound``."""
    with unit_of_work() as session:
        removed = session.execute(
            delete(StockAlert).where(
                StockAlert.id == alert_id, StockAlert.customer_id == customer_id
            )
        ).rowcount  # type: ignore[attr-defined]
        if removed != 1:
            raise NotFound(f"unknown alert {alert_id}")


def for_customer(customer_id: int) -> list[AlertRow]:
    """The buyer's alerts, newest first."""
    rows = (
        current_session()
        .execute(
            select(StockAlert, Sku, Product)
            .join(Sku, Sku.id == StockAlert.sku_id)
            .join(Product, Product.id == Sku.product_id)
            .where(StockAlert.customer_id == customer_id)
            .order_by(StockAlert.armed_at.desc(), StockAlert.id.desc())
        )
        .all()
    )
    return [
        AlertRow(
            alert.id,
            alert.status,
            sku.code,
            _variant(sku),
            product.title,
            product.slug,
            alert.armed_at,
            alert.notified_at,
        )
        for alert, sku, product in rows
    ]


def waiting_counts() -> Subquery:
    """``(sku_id, waiting)`` of every SKU buyers wait for, to join to a list of SKUs."""
    return (
        select(StockAlert.sku_id, func.count().label("waiting"))
        .where(StockAlert.status == "waiting")
        .group_by(StockAlert.sku_id)
        .subquery()
    )


def waiting_for(sku_code: str) -> int:
    """How many buyers wait for ``sku_code`` (the stock page's demand figure)."""
    session = current_session()
    sku = get_sku(session, sku_code)
    count = session.scalar(
        select(func.count())
        .select_from(StockAlert)
        .where(StockAlert.sku_id == sku.id, StockAlert.status == "waiting")
    )
    return int(count or 0)


# -- telling ---------------------------------------------------------------------------------


def sweep() -> int:
    """The periodic job: queue a send for each waiting alert whose SKU is back; returns how
    many were queued (inline: sent). One that fails stays for the next sweep, and one a
    dead worker left ``sending`` for ``STALE_SENDING`` waits again."""
    if not offered():
        return 0
    with unit_of_work() as session:  # a worker died mid-send: the alert waits again
        session.execute(
            update(StockAlert)
            .execution_options(synchronize_session=False)
            .where(
                StockAlert.status == "sending",
                StockAlert.claimed_at < utcnow() - STALE_SENDING,
            )
            .values(status="waiting")
        )
    queued = 0
    for alert_id, armed_at, attempts in due_alerts():
        try:
            enqueue(
                send,
                alert_id,
                job_id=f"stock-alert-{alert_id}-{armed_at.timestamp():.0f}-{attempts}",
            )
        except Exception as exc:  # one buyer's channel does not hold up the others
            log.warning("stock alert %s not sent yet: %s", alert_id, sms.describe_error(exc))
            continue
        queued += 1
    return queued


def due_alerts(limit: int = SWEEP_BATCH) -> list[tuple[int, datetime, int]]:
    """(id, armed_at, attempts) of the waiting alerts whose SKU is back, oldest first."""
    session = current_session()
    location = get_location(session, None)
    rows = session.execute(
        select(StockAlert.id, StockAlert.armed_at, StockAlert.attempts)
        .join(Sku, Sku.id == StockAlert.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .join(
            StockLevel,
            and_(StockLevel.sku_id == Sku.id, StockLevel.location_id == location.id),
        )
        .where(
            StockAlert.status == "waiting",
            Sku.active.is_(True),
            Product.status == "active",
            StockLevel.on_hand - StockLevel.reserved > 0,
        )
        .order_by(StockAlert.armed_at, StockAlert.id)
        .limit(limit)
    ).all()
    session.rollback()  # a read: nothing held while the jobs are queued
    return [(row.id, row.armed_at, row.attempts) for row in rows]


def send(alert_id: int) -> str:
    """Tell one buyer their SKU is back, unless that is done or being done; returns the
    alert's status. A temporary failure is raised for the job layer to retry."""
    return message_sending.send(ROWS, alert_id)


def _prepare(session: Session, alert_id: int) -> Outgoing:
    alert = session.get(StockAlert, alert_id)
    sku = session.get(Sku, alert.sku_id) if alert is not None else None
    product = session.get(Product, sku.product_id) if sku is not None else None
    if alert is None or sku is None or product is None:
        raise PermanentFailure(f"stock alert {alert_id} is gone")
    found = _channel(contacts(session, session.get(Customer, alert.customer_id)))
    if found is None:
        raise PermanentFailure("the shop has no way to reach this buyer any more")
    channel, recipient = found
    locale = current_app.config["KOUDAI_DEFAULT_LOCALE"]
    context = {
        "shop_name": theme.current().name,
        "product": product.title,
        "variant": _variant(sku),
        "status": _BACK.get(locale, _BACK["zh_CN"]),
        "event": STOCK_EVENT,
        "order_url": _product_link(product.slug),  # the message's own link
    }
    return Outgoing(
        id=alert_id,
        channel=channel,
        recipient=recipient,
        message=render(channel, _wording(channel, locale), context),
        wechat_template_id=current_app.config["KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE"],
        # WeChat keeps one message per openid + client_msg_id: a retry after a lost answer
        # reaches nobody twice, and a row armed again is a new message.
        client_msg_id=f"kds{alert_id}-{alert.armed_at.timestamp():.0f}",
    )


def _wording(channel: str, locale: str) -> Wording:
    """The shop's words for the message on ``channel`` (the messages page), else the built-in
    ones."""
    saved = current_session().scalar(
        select(MessageTemplate).where(
            MessageTemplate.event == STOCK_EVENT, MessageTemplate.channel == channel
        )
    )
    return effective_wording(STOCK_EVENT, channel, saved, locale)


def _variant(sku: Sku) -> str:
    """The SKU as a buyer tells it from its siblings (红 / M), or nothing for a lone one."""
    return "" if sku.label == sku.code else sku.label


def _channel(known: dict[str, str]) -> tuple[str, str] | None:
    """(channel, recipient) a back-in-stock message goes by, or None."""
    config = current_app.config
    openid = known.get("wechat_openid")
    if config["KOUDAI_WECHAT"] and config["KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE"] and openid:
        return "wechat", openid
    if config["KOUDAI_SMS"] and known.get("phone", "").strip():
        return "sms", known["phone"].strip()
    if config["KOUDAI_MAIL"] and known.get("email", "").strip():
        return "email", known["email"].strip()
    return None


def _product_link(slug: str) -> str | None:
    from koudai_flask.services.campaigns import shop_link_base

    try:
        return f"{shop_link_base(None)}/products/{slug}"
    except ValidationError:  # no request and no KOUDAI_CAMPAIGN_LINK_BASE: no link
        return None


ROWS = message_sending.MessageKind(
    label="stock alert",
    model=StockAlert,
    claimable=("waiting",),
    retry_status="waiting",  # the next sweep queues it again
    max_attempts=MAX_ATTEMPTS,
    prepare=_prepare,
    log=log,
    claimed_values=lambda: {"claimed_at": utcnow()},
    sent_values=lambda outgoing: {"channel": outgoing.channel, "notified_at": utcnow()},
)
