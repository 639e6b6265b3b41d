"""Tag endpoints: every tag with its count, new rule tags, and deleting a tag."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import idempotent, principal, requires
from koudai_flask.schemas.api_customers import ID, RuleTagIn, TagList, TagOut
from koudai_flask.services import platform_crm


def register(bp: Blueprint) -> None:
    @bp.route("/tags", methods=["GET"])
    @requires("customers.view")
    @bp.response(200, TagList)
    def tags_list() -> Any:
        """Manual and rule tags by name, with how many of the key's customers carry each."""
        return {"items": platform_crm.all_tags(principal())}

    @bp.route("/tags", methods=["POST"])
    @requires("customers.edit")
    @idempotent
    @bp.arguments(RuleTagIn)
    @bp.response(201, TagOut)
    def tag_create(data: dict[str, Any]) -> Any:
        """Create a rule tag; the shop puts it on and takes it off customers as the rule
        holds (computed right after this call, then whenever their orders change)."""
        return platform_crm.create_rule_tag(
            principal(), name=data["name"], rule=data["rule"], description=data["description"]
        )

    @bp.route(f"/tags/<{ID}:tag_id>", methods=["DELETE"])
    @requires("customers.edit")
    @bp.response(204)
    def tag_delete(tag_id: int) -> Any:
        """Take a tag off every customer (each removal in their tag history) and delete it.
        A channel-limited key may not (403): the tag is on customers it cannot see."""
        platform_crm.delete_tag(principal(), tag_id)
        return None
