"""Customer merges through the REST API: list them, fold one customer into another, undo one.

The API acts as the key's owner through ``services.merges``, the back office's own merge, and
on top of the owner's scope each customer involved must be one the key sees (its channels).
A customer id given for a merge is taken as it is, not resolved: merging a customer that
was already folded into another is refused with the id that stands for them now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import CustomerMerge
from koudai_flask.services import identities, merges
from koudai_flask.services.api_keys import Principal
from koudai_flask.services.platform_crm import standing_id
from koudai_flask.services.transaction import current_session


@dataclass(frozen=True)
class MergeView:
    id: int
    source_id: int
    target_id: int
    reason: str
    actor: str
    created_at: datetime
    split_at: datetime | None


def _view(record: CustomerMerge) -> MergeView:
    return MergeView(
        record.id,
        record.source_id,
        record.target_id,
        record.reason,
        record.actor,
        record.created_at,
        record.split_at,
    )


def merges_into(who: Principal, customer_id: int) -> list[MergeView]:
    """The merges into the customer that stands for ``customer_id``, newest first."""
    return [_view(r) for r in merges.merges_of(standing_id(who, customer_id))]


def _standing_as_given(who: Principal, customer_id: int) -> int:
    standing = identities.resolve(customer_id)
    if standing != customer_id:
        # Only say where they went if the key may see that customer.
        standing_id(who, customer_id, "customers.edit")
        raise ValidationError(
            f"customer {customer_id} was merged into customer {standing}; use that id",
            {"customer_id": [f"merged into {standing}"]},
        )
    return standing_id(who, customer_id, "customers.edit")


def merge(who: Principal, target_id: int, source_id: int) -> MergeView:
    """Fold ``source_id`` into ``target_id``: its orders, identities, tags and notes move."""
    if source_id == target_id:
        raise ValidationError(
            "a customer cannot be merged with itself", {"source_id": ["same as the customer"]}
        )
    target = _standing_as_given(who, target_id)
    source = _standing_as_given(who, source_id)
    return _view(merges.merge(who.user_id, source, target))


def split(who: Principal, customer_id: int, merge_id: int) -> MergeView:
    """Undo a merge into this customer: what it moved goes back, the source stands again."""
    target = standing_id(who, customer_id, "customers.edit")
    record = current_session().get(CustomerMerge, merge_id)
    if record is None or record.target_id != target:
        raise NotFound(f"customer {customer_id} has no merge {merge_id}")
    merges.split(who.user_id, merge_id)
    return _view(record)  # expired by the split: read again, with its split_at
