"""Merging two customers into one, and splitting them apart again; always audited.

A merge moves every row that points at the source customer (identities, orders, addresses,
tags, notes, and the rows of any other ``koudai_*`` table with a foreign key to the
customer) to the target, records exactly which rows moved, and leaves the source as a
tombstone. A split moves those rows back. Rows that would break a unique rule on the
target (a tag both already carry, the same SKU in both carts) stay with the source.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table, UniqueConstraint, and_, exists, select, update

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Customer, CustomerIdentity, CustomerMerge, metadata
from koudai_flask.models.base import utcnow
from koudai_flask.services import outbox, staff
from koudai_flask.services.identities import merged_into, resolve
from koudai_flask.services.transaction import current_session, unit_of_work

# Contact fields a target without them takes over from the source (copied, not moved).
_FILLED = ("name", "phone", "email", "password_hash")
_OWN_TABLES = {"koudai_customer_merge"}


def _customer_columns() -> list[tuple[Table, Column[Any]]]:
    found = []
    for table in metadata.sorted_tables:
        if table.name in _OWN_TABLES or "id" not in table.c:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name == "koudai_customer" and fk.column.name == "id":
                found.append((table, fk.parent))
    return found


def _unique_partners(table: Table, column: Column[Any]) -> list[list[str]]:
    """For each unique rule containing ``column``, the other columns of that rule."""
    groups = [
        [c.name for c in constraint.columns]
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    groups += [[c.name for c in index.columns] for index in table.indexes if index.unique]
    if column.unique:
        groups.append([column.name])
    return [[n for n in group if n != column.name] for group in groups if column.name in group]


def _move(
    table: Table, column: Column[Any], source: int, target: int, ids: list[int] | None = None
) -> list[int]:
    """Point ``table``'s rows from ``source`` to ``target``; the ids of the rows moved."""
    session = current_session()
    query = select(table.c.id).where(column == source)
    if ids is not None:
        query = query.where(table.c.id.in_(ids))
    for others in _unique_partners(table, column):
        peer = table.alias()
        query = query.where(
            ~exists().where(
                peer.c[column.name] == target, *[peer.c[o] == table.c[o] for o in others]
            )
        )
    moved = list(session.scalars(query.order_by(table.c.id)))
    if moved:
        session.execute(
            update(table)
            .where(and_(table.c.id.in_(moved), column == source))
            .values({column.name: target})
        )
    return moved


def merge_into(source_id: int, target_id: int, *, reason: str, actor: str) -> CustomerMerge:
    """Fold ``source_id`` into ``target_id`` inside the caller's transaction."""
    session = current_session()
    if source_id == target_id:
        raise ValidationError("a customer cannot be merged with itself", reason="merge_self")
    # Both customers' rows locked, in id order, before the checks below: two merges of the
    # same customers at once (A into B and B into A, or A into B and A into C) would each
    # find neither merged yet and write a cycle or two merges of one source. The second
    # waits here for the first to commit, then finds its merge. (SQLite has no row locks
    # and lets one writer in at a time.)
    session.execute(
        select(Customer.id)
        .where(Customer.id.in_((source_id, target_id)))
        .order_by(Customer.id)
        .with_for_update()
    ).all()
    source, target = session.get(Customer, source_id), session.get(Customer, target_id)
    if source is None or target is None:
        raise NotFound(f"unknown customer {source_id if source is None else target_id}")
    if merged_into(source_id) is not None or merged_into(target_id) is not None:
        raise ValidationError(
            "one of these customers was already merged into another", reason="merge_done"
        )
    session.flush()
    rows: dict[str, list[int]] = {}
    for table, column in _customer_columns():
        moved = _move(table, column, source_id, target_id)
        if moved:
            rows[f"{table.name}.{column.name}"] = moved
    filled = {}
    for field in _FILLED:
        if getattr(source, field) and not getattr(target, field):
            filled[field] = getattr(source, field)
            setattr(target, field, getattr(source, field))
    user_id = None
    if source.user_id and not target.user_id:
        user_id, source.user_id = source.user_id, None
        session.flush()
        target.user_id = user_id
    record = CustomerMerge(
        source_id=source_id,
        target_id=target_id,
        reason=reason,
        actor=actor,
        moved={"rows": rows, "filled": filled, "user_id": user_id},
    )
    session.add(record)
    session.flush()
    session.expire_all()
    staff.audit(
        actor,
        "customers.merge",
        "customer",
        str(target_id),
        {"source_id": source_id, "target_id": target_id},
        {"merge_id": record.id, "reason": reason, "moved": {k: len(v) for k, v in rows.items()}},
    )
    outbox.record(
        session,
        "customer.merged",
        {"customer_id": target_id, "merged_id": source_id, "reason": reason},
    )
    return record


def _visible_customer(user_id: str, customer_id: int) -> Customer:
    from koudai_flask.services import backoffice

    customer, _ = backoffice.customer_for(user_id, customer_id)
    return customer


def merge(user_id: str, source_id: int, target_id: int) -> CustomerMerge:
    """Staff merge ``source_id`` into ``target_id`` (``customers.edit``, both in scope)."""
    with unit_of_work():
        staff.require(user_id, "customers.edit")
        for customer_id in (source_id, target_id):
            if resolve(customer_id) != customer_id:
                raise ValidationError(
                    f"customer {customer_id} was merged into another one",
                    reason="merged_customer",
                    detail={"id": customer_id},
                )
            _visible_customer(user_id, customer_id)
        return merge_into(source_id, target_id, reason="manual", actor=f"staff:{user_id}")


def split(user_id: str, merge_id: int) -> Customer:
    """Undo a merge: the rows it moved go back to the source, which stands again."""
    with unit_of_work() as session:
        staff.require(user_id, "customers.edit")
        # Locked: a second split of the same merge at once waits, then finds it split.
        record = session.get(CustomerMerge, merge_id, with_for_update=True, populate_existing=True)
        if record is None or record.split_at is not None:
            raise NotFound(f"no merge {merge_id} to split")
        _visible_customer(user_id, record.target_id)
        if merged_into(record.target_id) is not None:
            raise ValidationError(
                "split the later merge of this customer first", reason="split_later_first"
            )
        source, target = record.source_id, record.target_id
        moved_back = {}
        for key, ids in record.moved.get("rows", {}).items():
            table_name, _, column_name = key.partition(".")
            table = metadata.tables.get(table_name)
            if table is None:
                continue
            moved_back[key] = len(_move(table, table.c[column_name], target, source, ids))
        target_row, source_row = session.get(Customer, target), session.get(Customer, source)
        assert target_row is not None and source_row is not None
        for field, value in record.moved.get("filled", {}).items():
            if getattr(target_row, field) == value:
                setattr(target_row, field, None if field != "name" else "")
        user = record.moved.get("user_id")
        if user and target_row.user_id == user:
            target_row.user_id = None
            session.flush()
            source_row.user_id = user
        record.split_at = utcnow()
        record.split_by = f"staff:{user_id}"
        session.flush()
        session.expire_all()
        staff.audit(
            f"staff:{user_id}",
            "customers.split",
            "customer",
            str(target),
            {"merge_id": merge_id, "source_id": source, "target_id": target},
            {"moved_back": moved_back},
        )
        outbox.record(session, "customer.split", {"customer_id": target, "split_id": source})
        result = session.get(Customer, source)
        assert result is not None
        return result


def detach_identity(user_id: str, customer_id: int, identity_id: int) -> Customer:
    """Move one identity (linked by mistake) off a customer to a new customer of its own."""
    with unit_of_work() as session:
        staff.require(user_id, "customers.edit")
        customer = _visible_customer(user_id, customer_id)
        identity = session.get(CustomerIdentity, identity_id)
        if identity is None or identity.customer_id != customer.id:
            raise NotFound(f"customer {customer_id} has no identity {identity_id}")
        count = session.scalar(
            select(CustomerIdentity.id)
            .where(CustomerIdentity.customer_id == customer.id, CustomerIdentity.id != identity_id)
            .limit(1)
        )
        if count is None:
            raise ValidationError(
                "a customer's only identity cannot be split off", reason="only_identity"
            )
        fresh = Customer(name="")
        session.add(fresh)
        session.flush()
        identity.customer_id = fresh.id
        if identity.kind == "phone" and customer.phone == identity.value:
            customer.phone, fresh.phone = None, identity.value
        elif identity.kind == "email" and customer.email == identity.value:
            customer.email, fresh.email = None, identity.value
        elif identity.kind == "web" and customer.user_id == identity.value:
            customer.user_id = None
            session.flush()
            fresh.user_id = identity.value
        session.flush()
        staff.audit(
            f"staff:{user_id}",
            "customers.split_identity",
            "customer",
            str(customer.id),
            {"customer_id": customer.id, "identity": [identity.kind, identity.value]},
            {"customer_id": fresh.id},
        )
        outbox.record(session, "customer.created", {"customer_id": fresh.id})
        return fresh


def merges_of(customer_id: int) -> list[CustomerMerge]:
    """The merges into this customer, newest first (split ones too, for the timeline)."""
    return list(
        current_session().scalars(
            select(CustomerMerge)
            .where(CustomerMerge.target_id == customer_id)
            .order_by(CustomerMerge.id.desc())
        )
    )
