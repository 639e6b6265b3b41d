"""Sending one message row: a buyer's order notification, a campaign recipient's push or a
back-in-stock alert. The three differ in their table and their retry rule, not in how a
send goes, which is here once.

1. Claim the row with one conditional UPDATE (a claimable status → ``sending``, one more
   attempt): of two jobs for the same row, one sends and the other sees the claim and stops.
2. Read and render everything into an ``Outgoing`` (plain values) and end the transaction:
   none is held while the channel's server answers.
3. Hand it to its channel (``notifications.delivery.deliver``).
4. Mark it ``sent`` with the channel's message id, or failed: a permanent failure
   (``PermanentFailure``, ``ValidationError``: an unfollowed account, a refused address, a
   missing setting) for good; any other back to the kind's retry status until its attempts
   run out, and raised again for the job layer to retry, masked (an SMS gateway's error may
   quote the phone number, a WeChat URL its token).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from koudai_flask.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.errors import ValidationError
from koudai_flask.notifications import sms
from koudai_flask.notifications.delivery import Outgoing, deliver
from koudai_flask.services.transaction import current_session, unit_of_work


def _no_columns(*_: object) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class MessageKind:
    """How one kind of message row is sent. ``model`` has the columns ``id``, ``status``,
    ``attempts``, ``last_error`` and ``provider_message_id``."""

    label: str  # names a row in errors and logs: "notification 12"
    model: Any
    claimable: tuple[str, ...]
    retry_status: str  # what a temporary failure leaves while attempts remain
    max_attempts: int | None  # None: every temporary failure leaves retry_status
    prepare: Callable[[Session, int], Outgoing]
    log: logging.Logger
    # Further columns set by the claim (when it was claimed) and by a send (when, by what).
    claimed_values: Callable[[], dict[str, Any]] = _no_columns
    sent_values: Callable[[Outgoing], dict[str, Any]] = _no_columns
    # Run in the transaction that marks the row sent (a funnel step, say).
    on_sent: Callable[[Session, int], None] | None = None


def send(kind: MessageKind, row_id: int) -> str:
    """Send row ``row_id`` of ``kind`` unless it is sent or being sent; returns its status
    (``missing`` for no such row)."""
    model = kind.model
    with unit_of_work() as session:
        claimed = session.execute(
            update(model)
            .execution_options(synchronize_session=False)
            .where(model.id == row_id, model.status.in_(kind.claimable))
            .values(status="sending", attempts=model.attempts + 1, **kind.claimed_values())
        ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        session = current_session()
        status: str | None = session.scalar(select(model.status).where(model.id == row_id))
        session.rollback()
        return status or "missing"
    name = f"{kind.label} {row_id}"
    try:
        with unit_of_work() as session:
            outgoing = kind.prepare(session, row_id)
        message_id = deliver(outgoing)  # no transaction is held while the channel answers
    except (PermanentFailure, ValidationError) as exc:
        _failed(kind, row_id, exc, final=True)
        return "failed"
    except Exception as exc:
        _failed(kind, row_id, exc, final=False)
        raise retryable(name, exc, kind.log) from None
    with unit_of_work() as session:
        marked = session.execute(
            update(model)
            .execution_options(synchronize_session=False)
            .where(model.id == row_id, model.status == "sending")
            .values(
                status="sent",
                provider_message_id=message_id[:64],
                last_error=None,
                **kind.sent_values(outgoing),
            )
        ).rowcount  # type: ignore[attr-defined]
        if marked == 1 and kind.on_sent is not None:
            kind.on_sent(session, row_id)
    kind.log.info("%s sent by %s", name, outgoing.channel)
    return "sent"


def retryable(name: str, exc: Exception, log: logging.Logger) -> ConnectorError:
    """The same kind of error with a masked message, for the job layer to retry.

    Job layers log what they catch, and a provider's error may quote a phone number (an
    SMS gateway's URL) or a token (a WeChat URL): only the masked text goes on. The
    traceback, which holds no values, is logged for unexpected errors.
    """
    text = f"{name}: {sms.describe_error(exc)}"
    if isinstance(exc, RateLimited):
        return RateLimited(text, retry_after=exc.retry_after)
    if isinstance(exc, AuthExpired):
        return AuthExpired(text)
    if not isinstance(exc, ConnectorError):
        log.error("%s\n%s", text, "".join(traceback.format_tb(exc.__traceback__)).rstrip())
    return TemporaryFailure(text)


def _failed(kind: MessageKind, row_id: int, exc: BaseException, *, final: bool) -> None:
    current_session().rollback()
    model = kind.model
    status: Any = "failed" if final else kind.retry_status
    if not final and kind.max_attempts is not None:
        status = case((model.attempts >= kind.max_attempts, "failed"), else_=kind.retry_status)
    with unit_of_work() as session:
        session.execute(
            update(model)
            .execution_options(synchronize_session=False)
            .where(model.id == row_id, model.status == "sending")
            .values(status=status, last_error=sms.describe_error(exc))
        )
    kind.log.warning("%s %s not sent: %s", kind.label, row_id, sms.describe_error(exc))
