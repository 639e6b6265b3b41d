"""REST API schemas of the stock ledger: levels, adjustments and counts."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.schemas import Length
from koudai_flask.schemas.api_common import PageArgs, page_of

_LOCATION = {"description": "A stock location's code; omit for the default location."}
_EXPECTED = {
    "description": "Compare-and-set: the on-hand count you last read. If the count is no "
    "longer this, nothing changes and the answer is 409."
}


class StockLevelOut(Schema):
    sku = fields.String(required=True)
    location = fields.String(required=True)
    on_hand = fields.Integer(required=True)
    reserved = fields.Integer(required=True)
    available = fields.Integer(required=True)


class StockReadOut(StockLevelOut):
    buyers_waiting = fields.Integer(
        required=True,
        metadata={
            "description": "Buyers who asked to be told when it is back in stock (到货提醒) and "
            "wait still: demand the shelf lacks."
        },
    )


StockPage = page_of(StockLevelOut, "StockPage")


class StockListArgs(PageArgs):
    sku = fields.String(load_default=None, validate=Length(min=1, max=64))
    location = fields.String(load_default=None, validate=Length(min=1, max=40))


class AdjustmentIn(Schema):
    delta = fields.Integer(
        required=True,
        strict=True,
        validate=[validate.Range(min=-1_000_000, max=1_000_000), validate.NoneOf([0])],
        metadata={"description": "Units to add (negative to remove) to the on-hand count."},
    )
    reason = fields.String(load_default="adjustment", validate=Length(min=1, max=32))
    note = fields.String(load_default="", validate=Length(max=300))
    location = fields.String(load_default=None, validate=Length(min=1, max=40), metadata=_LOCATION)
    expected_on_hand = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=0, max=10_000_000),
        metadata=_EXPECTED,
    )


class CountIn(Schema):
    quantity = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=10_000_000),
        metadata={"description": "The absolute on-hand count (a stocktake)."},
    )
    location = fields.String(load_default=None, validate=Length(min=1, max=40), metadata=_LOCATION)
    expected_on_hand = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=0, max=10_000_000),
        metadata=_EXPECTED,
    )
