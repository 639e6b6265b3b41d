"""REST API schemas of sales channels and their sync status (never their settings)."""

from __future__ import annotations

from marshmallow import Schema, fields


class ChannelOut(Schema):
    name = fields.String(required=True)
    kind = fields.String(required=True)
    active = fields.Boolean(required=True)
    status = fields.String(
        required=True,
        metadata={"description": "ok | failing | auth_expired"},
    )
    last_sync_at = fields.DateTime(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    linked_skus = fields.Integer(required=True)
    dead_letters = fields.Integer(required=True)
    oldest_pending_push = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "The oldest stock change not yet pushed to the channel."},
    )


class ChannelList(Schema):
    items = fields.List(fields.Nested(ChannelOut), required=True)
