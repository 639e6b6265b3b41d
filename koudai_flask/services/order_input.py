"""The input of ``orders.place``: ``PlaceOrderInput``, without a schema load when plainly valid.

Nearly every call passes lines of a SKU code and a whole quantity, maybe an address, each
value of exactly the type the schema wants. For those, the schema's own validators are run
on the values by hand, which gives the same data as ``Schema.load`` for a fraction of its
cost. Whatever the hand check is not sure of (another type, a value a validator refuses, an
unknown or missing key) goes through ``Schema.load``, so every error and its message is
marshmallow's. ``tests/test_orders.py`` checks that both ways give the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from marshmallow import ValidationError as MarshmallowError
from marshmallow import fields
from marshmallow.utils import missing

from koudai_flask.schemas import load
from koudai_flask.schemas.orders import PlaceOrderInput

_SCHEMA = PlaceOrderInput()
_LINES = cast(fields.List, _SCHEMA.fields["lines"])
_LINE_FIELDS = cast(fields.Nested, _LINES.inner).schema.fields
_ADDRESS = cast(fields.Nested, _SCHEMA.fields["address"])
_ADDRESS_FIELDS = _ADDRESS.schema.fields
# The top-level scalars, in the schema's order.
_SCALARS = tuple(
    (name, field) for name, field in _SCHEMA.fields.items() if name not in ("lines", "address")
)

Fields = Mapping[str, fields.Field]


def load_place_input(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` loaded as ``PlaceOrderInput`` would load them, or its ValidationError."""
    data = plain_input(values)
    if data is None:
        data = load(_SCHEMA, values, "order")
    return data


def plain_input(values: dict[str, Any]) -> dict[str, Any] | None:
    """The loaded data, or None when only the schema can tell."""
    if values.keys() != _SCHEMA.fields.keys():
        return None
    lines = values["lines"]
    if type(lines) is not list:
        return None
    loaded_lines = []
    for line in lines:
        loaded = _plain_record(_LINE_FIELDS, line)
        if loaded is None:
            return None
        loaded_lines.append(loaded)
    if not _passes(_LINES, loaded_lines):
        return None
    data: dict[str, Any] = {"lines": loaded_lines}
    address = values["address"]
    if address is None:
        if not _ADDRESS.allow_none:
            return None
        data["address"] = None
    else:
        data["address"] = _plain_record(_ADDRESS_FIELDS, address)
        if data["address"] is None:
            return None
    for name, field in _SCALARS:
        value = values[name]
        if not _plain_value(field, value):
            return None
        data[name] = value
    return data


def _plain_record(record_fields: Fields, record: Any) -> dict[str, Any] | None:
    """A nested record loaded by hand, with its fields' defaults, or None."""
    if type(record) is not dict or not record.keys() <= record_fields.keys():
        return None
    loaded: dict[str, Any] = {}
    for name, field in record_fields.items():
        if name in record:
            value = record[name]
            if not _plain_value(field, value):
                return None
            loaded[name] = value
        elif field.required:
            return None
        elif field.load_default is not missing:
            default = field.load_default
            loaded[name] = default() if callable(default) else default
    return loaded


def _plain_value(field: fields.Field, value: Any) -> bool:
    """Whether the field loads ``value`` as ``value`` itself, its validators content."""
    if field.data_key is not None or field.attribute is not None:
        return False
    if getattr(field, "pre_load", None) or getattr(field, "post_load", None):
        return False
    if value is None:
        return field.allow_none
    kind = type(field)
    if kind is fields.String:
        plain = type(value) is str
    elif kind is fields.Integer:
        plain = type(value) is int
    else:
        plain = False
    return plain and _passes(field, value)


def _passes(field: fields.Field, value: Any) -> bool:
    try:
        return all(validator(value) is not False for validator in field.validators)
    except MarshmallowError:
        return False
