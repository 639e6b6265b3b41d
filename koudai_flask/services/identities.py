"""One customer across channels: the identities they are known by, merged on strong keys.

An identity is a ``(kind, value)`` pair owned by exactly one customer. Two keys are strong
enough to say two customers are one person and merge them automatically: the same WeChat
``unionid`` (WeChat guarantees one per person across an open-platform account), and the same
phone number when both sides proved it (an SMS code: ``verified=True``). Every other key is
weak (an e-mail typed at checkout, a Taobao nick, an unverified phone): it never merges;
staff may merge by hand (services.merges), and every merge can be split again.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.exc import IntegrityError

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Customer, CustomerIdentity, CustomerMerge, IdentityVerification
from koudai_flask.services import outbox
from koudai_flask.services.transaction import current_session, unit_of_work

KINDS = (
    "web",
    "phone",
    "email",
    "wechat_openid",
    "wechat_unionid",
    "weibo_uid",
    "taobao_nick",
    "taobao_open_uid",
)
# The channel kind an identity proves a customer belongs to (for staff channel scope).
CHANNEL_OF_KIND = {
    "wechat_openid": "wechat",
    "wechat_unionid": "wechat",
    "weibo_uid": "weibo",
    "taobao_nick": "taobao",
    "taobao_open_uid": "taobao",
}
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise(kind: str, value: str) -> str:
    """The stored form of an identity value; a bad kind or value is a ValidationError."""
    if kind not in KINDS:
        raise ValidationError(
            f"unknown identity kind {kind!r}; use one of {', '.join(KINDS)}",
            {"kind": ["unknown"]},
        )
    if not isinstance(value, str):
        raise ValidationError(f"a {kind} is text", {"value": ["not text"]})
    value = value.strip()
    if kind == "email":
        value = value.lower()
        if "@" not in value:
            raise ValidationError(f"{value!r} is not an e-mail address", {"value": ["invalid"]})
    elif kind == "phone":
        value = _PHONE_SEPARATORS.sub("", value)
        if value.startswith("+86"):
            value = value[3:]
        if not re.fullmatch(r"\+?[0-9]{5,20}", value):
            raise ValidationError(f"{value!r} is not a phone number", {"value": ["invalid"]})
    if not value or len(value) > 128 or _CONTROL.search(value):
        raise ValidationError(
            f"a {kind} is 1 to 128 printable characters", {"value": ["invalid length"]}
        )
    return value


def is_strong(kind: str, *, verified: bool, other_verified: bool) -> bool:
    """Whether a shared identity proves two customers are one person."""
    if kind == "wechat_unionid":
        return True
    return kind == "phone" and verified and other_verified


def merged_into(customer_id: int) -> int | None:
    """The customer this one was merged into (None while it stands on its own)."""
    return current_session().scalar(
        select(CustomerMerge.target_id).where(
            CustomerMerge.source_id == customer_id, CustomerMerge.split_at.is_(None)
        )
    )


def resolve(customer_id: int) -> int:
    """Follow merges to the customer that stands for ``customer_id`` now."""
    seen = {customer_id}
    while (target := merged_into(customer_id)) is not None:
        if target in seen:  # a cycle cannot be written, but never loop on bad data
            break
        seen.add(target)
        customer_id = target
    return customer_id


def not_merged_away() -> ColumnElement[bool]:
    """A WHERE clause over ``Customer``: only customers that were not merged into another."""
    return ~exists().where(CustomerMerge.source_id == Customer.id, CustomerMerge.split_at.is_(None))


def _find(kind: str, value: str) -> CustomerIdentity | None:
    return current_session().scalar(
        select(CustomerIdentity).where(
            CustomerIdentity.kind == kind, CustomerIdentity.value == value
        )
    )


def is_verified(identity_id: int) -> bool:
    return (
        current_session().scalar(
            select(IdentityVerification.id).where(IdentityVerification.identity_id == identity_id)
        )
        is not None
    )


def _mark_verified(identity: CustomerIdentity) -> None:
    if not is_verified(identity.id):
        current_session().add(IdentityVerification(identity_id=identity.id))


def _fill_contact(customer: Customer, kind: str, value: str, name: str | None) -> None:
    if kind == "phone" and not customer.phone:
        customer.phone = value
    elif kind == "email" and not customer.email:
        customer.email = value
    if name and not customer.name:
        customer.name = name.strip()[:120]


def _attach(customer: Customer, kind: str, value: str, verified: bool) -> CustomerIdentity:
    session = current_session()
    identity = CustomerIdentity(customer_id=customer.id, kind=kind, value=value)
    session.add(identity)
    session.flush()
    if verified:
        _mark_verified(identity)
    outbox.record(
        session,
        "customer.identity_linked",
        {"customer_id": customer.id, "kind": kind},
    )
    return identity


def link_identity(
    kind: str,
    value: str,
    *,
    customer_id: int | None = None,
    name: str | None = None,
    verified: bool = False,
) -> int:
    """The id of the customer who owns ``kind``/``value`` after linking it; one transaction.

    - Unknown identity: attached to ``customer_id``, or to a new customer (outbox
      ``customer.created``) when none is given.
    - Known identity, same customer or none given: its owner (marked verified if asked).
    - Known identity owned by another customer: a strong key merges that customer into
      ``customer_id`` (the one the caller acts for survives); a verified phone held
      unverified by another customer moves to ``customer_id``; a weak key changes nothing
      and the owner's id is returned.
    """
    value = normalise(kind, value)
    try:
        return _link(kind, value, customer_id, name, verified)
    except IntegrityError:
        if current_session().info.get("koudai_depth", 0):
            raise  # inside a caller's transaction: the caller decides what to do
        # Another request linked the same identity first: decide again on what it wrote.
        return _link(kind, value, customer_id, name, verified)


def _link(kind: str, value: str, customer_id: int | None, name: str | None, verified: bool) -> int:
    from koudai_flask.services import merges

    with unit_of_work() as session:
        wanted: Customer | None = None
        if customer_id is not None:
            wanted = session.get(Customer, resolve(customer_id))
            if wanted is None:
                raise NotFound(f"unknown customer {customer_id}")
        existing = _find(kind, value)
        if existing is None:
            if wanted is None:
                wanted = Customer(name=(name or "").strip()[:120])
                session.add(wanted)
                session.flush()
                outbox.record(session, "customer.created", {"customer_id": wanted.id})
            _fill_contact(wanted, kind, value, name)
            _attach(wanted, kind, value, verified)
            return wanted.id
        owner_id = resolve(existing.customer_id)
        if wanted is None or wanted.id == owner_id:
            if verified:
                _mark_verified(existing)
            owner = session.get(Customer, owner_id)
            if owner is not None:
                _fill_contact(owner, kind, value, name)
            return owner_id
        held_verified = is_verified(existing.id)
        if is_strong(kind, verified=verified, other_verified=held_verified):
            merges.merge_into(owner_id, wanted.id, reason=kind, actor="system")
            if verified:
                _mark_verified(existing)
            return wanted.id
        if kind == "phone" and verified and not held_verified:
            # A phone someone merely typed gives way to the customer who proved it.
            before = existing.customer_id
            previous = session.get(Customer, before)
            if previous is not None and previous.phone == value:
                previous.phone = None
            existing.customer_id = wanted.id
            _mark_verified(existing)
            _fill_contact(wanted, kind, value, name)
            from koudai_flask.services.staff import audit

            audit(
                "system",
                "customers.identity_moved",
                "customer",
                str(wanted.id),
                {"customer_id": before, "kind": kind},
                {"customer_id": wanted.id, "kind": kind, "verified": True},
            )
            outbox.record(
                session, "customer.identity_linked", {"customer_id": wanted.id, "kind": kind}
            )
            return wanted.id
        return owner_id


def identities_of(customer_id: int) -> list[tuple[CustomerIdentity, bool]]:
    """A customer's identities with whether each is verified, in the order they came."""
    session = current_session()
    verified = select(IdentityVerification.identity_id).where(
        IdentityVerification.identity_id == CustomerIdentity.id
    )
    rows = session.execute(
        select(CustomerIdentity, exists(verified))
        .where(CustomerIdentity.customer_id == customer_id)
        .order_by(CustomerIdentity.id)
    ).all()
    return [(identity, bool(flag)) for identity, flag in rows]
