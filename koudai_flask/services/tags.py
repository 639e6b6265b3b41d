"""Tags on customers: set by hand or by other parts of the shop, each change in the history.

A tag with a rule (services.tag_rules) belongs to its rule: only the recompute job puts it
on or takes it off. Every tag newly put on a customer emits ``customer.tagged``.
"""

from __future__ import annotations

import re

from sqlalchemy import delete, func, select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Customer, CustomerTag, Tag, TagHistory
from koudai_flask.services import outbox
from koudai_flask.services.identities import resolve
from koudai_flask.services.transaction import (
    current_session,
    insert_ignoring_duplicate,
    unit_of_work,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SOURCE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


def clean_name(name: str) -> str:
    """A tag's stored name: 1 to 40 printable characters, inner spaces kept."""
    if not isinstance(name, str):
        raise ValidationError("a tag name is text", {"name": ["not text"]})
    name = " ".join(name.split())
    if not 1 <= len(name) <= 40 or _CONTROL.search(name):
        raise ValidationError(
            "a tag name is 1 to 40 characters", {"name": ["invalid length"]}, reason="tag_name"
        )
    return name


def _check_source(source: str) -> str:
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise ValidationError(f"bad tag source {source!r}", {"source": ["invalid"]})
    return source


def find(name: str) -> Tag | None:
    return current_session().scalar(select(Tag).where(Tag.name == clean_name(name)))


def _customer_id(customer_id: int) -> int:
    resolved = resolve(customer_id)
    if current_session().get(Customer, resolved) is None:
        raise NotFound(f"unknown customer {customer_id}")
    return resolved


def put_on(customer_id: int, tag: Tag, *, source: str, actor: str | None) -> bool:
    """Tag a customer inside the caller's transaction; False when already tagged."""
    session = current_session()
    already = session.scalar(
        select(CustomerTag.id).where(
            CustomerTag.customer_id == customer_id, CustomerTag.tag_id == tag.id
        )
    )
    if already is not None:
        return False
    added = insert_ignoring_duplicate(
        session, CustomerTag, {"customer_id": customer_id, "tag_id": tag.id, "source": source}
    )
    if added is None:  # put on by a request that committed meanwhile
        return False
    session.add(
        TagHistory(
            customer_id=customer_id, tag=tag.name, action="added", source=source, actor=actor
        )
    )
    session.flush()
    outbox.record(session, "customer.tagged", {"customer_id": customer_id, "tag": tag.name})
    return True


def take_off(customer_id: int, tag: Tag, *, source: str, actor: str | None) -> bool:
    """Untag a customer inside the caller's transaction; False when not tagged."""
    session = current_session()
    # One DELETE that says whether it removed the row: of two requests taking the tag off at
    # once, the second waits for the first, removes nothing and writes no history.
    removed = session.execute(
        delete(CustomerTag)
        .where(CustomerTag.customer_id == customer_id, CustomerTag.tag_id == tag.id)
        .returning(CustomerTag.id)
    ).first()
    if removed is None:
        return False
    session.add(
        TagHistory(
            customer_id=customer_id, tag=tag.name, action="removed", source=source, actor=actor
        )
    )
    session.flush()
    return True


def add_tag(
    customer_id: int, name: str, *, source: str = "manual", actor_id: str | None = None
) -> bool:
    """Put tag ``name`` on a customer (creating the tag); False when it was already there."""
    name, source = clean_name(name), _check_source(source)
    with unit_of_work() as session:
        customer_id = _customer_id(customer_id)
        tag = find(name)
        if tag is None:
            # A request adding the same new tag at once makes it first: use theirs.
            insert_ignoring_duplicate(
                session, Tag, {"name": name, "created_by": actor_id or source}
            )
            tag = find(name)
            assert tag is not None
        if tag.rule is not None and source != "rule":
            raise ValidationError(
                f"tag {name!r} is computed by its rule; change the rule instead",
                {"name": ["rule tag"]},
                reason="rule_tag_by_hand",
                detail={"name": name},
            )
        return put_on(customer_id, tag, source=source, actor=actor_id)


def remove_tag(
    customer_id: int, name: str, *, source: str = "manual", actor_id: str | None = None
) -> bool:
    """Take tag ``name`` off a customer; False when the customer did not have it."""
    name, source = clean_name(name), _check_source(source)
    with unit_of_work():
        customer_id = _customer_id(customer_id)
        tag = find(name)
        if tag is None:
            return False
        if tag.rule is not None and source != "rule":
            raise ValidationError(
                f"tag {name!r} is computed by its rule; change the rule instead",
                {"name": ["rule tag"]},
                reason="rule_tag_by_hand",
                detail={"name": name},
            )
        return take_off(customer_id, tag, source=source, actor=actor_id)


def tags_of(customer_id: int) -> list[str]:
    """The names of a customer's tags, sorted."""
    return list(
        current_session().scalars(
            select(Tag.name)
            .join(CustomerTag, CustomerTag.tag_id == Tag.id)
            .where(CustomerTag.customer_id == resolve(customer_id))
            .order_by(Tag.name)
        )
    )


def history(customer_id: int, *, limit: int = 200) -> list[TagHistory]:
    return list(
        current_session().scalars(
            select(TagHistory)
            .where(TagHistory.customer_id == customer_id)
            .order_by(TagHistory.id.desc())
            .limit(limit)
        )
    )


def all_tags() -> list[tuple[Tag, int]]:
    """Every tag with how many customers carry it, by name."""
    counts = (
        select(CustomerTag.tag_id, func.count(CustomerTag.id).label("n"))
        .group_by(CustomerTag.tag_id)
        .subquery()
    )
    rows = current_session().execute(
        select(Tag, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.tag_id == Tag.id)
        .order_by(Tag.name)
    )
    return [(tag, int(n)) for tag, n in rows]
