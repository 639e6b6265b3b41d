"""What the marketing services share: the permission check, audit and value checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from koudai_flask.errors import ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import StaffMember
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session

PERMISSION = "marketing.manage"
MAX_FEN = 10_000_000_000  # 100 million yuan: more than any promotion means
MAX_COUNT = 1_000_000


def require_manager(user_id: str | int) -> StaffMember:
    """The acting member, who must hold ``marketing.manage`` for the own shop (``web``)."""
    return staff.require(user_id, PERMISSION, channel="web")


def audit(
    user_id: str | int, action: str, kind: str, object_id: Any, before: Any, after: Any
) -> None:
    staff.audit(f"staff:{user_id}", action, kind, str(object_id), before, after)


def switch(
    user_id: str | int,
    row: Any,
    active: bool,
    *,
    action: str,
    kind: str,
    snapshot: Callable[[Any], Any],
) -> None:
    """Turn one coupon, promotion or special price on or off, audited with its before and
    after (inside the caller's unit of work)."""
    before = snapshot(row)
    row.active = active
    current_session().flush()
    audit(user_id, action, kind, row.id, before, snapshot(row))


def yuan(amount: int) -> str:
    """Fen as people read them in a message: 1999 -> ¥19.99."""
    return f"¥{amount // 100}.{amount % 100:02d}"


def whole(value: Any, field: str, *, minimum: int, maximum: int) -> int:
    """``value`` as an int within the bounds, else a ValidationError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        message = _k(
            "%(field)s must be a whole number from %(low)d to %(high)d.",
            field=field,
            low=minimum,
            high=maximum,
        )
        raise ValidationError(message, {field: [message]})
    return value


def optional_whole(value: Any, field: str, *, minimum: int, maximum: int) -> int | None:
    return None if value is None else whole(value, field, minimum=minimum, maximum=maximum)


def check_window(
    starts_at: datetime | None, ends_at: datetime | None, *, required: bool = False
) -> None:
    """A validity window: aware times, the end after the start; both given if ``required``."""
    if required and (starts_at is None or ends_at is None):
        message = _k("Give a start and an end time.")
        raise ValidationError(message, {"window": [message]})
    for value in (starts_at, ends_at):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValidationError(
                _k("Times must carry a time zone."), {"window": ["not timezone-aware"]}
            )
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        message = _k("The end must come after the start.")
        raise ValidationError(message, {"window": [message]})


def check_name(name: Any, *, required: bool = True) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if (required and not text) or len(text) > 120:
        message = _k("Give a name of at most 120 characters.")
        raise ValidationError(message, {"name": [message]})
    return text


def in_window(starts_at: datetime | None, ends_at: datetime | None, now: datetime) -> bool:
    return (starts_at is None or starts_at <= now) and (ends_at is None or now < ends_at)
