"""Segment endpoints: saved filters over customers with live counts, members and CSV."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import idempotent, principal, requires
from koudai_flask.blueprints.api.spooled import spooled_response
from koudai_flask.schemas.api_common import PageArgs
from koudai_flask.schemas.api_customers import ID, CustomerPage, SegmentIn, SegmentList, SegmentOut
from koudai_flask.services import platform_segments

CSV = "text/csv"


def register(bp: Blueprint) -> None:
    @bp.route("/segments", methods=["GET"])
    @requires("customers.view")
    @bp.response(200, SegmentList)
    def segments_list() -> Any:
        """Every segment by name, with how many of the key's customers it holds now."""
        return {"items": platform_segments.all_segments(principal())}

    @bp.route("/segments", methods=["POST"])
    @requires("customers.view")
    @idempotent
    @bp.arguments(SegmentIn)
    @bp.response(201, SegmentOut)
    def segment_create(data: dict[str, Any]) -> Any:
        """Save a segment from the same fields as the back office's form: every field given
        must hold, and the `rule` too. The key also needs `customers.edit` or
        `marketing.manage`."""
        return platform_segments.save(principal(), data)

    @bp.route(f"/segments/<{ID}:segment_id>", methods=["GET"])
    @requires("customers.view")
    @bp.response(200, SegmentOut)
    def segment_read(segment_id: int) -> Any:
        """One segment with its live count."""
        return platform_segments.segment(principal(), segment_id)

    @bp.route(f"/segments/<{ID}:segment_id>", methods=["PUT"])
    @requires("customers.view")
    @idempotent
    @bp.arguments(SegmentIn)
    @bp.response(200, SegmentOut)
    def segment_replace(data: dict[str, Any], segment_id: int) -> Any:
        """Replace a segment's name and fields (those not sent are dropped), as the back
        office's form saves it. The key also needs `customers.edit` or `marketing.manage`."""
        return platform_segments.save(principal(), data, segment_id)

    @bp.route(f"/segments/<{ID}:segment_id>", methods=["DELETE"])
    @requires("customers.view")
    @bp.response(204)
    def segment_delete(segment_id: int) -> Any:
        """Delete a segment; a sent campaign's recipients were fixed when it was sent. The key also
        needs `customers.edit` or `marketing.manage`."""
        platform_segments.delete(principal(), segment_id)
        return None

    @bp.route(f"/segments/<{ID}:segment_id>/members", methods=["GET"])
    @requires("customers.view")
    @bp.arguments(PageArgs, location="query")
    @bp.response(200, CustomerPage)
    def segment_members(args: dict[str, Any], segment_id: int) -> Any:
        """The segment's customers now, newest first."""
        return platform_segments.members(
            principal(), segment_id, cursor=args["cursor"], limit=args["limit"]
        )

    @bp.route(f"/segments/<{ID}:segment_id>/export.csv", methods=["GET"])
    @requires("customers.export")
    @bp.response(
        200,
        {"type": "string", "description": "CSV, UTF-8 with a byte order mark"},
        content_type=CSV,
    )
    def segment_export(segment_id: int) -> Any:
        """The segment's customers as CSV: id, name, phone, email, order_count,
        total_spent_yuan, last_order_at, rfm, tags, identities."""
        found, rows = platform_segments.export(principal(), segment_id)
        # Spooled, not joined in memory; its ETag is made here (the JSON answers get theirs
        # after the request).
        response = spooled_response(rows, mimetype=CSV)
        response.headers["Content-Disposition"] = f"attachment; filename=segment-{found.id}.csv"
        return response
