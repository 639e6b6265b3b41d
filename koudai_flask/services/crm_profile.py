"""A customer's page in the back office: identities, saved addresses, orders, figures, tags
and a timeline.

The timeline merges staff notes, tag changes and merges/splits, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from koudai_flask.errors import ValidationError
from koudai_flask.models import Address, Customer, CustomerIdentity, CustomerNote, Order
from koudai_flask.services import backoffice, customers, merges, staff, tags
from koudai_flask.services.customer_stats import CustomerStats, stats_of
from koudai_flask.services.identities import identities_of
from koudai_flask.services.transaction import current_session, unit_of_work


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # note | tag_added | tag_removed | merged | split
    actor: str
    text: str
    merge_id: int | None = None


@dataclass(frozen=True)
class Profile:
    customer: Customer
    orders: list[Order]
    identities: list[tuple[CustomerIdentity, bool]]
    stats: CustomerStats
    tags: list[str]
    rule_tags: set[str]
    timeline: list[TimelineEntry]
    open_merges: list[int]
    addresses: list[Address]  # the buyer's address book, the default first


def profile(user_id: str, customer_id: int) -> Profile:
    """Everything the customer page shows, within the member's scope (else NotFound)."""
    customer, orders = backoffice.customer_for(user_id, customer_id)
    from koudai_flask.models import CustomerTag, Tag

    rule_tags = set(
        current_session().scalars(
            select(Tag.name)
            .join(CustomerTag, CustomerTag.tag_id == Tag.id)
            .where(CustomerTag.customer_id == customer.id, Tag.rule.is_not(None))
        )
    )
    entries: list[TimelineEntry] = [
        TimelineEntry(n.created_at, "note", n.author, n.body) for n in notes(customer.id)
    ]
    entries += [
        TimelineEntry(h.created_at, f"tag_{h.action}", h.actor or h.source, h.tag)
        for h in tags.history(customer.id)
    ]
    records = merges.merges_of(customer.id)
    for record in records:
        entries.append(
            TimelineEntry(
                record.created_at, "merged", record.actor, str(record.source_id), record.id
            )
        )
        if record.split_at is not None:
            entries.append(
                TimelineEntry(
                    record.split_at,
                    "split",
                    record.split_by or "",
                    str(record.source_id),
                    record.id,
                )
            )
    entries.sort(key=lambda e: e.at, reverse=True)
    return Profile(
        customer=customer,
        orders=orders,
        identities=identities_of(customer.id),
        stats=stats_of(customer.id),
        tags=tags.tags_of(customer.id),
        rule_tags=rule_tags,
        timeline=entries,
        open_merges=[r.id for r in records if r.split_at is None],
        addresses=customers.addresses(customer.id),
    )


def notes(customer_id: int) -> list[CustomerNote]:
    return list(
        current_session().scalars(
            select(CustomerNote)
            .where(CustomerNote.customer_id == customer_id)
            .order_by(CustomerNote.id.desc())
            .limit(200)
        )
    )


def add_note(user_id: str, customer_id: int, body: str) -> CustomerNote:
    """A staff note on a customer (``customers.edit``), audited."""
    body = (body or "").strip()
    if not 1 <= len(body) <= 2000:
        raise ValidationError(
            "a note is 1 to 2000 characters",
            {"body": ["1 to 2000 characters"]},
            reason="note_length",
        )
    with unit_of_work() as session:
        staff.require(user_id, "customers.edit")
        customer, _ = backoffice.customer_for(user_id, customer_id)
        note = CustomerNote(customer_id=customer.id, author=f"staff:{user_id}", body=body)
        session.add(note)
        session.flush()
        staff.audit(
            f"staff:{user_id}", "customers.note", "customer", str(customer.id), None, {"note": body}
        )
        return note


def tag_customer(user_id: str, customer_id: int, name: str, *, add: bool) -> bool:
    """Staff put a manual tag on or take it off (``customers.edit``, in scope), audited."""
    with unit_of_work():
        staff.require(user_id, "customers.edit")
        customer, _ = backoffice.customer_for(user_id, customer_id)
        change = tags.add_tag if add else tags.remove_tag
        changed = change(customer.id, name, source="manual", actor_id=f"staff:{user_id}")
        if changed:
            staff.audit(
                f"staff:{user_id}",
                "customers.tag_add" if add else "customers.tag_remove",
                "customer",
                str(customer.id),
                None,
                {"tag": tags.clean_name(name)},
            )
        return changed
