"""Customer endpoints: list, read, create and change customers, their manual tags, notes
and merges."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import idempotent, principal, requires
from koudai_flask.schemas.api_customers import (
    ID,
    CustomerCreateIn,
    CustomerListArgs,
    CustomerOut,
    CustomerPage,
    CustomerTagsOut,
    CustomerUpdateIn,
    MergeIn,
    MergeList,
    MergeOut,
    NoteIn,
    NoteList,
    NoteOut,
    TagIn,
)
from koudai_flask.services import platform_crm, platform_merges, tags


def _tags_reply(customer_id: int, changed: bool) -> dict[str, Any]:
    return {"customer_id": customer_id, "tags": tags.tags_of(customer_id), "changed": changed}


def register(bp: Blueprint) -> None:
    @bp.route("/customers", methods=["GET"])
    @requires("customers.view")
    @bp.arguments(CustomerListArgs, location="query")
    @bp.response(200, CustomerPage)
    def customers_list(args: dict[str, Any]) -> Any:
        """Customers the key may see (merged ones once), newest first."""
        return platform_crm.customers(
            principal(),
            q=args["q"],
            tag=args["tag"],
            channel=args["channel"],
            segment_id=args["segment_id"],
            cursor=args["cursor"],
            limit=args["limit"],
        )

    @bp.route("/customers", methods=["POST"])
    @requires("customers.edit")
    @idempotent
    @bp.arguments(CustomerCreateIn)
    @bp.response(201, CustomerOut)
    def customer_create(data: dict[str, Any]) -> Any:
        """Add a customer with the identities they are known by; an identity that already
        belongs to a customer is 422 and nothing is created."""
        who = principal()
        return platform_crm.customer(who, platform_crm.create_customer(who, data))

    @bp.route(f"/customers/<{ID}:customer_id>", methods=["GET"])
    @requires("customers.view")
    @bp.response(200, CustomerOut)
    def customer_read(customer_id: int) -> Any:
        """One customer with identities, tags, spend, order count and RFM scores. A customer
        merged into another reads as the one that stands now (see its `id`)."""
        return platform_crm.customer(principal(), customer_id)

    @bp.route(f"/customers/<{ID}:customer_id>", methods=["PATCH"])
    @requires("customers.edit")
    @bp.arguments(CustomerUpdateIn)
    @bp.response(200, CustomerOut)
    def customer_update(changes: dict[str, Any], customer_id: int) -> Any:
        """Change a customer's name, phone or e-mail address."""
        who = principal()
        return platform_crm.customer(who, platform_crm.update_customer(who, customer_id, changes))

    @bp.route(f"/customers/<{ID}:customer_id>/tags", methods=["POST"])
    @requires("customers.edit")
    @idempotent
    @bp.arguments(TagIn)
    @bp.response(200, CustomerTagsOut)
    def customer_tag_add(data: dict[str, Any], customer_id: int) -> Any:
        """Put a manual tag on a customer (the tag is created if new). Already there:
        `changed` is false. A rule tag is 422: change its rule instead."""
        standing, changed = platform_crm.tag_customer(
            principal(), customer_id, data["tag"], add=True
        )
        return _tags_reply(standing, changed)

    @bp.route(f"/customers/<{ID}:customer_id>/tags/<tag>", methods=["DELETE"])
    @requires("customers.edit")
    @bp.response(200, CustomerTagsOut)
    def customer_tag_remove(customer_id: int, tag: str) -> Any:
        """Take a manual tag off a customer; `changed` is false if they did not have it."""
        standing, changed = platform_crm.tag_customer(principal(), customer_id, tag, add=False)
        return _tags_reply(standing, changed)

    @bp.route(f"/customers/<{ID}:customer_id>/notes", methods=["GET"])
    @requires("customers.view")
    @bp.response(200, NoteList)
    def customer_notes(customer_id: int) -> Any:
        """Staff notes on a customer, newest first (the newest 200)."""
        return {"items": platform_crm.notes(principal(), customer_id)}

    @bp.route(f"/customers/<{ID}:customer_id>/notes", methods=["POST"])
    @requires("customers.edit")
    @idempotent
    @bp.arguments(NoteIn)
    @bp.response(201, NoteOut)
    def customer_note_add(data: dict[str, Any], customer_id: int) -> Any:
        """Write a note on a customer, as the key's owner; audited."""
        return platform_crm.add_note(principal(), customer_id, data["body"])

    @bp.route(f"/customers/<{ID}:customer_id>/merges", methods=["GET"])
    @requires("customers.view")
    @bp.response(200, MergeList)
    def customer_merges(customer_id: int) -> Any:
        """The merges into a customer, newest first, undone ones included (`split_at`)."""
        return {"items": platform_merges.merges_into(principal(), customer_id)}

    @bp.route(f"/customers/<{ID}:customer_id>/merges", methods=["POST"])
    @requires("customers.edit")
    @idempotent
    @bp.arguments(MergeIn)
    @bp.response(201, MergeOut)
    def customer_merge(data: dict[str, Any], customer_id: int) -> Any:
        """Fold customer `source_id` into this one: orders, identities, tags and notes move
        here and `source_id` reads as this customer from then on. Either one already merged
        into another is 422, naming the customer that stands now. Undo with `split`."""
        return platform_merges.merge(principal(), customer_id, data["source_id"])

    @bp.route(f"/customers/<{ID}:customer_id>/merges/<{ID}:merge_id>/split", methods=["POST"])
    @requires("customers.edit")
    @idempotent
    @bp.response(200, MergeOut)
    def customer_merge_split(customer_id: int, merge_id: int) -> Any:
        """Undo a merge into this customer: what it moved goes back and the source customer
        stands again. A later merge into this customer must be split first (422)."""
        return platform_merges.split(principal(), customer_id, merge_id)
