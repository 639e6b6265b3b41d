"""Rules of rule tags and segments turned into SQL over the per-customer statistics.

A rule (the language of :mod:`koudai_flask.services.rule_language`: parsed and checked
there, never evaluated as Python) becomes a SQLAlchemy WHERE clause over the statistics of
services.customer_stats: a day count compares timestamps, a date is a day in the shop's
time zone, and a set field is an ``EXISTS`` over the customer's orders, addresses, tags or
identities. The language's names are importable from here as well.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Subquery, and_, exists, false, not_, or_, select, true

from koudai_flask.config import config_value
from koudai_flask.models import Address, Channel, CustomerIdentity, CustomerTag, Order, Tag
from koudai_flask.models.base import utcnow
from koudai_flask.services.customer_stats import COUNTED_STATUSES, days_at_most, stats_subquery
from koudai_flask.services.rule_language import (
    FIELDS,
    KEYWORDS,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_INTEGER,
    MAX_LENGTH,
    OPERATORS,
    BoolOp,
    Compare,
    Node,
    Not,
    RuleError,
    Token,
    fields_used,
    parse,
    tokenize,
    validate,
)

# The statistics column of each field counted from a moment (a number of days or a date).
_MOMENTS = {
    "days_since_last_order": "last_order_at",
    "days_since_first_order": "first_order_at",
    "created_days": "created_at",
    "last_order_date": "last_order_at",
    "first_order_date": "first_order_at",
    "created_date": "created_at",
}

# -- SQL -------------------------------------------------------------------------------------


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(config_value("TIMEZONE")))


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = {
        "==": column == value,
        "!=": column != value,
        "<": column < value,
        "<=": column <= value,
        ">": column > value,
        ">=": column >= value,
    }[op]
    return result


def _days(moment: Any, op: str, n: int, now: datetime) -> ColumnElement[bool]:
    """Whole days since ``moment`` compared with ``n``, as timestamp comparisons."""
    at_most = days_at_most(moment, n, now)
    at_least = moment <= now - timedelta(days=n)
    known = moment.is_not(None)
    clause = {
        "==": and_(at_most, at_least),
        "!=": not_(and_(at_most, at_least)),
        "<": days_at_most(moment, n - 1, now) if n > 0 else false(),
        "<=": at_most,
        ">": moment <= now - timedelta(days=n + 1),
        ">=": at_least,
    }[op]
    return and_(known, clause)


def _dates(moment: Any, op: str, day: date) -> ColumnElement[bool]:
    start = _local_midnight(day)
    end = _local_midnight(day + timedelta(days=1))
    clause = {
        "==": and_(moment >= start, moment < end),
        "!=": or_(moment < start, moment >= end),
        "<": moment < start,
        "<=": moment < end,
        ">": moment >= end,
        ">=": moment >= start,
    }[op]
    return and_(moment.is_not(None), clause)


def _has_any(field: str, customer_id: Any, values: list[str]) -> ColumnElement[bool]:
    if field == "channel":
        kinds = select(Channel.name).where(Channel.kind.in_(values))
        return exists().where(
            Order.customer_id == customer_id,
            Order.status.in_(COUNTED_STATUSES),
            or_(Order.channel.in_(values), Order.channel.in_(kinds)),
        )
    if field == "city":
        return or_(
            exists().where(
                Order.customer_id == customer_id,
                Order.status.in_(COUNTED_STATUSES),
                Order.address["city"].as_string().in_(values),
            ),
            exists().where(Address.customer_id == customer_id, Address.city.in_(values)),
        )
    if field == "tag":
        return exists().where(
            CustomerTag.customer_id == customer_id,
            CustomerTag.tag_id.in_(select(Tag.id).where(Tag.name.in_(values))),
        )
    return exists().where(
        CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind.in_(values)
    )


def _compile(node: Node, stats: Subquery, now: datetime) -> ColumnElement[bool]:
    if isinstance(node, BoolOp):
        parts = [_compile(o, stats, now) for o in node.operands]
        return and_(true(), *parts) if node.op == "and" else or_(false(), *parts)
    if isinstance(node, Not):
        return not_(_compile(node.operand, stats, now))
    kind = FIELDS[node.field][0]
    if kind == "set":
        has = _has_any(node.field, stats.c.customer_id, [str(v) for v in node.values])
        return not_(has) if node.op in ("!=", "not in") else has
    column = stats.c[_MOMENTS.get(node.field, node.field)]
    if node.op in ("in", "not in"):
        any_of = or_(false(), *[_scalar(kind, column, "==", v, now) for v in node.values])
        return not_(any_of) if node.op == "not in" else any_of
    return _scalar(kind, column, node.op, node.values[0], now)


def _scalar(kind: str, column: Any, op: str, value: Any, now: datetime) -> ColumnElement[bool]:
    if kind == "days":
        return _days(column, op, value, now)
    if kind == "date":
        return _dates(column, op, value)
    return _compare(column, op, value)


def matching(text: str, *, now: datetime | None = None) -> Any:
    """``SELECT customer_id`` of every customer (not merged away) the rule holds for."""
    node = parse(text)
    stats = stats_subquery(now)
    return select(stats.c.customer_id).where(_compile(node, stats, now or utcnow()))


__all__ = [
    "FIELDS",
    "KEYWORDS",
    "MAX_DAYS",
    "MAX_DEPTH",
    "MAX_INTEGER",
    "MAX_LENGTH",
    "OPERATORS",
    "BoolOp",
    "Compare",
    "Node",
    "Not",
    "RuleError",
    "Token",
    "fields_used",
    "matching",
    "parse",
    "tokenize",
    "validate",
]
