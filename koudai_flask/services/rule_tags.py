"""Rule tags: defined by staff, put on and taken off customers by the recompute job.

The job runs for one customer when their orders or identities change (outbox subscribers
in jobs.handlers), for every customer when a rule changes, and nightly for everyone
(``KOUDAI_CRM_RECOMPUTE_INTERVAL``), since "days since the last order" moves with the
clock. Each rule is recomputed in a transaction of its own; running twice changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import CustomerTag, Tag
from koudai_flask.models.base import utcnow
from koudai_flask.services import outbox, staff, tag_rules, tags
from koudai_flask.services.identities import resolve
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.crm")


def save_rule_tag(
    user_id: str, name: str, rule: str | None, *, description: str = "", tag_id: int | None = None
) -> Tag:
    """Create or change a tag (``customers.edit``). ``rule=None`` makes a manual tag.

    A bad rule raises ``RuleError`` and saves nothing. Turning a manual tag into a rule tag
    hands its customers over to the rule at the next recompute (queued on commit).
    """
    name = tags.clean_name(name)
    rule = tag_rules.validate(rule) if rule is not None else None
    description = " ".join(str(description or "").split())
    if len(description) > 200:
        raise ValidationError(
            "a description is at most 200 characters",
            {"description": ["long"]},
            reason="tag_description",
            detail={"most": 200},
        )
    with unit_of_work() as session:
        staff.require(user_id, "customers.edit")
        clash = session.scalar(select(Tag).where(Tag.name == name))
        if clash is not None and clash.id != tag_id:
            raise ValidationError(
                f"a tag named {name!r} exists",
                {"name": ["taken"]},
                reason="tag_taken",
                detail={"name": name},
            )
        if tag_id is None:
            tag = Tag(name=name, rule=rule, description=description, created_by=f"staff:{user_id}")
            session.add(tag)
            before = None
        else:
            found = session.get(Tag, tag_id)
            if found is None:
                raise NotFound(f"unknown tag {tag_id}")
            tag = found
            before = {"name": tag.name, "rule": tag.rule, "description": tag.description}
            tag.name, tag.rule, tag.description = name, rule, description
        session.flush()
        staff.audit(
            f"staff:{user_id}",
            "customers.tag",
            "tag",
            str(tag.id),
            before,
            {"name": name, "rule": rule, "description": description},
        )
        if rule is not None:
            outbox.record(session, "customer.tag_rule_changed", {"tag_id": tag.id})
        return tag


def delete_tag(user_id: str, tag_id: int) -> None:
    """Remove a tag from everyone (each removal in the history) and delete it."""
    with unit_of_work() as session:
        staff.require(user_id, "customers.edit")
        # Locked: a second delete at once waits, then finds no tag (NotFound).
        tag = session.get(Tag, tag_id, with_for_update=True, populate_existing=True)
        if tag is None:
            raise NotFound(f"unknown tag {tag_id}")
        holders = list(
            session.scalars(select(CustomerTag.customer_id).where(CustomerTag.tag_id == tag_id))
        )
        for customer_id in holders:
            tags.take_off(customer_id, tag, source="manual", actor=f"staff:{user_id}")
        staff.audit(
            f"staff:{user_id}",
            "customers.tag_delete",
            "tag",
            str(tag_id),
            {"name": tag.name, "rule": tag.rule, "customers": len(holders)},
            None,
        )
        session.delete(tag)


def recompute_tag(tag_id: int, customer_ids: list[int] | None = None) -> int:
    """Bring one rule tag up to date (for ``customer_ids`` only, when given); the changes."""
    with unit_of_work() as session:
        tag = session.get(Tag, tag_id)
        if tag is None or tag.rule is None:
            return 0
        try:
            query = tag_rules.matching(tag.rule)
        except tag_rules.RuleError as exc:  # saved by an older version with other fields
            log.warning("rule tag %s has a rule that no longer parses: %s", tag.name, exc.message)
            return 0
        held_query = select(CustomerTag.customer_id).where(CustomerTag.tag_id == tag_id)
        if customer_ids is not None:
            query = query.where(query.selected_columns[0].in_(customer_ids))
            held_query = held_query.where(CustomerTag.customer_id.in_(customer_ids))
        wanted = set(session.scalars(query))
        held = set(session.scalars(held_query))
        for customer_id in sorted(wanted - held):
            tags.put_on(customer_id, tag, source="rule", actor=None)
        for customer_id in sorted(held - wanted):
            tags.take_off(customer_id, tag, source="rule", actor=None)
        if customer_ids is None:
            tag.recomputed_at = utcnow()
        return len(wanted ^ held)


def _rule_tag_ids() -> list[int]:
    return list(
        current_session().scalars(select(Tag.id).where(Tag.rule.is_not(None)).order_by(Tag.id))
    )


def recompute(customer_ids: list[int] | None = None) -> int:
    """Every rule tag, for ``customer_ids`` or for everyone; the number of changes."""
    return sum(recompute_tag(tag_id, customer_ids) for tag_id in _rule_tag_ids())


def recompute_all() -> int:
    """The nightly job."""
    return recompute()


def on_customer_event(topic: str, payload: dict[str, Any]) -> None:
    """Outbox subscriber: a customer's orders or identities changed; safe to run twice."""
    ids: set[int] = set()
    for key in ("customer_id", "merged_id", "split_id"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            ids.add(value)
    if not ids:
        return
    affected = sorted(ids | {resolve(i) for i in ids})
    recompute(affected)


def on_rule_changed(topic: str, payload: dict[str, Any]) -> None:
    """Outbox subscriber: a tag's rule was saved; recompute it for every customer."""
    tag_id = payload.get("tag_id")
    if isinstance(tag_id, int):
        recompute_tag(tag_id)


def rule_tags() -> list[Tag]:
    return list(
        current_session().scalars(select(Tag).where(Tag.rule.is_not(None)).order_by(Tag.name))
    )
