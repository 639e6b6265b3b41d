"""Signed hooks of ``webhook_erp`` channels: stock counts and shipments an in-house ERP sends.

``POST <hooks prefix>/erp/<channel name>/stock``::

    {"event_id": "stock:2026-01-01T08:00:00Z",
     "counts": [{"sku": "SHIRT-W", "quantity": 12},
                {"item_id": "A-100", "sku_id": "A-100-BLUE", "quantity": 0}]}

Each count names our SKU code (``sku``) or the ERP's ids of a binding (``item_id`` and
optionally ``sku_id``); ``quantity`` is the absolute count on hand there. The answer is
``{"event_id", "applied", "unchanged", "unknown": [...], "refused": [...]}``: ``unknown``
lists the rows that match no binding and no SKU code, ``refused`` those our ledger could not
take (a count below what open orders have reserved).

``POST <hooks prefix>/erp/<channel name>/shipment``::

    {"event_id": "ship:PKG-1", "order_number": "K...", "carrier": "yuantong",
     "tracking_number": "YT...", "shipped_at": "2026-01-01T09:30:00Z" (optional)}

``carrier`` is a Kuaidi100 code. The answer is ``{"event_id", "order_number", "shipped"}``
(``shipped`` false when the order had already been shipped).

Both are signed as :mod:`koudai_flask.connectors.erp.webhook` describes. Refusals change
nothing and answer ``{"code", "message", "errors"}``: 404 (no such ``webhook_erp`` channel),
401 (signature or timestamp), 409 (event id already taken: the ERP counts it as delivered),
400 (not a JSON object), 422 (fields), 413 (body too large); 503 when our database failed
(send the event again). No CSRF token applies: the signature authenticates the body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy.exc import SQLAlchemyError

from koudai_flask.connectors.base import RemoteShipment, RemoteStock
from koudai_flask.connectors.erp.webhook import EVENT_ID_HEADER, verify
from koudai_flask.connectors.logistics import carriers
from koudai_flask.errors import KoudaiError, NotFound, SignatureError
from koudai_flask.schemas import Length, load
from koudai_flask.services import channels, receipts
from koudai_flask.services.receipts import MAX_RECEIPT_ID

log = logging.getLogger("koudai_flask.erp")

KIND = "webhook_erp"
# A full stock count of some ten thousand SKUs fits well within this.
MAX_BODY = 2 * 1024 * 1024
MAX_COUNTS = 20000


class StockCountInput(Schema):
    sku = fields.String(validate=Length(min=1, max=64))
    item_id = fields.String(validate=Length(min=1, max=64))
    sku_id = fields.String(load_default="", validate=Length(max=64))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))

    @validates_schema
    def _names_a_sku(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("sku") and not data.get("item_id"):
            raise MarshmallowError("a count names our sku, or their item_id (and sku_id)")


class StockEventInput(Schema):
    event_id = fields.String(required=True, validate=Length(min=1, max=MAX_RECEIPT_ID))
    counts = fields.List(
        fields.Nested(StockCountInput), required=True, validate=Length(max=MAX_COUNTS)
    )


class ShipmentEventInput(Schema):
    event_id = fields.String(required=True, validate=Length(min=1, max=MAX_RECEIPT_ID))
    order_number = fields.String(required=True, validate=Length(min=1, max=64))
    carrier = fields.String(
        required=True,
        validate=validate.OneOf(sorted(carriers.CARRIERS), error="not a known Kuaidi100 code"),
    )
    tracking_number = fields.String(required=True, validate=Length(min=1, max=64))
    shipped_at = fields.AwareDateTime(load_default=None, allow_none=True)


_stock_schema = StockEventInput()
_shipment_schema = ShipmentEventInput()


class Replayed(KoudaiError):
    """The event id was already taken on this channel."""

    http_status = 409


class Malformed(KoudaiError):
    """The body is not a JSON object, or its event id header contradicts it."""


class TooLarge(KoudaiError):
    """The body is larger than any event of this protocol needs."""

    http_status = 413


def register_routes(bp: Blueprint) -> None:
    bp.add_url_rule(
        "/erp/<channel_name>/stock", "webhook_erp_stock", webhook_erp_stock, methods=["POST"]
    )
    bp.add_url_rule(
        "/erp/<channel_name>/shipment",
        "webhook_erp_shipment",
        webhook_erp_shipment,
        methods=["POST"],
    )


def webhook_erp_stock(channel_name: str) -> Response:
    from koudai_flask.services.stock_sync import apply_remote_stock

    def apply(data: dict[str, Any]) -> dict[str, Any]:
        rows = [
            RemoteStock(
                external_item_id=count.get("item_id", ""),
                external_sku_id=count.get("sku_id", ""),
                quantity=count["quantity"],
                sku_code=count.get("sku", ""),
            )
            for count in data["counts"]
        ]
        report = apply_remote_stock(channel_name, rows, reference=data["event_id"])
        return {
            "applied": report.applied,
            "unchanged": report.unchanged,
            "unknown": list(report.unknown),
            "refused": list(report.refused),
        }

    return _receive(channel_name, _stock_schema, apply)


def webhook_erp_shipment(channel_name: str) -> Response:
    from koudai_flask.services.order_sync import apply_remote_shipment

    def apply(data: dict[str, Any]) -> dict[str, Any]:
        shipment = RemoteShipment(
            order_number=data["order_number"],
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
            shipped_at=data["shipped_at"].astimezone(UTC) if data["shipped_at"] else None,
        )
        shipped = apply_remote_shipment(channel_name, shipment)
        return {"order_number": shipment.order_number, "shipped": bool(shipped)}

    return _receive(channel_name, _shipment_schema, apply)


def _receive(
    channel_name: str,
    schema: Schema,
    apply: Callable[[dict[str, Any]], dict[str, Any]],
) -> Response:
    """Authenticate, parse, refuse a replay, apply, then record the receipt."""
    try:
        channel_id, secret = _channel(channel_name)
        if (request.content_length or 0) > MAX_BODY:
            raise TooLarge(f"body of {request.content_length} bytes is over {MAX_BODY}")
        body = request.get_data(cache=True)
        if len(body) > MAX_BODY:
            raise TooLarge(f"body of {len(body)} bytes is over {MAX_BODY}")
        verify(secret, request.headers, body)
        data = load(schema, _json_object(body), "event")
        event_id: str = data["event_id"]
        header_id = request.headers.get(EVENT_ID_HEADER)
        if header_id is not None and header_id != event_id:
            raise Malformed(f"{EVENT_ID_HEADER} differs from the body's event_id")
        if receipts.seen(channel_id, event_id):
            raise Replayed(f"event {event_id!r} was already received on {channel_name!r}")
        # The appliers are idempotent (stock per reference and SKU, a shipment by its
        # waybill), so applying before taking the receipt is safe: a copy racing this one
        # changes nothing more and loses the receipt below, and an event whose receipt could
        # not be stored is applied no further when the ERP sends it again.
        outcome = apply(data)
        if not receipts.take(channel_id, event_id):
            raise Replayed(f"event {event_id!r} was already received on {channel_name!r}")
    except KoudaiError as exc:
        return _refuse(channel_name, exc)
    except SQLAlchemyError:
        # Our database failed, not the event: a 5xx makes the ERP send it again.
        log.exception("%s event for %r could not be stored", _event_kind(), channel_name)
        return _reply("Unavailable", "temporarily unable to store the event; send it again", 503)
    return jsonify({"event_id": event_id, **outcome})


def _channel(name: str) -> tuple[int, str]:
    """The channel's id and secret; any other kind is as unknown as a missing channel."""
    try:
        channel = channels.info(name)
    except NotFound:
        channel = None
    if channel is None or channel.kind != KIND or not channel.active:
        raise NotFound(f"no active {KIND} channel named {name!r}")
    secret = str(channel.settings.get("secret") or "")
    if not secret:
        raise SignatureError(f"channel {name!r} has no secret to verify events with")
    return channel.id, secret


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:
        raise Malformed("the body is not JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise Malformed("the body is not a JSON object")
    return data


def _refuse(channel_name: str, exc: KoudaiError) -> Response:
    # One line per refusal: the reason, never the secret, the signature or the body.
    log.warning(
        "%s event for %r refused with %s from %s: %s",
        _event_kind(),
        channel_name,
        exc.http_status,
        request.remote_addr,
        exc.message,
    )
    errors = getattr(exc, "messages", {})
    return _reply(type(exc).__name__, exc.message, exc.http_status, errors)


def _reply(code: str, message: str, status: int, errors: dict[str, Any] | None = None) -> Response:
    response = jsonify({"code": code, "message": message, "errors": errors or {}})
    response.status_code = status
    return response


def _event_kind() -> str:
    return request.path.rsplit("/", 1)[-1]
