"""Customers as CSV for staff (``customers.export``): a segment or a rule, within scope."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import select

from koudai_flask.config import config_value
from koudai_flask.models import Customer, CustomerIdentity, CustomerTag, Tag
from koudai_flask.services import backoffice, staff
from koudai_flask.services.customer_stats import stats_subquery
from koudai_flask.services.product_form import fen_to_yuan
from koudai_flask.services.transaction import current_session

EXPORT_COLUMNS = [
    "id",
    "name",
    "phone",
    "email",
    "order_count",
    "total_spent_yuan",
    "last_order_at",
    "rfm",
    "tags",
    "identities",
]


def text_cell(value: str) -> str:
    """Text a spreadsheet shows as text: a leading = + - @ would start a formula (every CSV
    export passes text it did not write itself through this)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_customers(
    user_id: str,
    *,
    rule: str | None = None,
    batch: int = 500,
    channels: list[str] | None = None,
) -> Iterator[str]:
    """CSV text of the customers the member may see that match ``rule``, batch by batch;
    with ``channels`` (an API key's), only the customers of those channels."""
    member = staff.require(user_id, "customers.export")
    session = current_session()
    zone = ZoneInfo(config_value("TIMEZONE"))
    base = backoffice.customer_query(member, rule=rule).order_by(None)
    if channels is not None:
        base = base.where(backoffice.customers_on_channels(channels))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    yield "\ufeff" + out.getvalue()
    last_id = 0
    while True:
        customers = session.scalars(
            base.where(Customer.id > last_id).order_by(Customer.id).limit(batch)
        ).all()
        if not customers:
            break
        ids = [c.id for c in customers]
        last_id = ids[-1]
        stats = stats_subquery()
        figures = {
            row.customer_id: row
            for row in session.execute(select(stats).where(stats.c.customer_id.in_(ids)))
        }
        tag_names: dict[int, list[str]] = {}
        for customer_id, name in session.execute(
            select(CustomerTag.customer_id, Tag.name)
            .join(Tag, Tag.id == CustomerTag.tag_id)
            .where(CustomerTag.customer_id.in_(ids))
            .order_by(Tag.name)
        ):
            tag_names.setdefault(customer_id, []).append(name)
        known: dict[int, list[str]] = {}
        for customer_id, kind in session.execute(
            select(CustomerIdentity.customer_id, CustomerIdentity.kind)
            .where(CustomerIdentity.customer_id.in_(ids))
            .order_by(CustomerIdentity.id)
        ):
            known.setdefault(customer_id, []).append(kind)
        out.seek(0)
        out.truncate()
        for customer in customers:
            row = figures.get(customer.id)
            last = row.last_order_at if row is not None else None
            writer.writerow(
                [
                    customer.id,
                    text_cell(customer.name or ""),
                    text_cell(customer.phone or ""),
                    text_cell(customer.email or ""),
                    int(row.order_count) if row is not None else 0,
                    fen_to_yuan(int(row.total_spent)) if row is not None else "0.00",
                    last.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if last else "",
                    f"{row.rfm_r}{row.rfm_f}{row.rfm_m}" if row is not None else "000",
                    text_cell(" ".join(tag_names.get(customer.id, []))),
                    " ".join(sorted(set(known.get(customer.id, [])))),
                ]
            )
        yield out.getvalue()
