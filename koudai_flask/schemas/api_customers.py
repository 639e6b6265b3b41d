"""REST API schemas of the CRM: customers, their identities and tags, tags, segments."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from koudai_flask.schemas import Length
from koudai_flask.schemas.api_common import MAX_INT, PageArgs, page_of
from koudai_flask.services.identities import KINDS

# Printable text only: the rule language and the tag names refuse control characters.
_PRINTABLE = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="may not contain control characters")
_TAG = [Length(min=1, max=40), _PRINTABLE]
_ID = validate.Range(min=1, max=MAX_INT)
# A URL id within the columns' range: a bigger one is 404, never a database error.
ID = f"int(min=1, max={MAX_INT})"


class IdentityOut(Schema):
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    value = fields.String(required=True)
    verified = fields.Boolean(
        required=True, metadata={"description": "Proven by its owner (an SMS code for a phone)."}
    )
    created_at = fields.DateTime(required=True)


class StatsOut(Schema):
    order_count = fields.Integer(
        required=True, metadata={"description": "Orders paid for and not fully refunded."}
    )
    total_spent = fields.Integer(required=True, metadata={"description": "fen, less refunds"})
    first_order_at = fields.DateTime(required=True, allow_none=True)
    last_order_at = fields.DateTime(required=True, allow_none=True)
    rfm_r = fields.Integer(required=True, metadata={"description": "Recency score 0-5."})
    rfm_f = fields.Integer(required=True, metadata={"description": "Frequency score 0-5."})
    rfm_m = fields.Integer(required=True, metadata={"description": "Monetary score 0-5."})


class CustomerSummaryOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    phone = fields.String(required=True, allow_none=True)
    email = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    tags = fields.List(fields.String(), required=True)


class SavedAddressOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    phone = fields.String(required=True)
    province = fields.String(required=True)
    city = fields.String(required=True)
    district = fields.String(required=True)
    street = fields.String(required=True)
    postcode = fields.String(required=True)
    is_default = fields.Boolean(
        required=True, metadata={"description": "the one the shop's checkout offers first"}
    )


class CustomerOut(CustomerSummaryOut):
    identities = fields.List(fields.Nested(IdentityOut), required=True)
    addresses = fields.List(
        fields.Nested(SavedAddressOut),
        required=True,
        metadata={"description": "The buyer's address book in the shop, the default first."},
    )
    rule_tags = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Those of `tags` computed by a rule (not settable by hand)."},
    )
    stats = fields.Nested(StatsOut, required=True)


CustomerPage = page_of(CustomerSummaryOut, "CustomerPage")


class CustomerListArgs(PageArgs):
    q = fields.String(
        load_default=None,
        validate=Length(min=1, max=100),
        metadata={"description": "Part of a name, phone number or e-mail address."},
    )
    tag = fields.String(load_default=None, validate=_TAG, metadata={"description": "A tag name."})
    channel = fields.String(
        load_default=None,
        validate=Length(min=1, max=64),
        metadata={"description": "Customers that channel knows: an order there or a follower."},
    )
    segment_id = fields.Integer(
        load_default=None, validate=_ID, metadata={"description": "Members of that segment."}
    )


class IdentityIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    value = fields.String(required=True, validate=Length(min=1, max=128))


_NAME = Length(max=120)
_PHONE = Length(min=5, max=32)
_EMAIL = Length(min=3, max=254)


class CustomerCreateIn(Schema):
    name = fields.String(load_default="", validate=_NAME)
    phone = fields.String(load_default=None, allow_none=True, validate=_PHONE)
    email = fields.String(load_default=None, allow_none=True, validate=_EMAIL)
    identities = fields.List(
        fields.Nested(IdentityIn),
        load_default=list,
        validate=Length(max=20),
        metadata={
            "description": "Ways the customer is known (a WeChat openid, a Taobao buyer, ...); "
            "the phone and e-mail become identities too. One already known is 422."
        },
    )


class CustomerUpdateIn(Schema):
    name = fields.String(validate=_NAME)
    phone = fields.String(allow_none=True, validate=_PHONE, metadata={"description": "null clears"})
    email = fields.String(allow_none=True, validate=_EMAIL, metadata={"description": "null clears"})


class TagIn(Schema):
    tag = fields.String(required=True, validate=_TAG, metadata={"description": "A manual tag."})


class CustomerTagsOut(Schema):
    customer_id = fields.Integer(required=True)
    tags = fields.List(fields.String(), required=True)
    changed = fields.Boolean(
        required=True, metadata={"description": "False when the customer already was so."}
    )


class TagOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": ["manual", "rule"]})
    rule = fields.String(required=True, allow_none=True)
    customers = fields.Integer(
        required=True, metadata={"description": "Customers carrying it, of those the key sees."}
    )
    recomputed_at = fields.DateTime(required=True, allow_none=True)


class TagList(Schema):
    items = fields.List(fields.Nested(TagOut), required=True)


_RULE = {
    "description": "A rule of the rule language, e.g. `total_spent >= 50000 and "
    "days_since_last_order <= 30`. A rule that does not parse is 422 with its `position` "
    "(1-based character) in `errors`."
}


class RuleTagIn(Schema):
    name = fields.String(required=True, validate=_TAG)
    rule = fields.String(
        required=True, validate=[Length(min=1, max=1000), _PRINTABLE], metadata=_RULE
    )
    description = fields.String(load_default="", validate=Length(max=200))


_SHORT = [Length(min=1, max=100), _PRINTABLE]
_YUAN = validate.Range(min=0, max=100_000_000)
_SCORE = validate.Range(min=0, max=5)


class SegmentFiltersIn(Schema):
    """The admin form's fields: every one given must hold (and the ``rule``, if any)."""

    tag = fields.String(validate=_TAG)
    channel = fields.String(
        validate=_SHORT, metadata={"description": "Channel name or kind of a counted order."}
    )
    city = fields.String(validate=_SHORT)
    min_spent_yuan = fields.Integer(strict=True, validate=_YUAN)
    max_spent_yuan = fields.Integer(strict=True, validate=_YUAN)
    min_orders = fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000))
    min_rfm_r = fields.Integer(strict=True, validate=_SCORE)
    min_rfm_f = fields.Integer(strict=True, validate=_SCORE)
    min_rfm_m = fields.Integer(strict=True, validate=_SCORE)
    last_order_from = fields.Date(metadata={"description": "Shop's time zone."})
    last_order_to = fields.Date()
    first_seen_from = fields.Date()
    first_seen_to = fields.Date()
    rule = fields.String(validate=[Length(min=1, max=1000), _PRINTABLE], metadata=_RULE)


class SegmentIn(SegmentFiltersIn):
    name = fields.String(required=True, validate=[Length(min=1, max=80), _PRINTABLE])


class SegmentOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    rule = fields.String(required=True, metadata={"description": "The rule the filters make."})
    filters = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "As typed."},
    )
    count = fields.Integer(
        required=True, metadata={"description": "Members now, of the customers the key sees."}
    )
    created_by = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class SegmentList(Schema):
    items = fields.List(fields.Nested(SegmentOut), required=True)


# -- notes and merges ------------------------------------------------------------------------


class NoteIn(Schema):
    body = fields.String(
        required=True,
        validate=[
            Length(min=1, max=2000),
            # Line breaks are fine in a note; other control characters are not.
            validate.Regexp(
                r"^[^\x00-\x09\x0b-\x1f\x7f]*$", error="may not contain control characters"
            ),
        ],
    )


class NoteOut(Schema):
    id = fields.Integer(required=True)
    author = fields.String(
        required=True, metadata={"description": "`staff:<user id>`: the key's owner, or staff."}
    )
    body = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class NoteList(Schema):
    items = fields.List(
        fields.Nested(NoteOut), required=True, metadata={"description": "The newest 200."}
    )


class MergeIn(Schema):
    source_id = fields.Integer(
        required=True,
        strict=True,
        validate=_ID,
        metadata={"description": "The customer folded into the one in the path."},
    )


class MergeOut(Schema):
    id = fields.Integer(required=True)
    source_id = fields.Integer(required=True)
    target_id = fields.Integer(required=True)
    reason = fields.String(
        required=True,
        metadata={"description": "`manual` (staff or the API), `phone` or `wechat_unionid`."},
    )
    actor = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    split_at = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "Set once the merge is undone."}
    )


class MergeList(Schema):
    items = fields.List(fields.Nested(MergeOut), required=True)
