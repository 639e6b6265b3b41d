"""What the REST API reads and does in the CRM: customers, their identities and tags.

Every function acts as the key's owner through the services the back office uses, and sees
only the customers both the owner and the key may see: the owner's channel scope
(``backoffice.customer_query``) narrowed to the key's channels, if it has a list. A
customer outside them does not exist (404). A customer merged into another reads as the one
that stands for them now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from koudai_flask.errors import NotFound, PermissionDenied, ValidationError
from koudai_flask.models import Customer, CustomerIdentity, CustomerTag, Tag
from koudai_flask.services import (
    backoffice,
    crm_profile,
    identities,
    outbox,
    rule_tags,
    segments,
    staff,
    tag_rules,
)
from koudai_flask.services.api_keys import Principal
from koudai_flask.services.customer_stats import CustomerStats, stats_of
from koudai_flask.services.customers import addresses as address_book
from koudai_flask.services.platform_reads import Page, _page
from koudai_flask.services.transaction import current_session, unit_of_work


@dataclass(frozen=True)
class CustomerSummary:
    id: int
    name: str
    phone: str | None
    email: str | None
    created_at: datetime
    tags: list[str]


@dataclass(frozen=True)
class IdentityView:
    kind: str
    value: str
    verified: bool
    created_at: datetime


@dataclass(frozen=True)
class CustomerView(CustomerSummary):
    identities: list[IdentityView]
    rule_tags: list[str]
    stats: CustomerStats
    addresses: list[dict[str, Any]]  # the buyer's address book, the default first


def _actor(who: Principal) -> str:
    return f"staff:{who.user_id}"


def visible(
    who: Principal, q: str | None = None, *, rule: str | None = None, permission: str = ""
) -> Select[Customer]:
    """The customers the key may see (its owner holding ``permission`` as well)."""
    member = staff.require(who.user_id, permission or "customers.view")
    query = backoffice.customer_query(member, q, rule=rule)
    if who.channels is not None:
        query = query.where(backoffice.customers_on_channels(sorted(who.channels)))
    return query


def rule_error(exc: tag_rules.RuleError) -> tag_rules.RuleError:
    """The rule language's error with where it is: ``errors.position`` (1-based)."""
    if exc.position is not None:
        exc.messages["position"] = exc.position + 1
    return exc


def _tag_names(ids: list[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    if ids:
        for customer_id, name in current_session().execute(
            select(CustomerTag.customer_id, Tag.name)
            .join(Tag, Tag.id == CustomerTag.tag_id)
            .where(CustomerTag.customer_id.in_(ids))
            .order_by(Tag.name)
        ):
            names.setdefault(customer_id, []).append(name)
    return names


def summaries(page: Page[Customer]) -> Page[CustomerSummary]:
    tags = _tag_names([c.id for c in page.items])
    items = [
        CustomerSummary(c.id, c.name, c.phone, c.email, c.created_at, tags.get(c.id, []))
        for c in page.items
    ]
    return Page(items, page.next_cursor)


# -- reads -----------------------------------------------------------------------------------


def customers(
    who: Principal,
    *,
    q: str | None,
    tag: str | None,
    channel: str | None,
    segment_id: int | None,
    cursor: str | None,
    limit: int,
) -> Page[CustomerSummary]:
    """Customers the key sees, newest first, matching every filter given."""
    rules = []
    if tag is not None:
        rules.append(f"tag == {segments.quote(tag)}")
    if segment_id is not None:
        try:
            rules.append(f"({segments.get(segment_id).rule})")
        except NotFound:
            raise ValidationError(
                f"unknown segment {segment_id}", {"segment_id": ["unknown segment"]}
            ) from None
    query = visible(who, q, rule=" and ".join(rules) or None)
    if channel is not None:
        query = query.where(backoffice.customers_on_channels([channel]))
    return summaries(_page(query, Customer.id, cursor, limit, newest=True))


def standing_id(who: Principal, customer_id: int, permission: str = "") -> int:
    """The id of the customer that stands for ``customer_id``, if the key sees them."""
    standing = identities.resolve(customer_id)
    found = current_session().scalar(
        visible(who, permission=permission)
        .where(Customer.id == standing)
        .with_only_columns(Customer.id)
    )
    if found is None:
        raise NotFound(f"unknown customer {customer_id}")
    return int(found)


def customer(who: Principal, customer_id: int) -> CustomerView:
    """One customer with identities, tags and figures (spend, orders, RFM)."""
    found = current_session().get(Customer, standing_id(who, customer_id))
    assert found is not None
    names = _tag_names([found.id]).get(found.id, [])
    by_rule = set(
        current_session().scalars(
            select(Tag.name)
            .join(CustomerTag, CustomerTag.tag_id == Tag.id)
            .where(CustomerTag.customer_id == found.id, Tag.rule.is_not(None))
        )
    )
    return CustomerView(
        found.id,
        found.name,
        found.phone,
        found.email,
        found.created_at,
        names,
        identities=[
            IdentityView(i.kind, i.value, verified, i.created_at)
            for i, verified in identities.identities_of(found.id)
        ],
        rule_tags=[name for name in names if name in by_rule],
        stats=stats_of(found.id),
        addresses=[
            {**address.as_dict(), "id": address.id, "is_default": address.is_default}
            for address in address_book(found.id)
        ],
    )


# -- changes ---------------------------------------------------------------------------------


def _contact(kind: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return identities.normalise(kind, value)
    except ValidationError as exc:
        raise ValidationError(exc.message, {kind: list(exc.messages.get("value", []))}) from None


def create_customer(who: Principal, data: dict[str, Any]) -> int:
    """A new customer with their identities; an identity already known is a 422.

    The customer must be one the key can see afterwards: a channel-limited key has to give
    an identity of one of its channels (a WeChat follower's openid), else 403.
    """
    staff.require(who.user_id, "customers.edit")
    phone, email = _contact("phone", data["phone"]), _contact("email", data["email"])
    wanted: list[tuple[str, str]] = []
    for n, item in enumerate(data["identities"]):
        try:
            pair = (item["kind"], identities.normalise(item["kind"], item["value"]))
        except ValidationError as exc:
            raise ValidationError(exc.message, {"identities": {n: exc.messages}}) from None
        if pair not in wanted:
            wanted.append(pair)
    for kind, value in (("phone", phone), ("email", email)):
        if value is not None and (kind, value) not in wanted:
            wanted.append((kind, value))
    try:
        with unit_of_work() as session:
            for kind, value in wanted:
                taken = session.scalar(
                    select(CustomerIdentity.id).where(
                        CustomerIdentity.kind == kind, CustomerIdentity.value == value
                    )
                )
                if taken is not None:
                    raise _identity_taken(kind)
            new = Customer(name=" ".join(data["name"].split()), phone=phone, email=email)
            session.add(new)
            session.flush()
            outbox.record(session, "customer.created", {"customer_id": new.id})
            for kind, value in wanted:
                # Linked by another request since the check above: a weak key stays theirs.
                if identities.link_identity(kind, value, customer_id=new.id) != new.id:
                    raise _identity_taken(kind)
            if session.scalar(visible(who).where(Customer.id == new.id)) is None:
                raise PermissionDenied(
                    "this API key sees only the customers of its channels: give the customer "
                    "an identity of one of them (a WeChat openid, ...)"
                )
            staff.audit(
                _actor(who),
                "customers.create",
                "customer",
                str(new.id),
                None,
                {"name": new.name, "identities": sorted({kind for kind, _ in wanted})},
            )
            return new.id
    except IntegrityError:  # a concurrent request linked one of the identities first
        raise _identity_taken(wanted[0][0] if wanted else "identity") from None


def _identity_taken(kind: str) -> ValidationError:
    return ValidationError(
        f"this {kind} already belongs to a customer; look them up with GET /customers?q=",
        {"identities": [f"{kind} already known"]},
    )


def update_customer(who: Principal, customer_id: int, changes: dict[str, Any]) -> int:
    """Change a customer's name, phone or e-mail (contact details, not identities)."""
    if not changes:
        raise ValidationError("send at least one field to change", {"_schema": ["empty"]})
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = " ".join(changes["name"].split())
    for kind in ("phone", "email"):
        if kind in changes:
            values[kind] = _contact(kind, changes[kind])
    with unit_of_work() as session:
        found = session.get(Customer, standing_id(who, customer_id, "customers.edit"))
        assert found is not None
        before = {name: getattr(found, name) for name in values}
        for name, value in values.items():
            setattr(found, name, value)
        staff.audit(_actor(who), "customers.update", "customer", str(found.id), before, values)
        return found.id


def tag_customer(who: Principal, customer_id: int, name: str, *, add: bool) -> tuple[int, bool]:
    """Put a manual tag on a customer or take it off; ``(customer id, whether it changed)``."""
    standing = standing_id(who, customer_id, "customers.edit")
    return standing, crm_profile.tag_customer(who.user_id, standing, name, add=add)


# -- tags ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagView:
    id: int
    name: str
    description: str
    kind: str
    rule: str | None
    customers: int
    recomputed_at: datetime | None


def _tag_view(tag: Tag, count: int) -> TagView:
    kind = "manual" if tag.rule is None else "rule"
    return TagView(tag.id, tag.name, tag.description, kind, tag.rule, count, tag.recomputed_at)


def all_tags(who: Principal) -> list[TagView]:
    """Every tag by name, with how many of the customers the key sees carry it."""
    seen = visible(who).order_by(None).with_only_columns(Customer.id)
    counts = {
        tag_id: n
        for tag_id, n in current_session().execute(
            select(CustomerTag.tag_id, func.count(CustomerTag.id))
            .where(CustomerTag.customer_id.in_(seen))
            .group_by(CustomerTag.tag_id)
        )
    }
    rows = current_session().scalars(select(Tag).order_by(Tag.name))
    return [_tag_view(tag, int(counts.get(tag.id, 0))) for tag in rows]


def create_rule_tag(who: Principal, *, name: str, rule: str, description: str) -> TagView:
    """A tag computed by ``rule`` (recomputed for everyone after commit)."""
    try:
        tag = rule_tags.save_rule_tag(who.user_id, name, rule, description=description)
    except tag_rules.RuleError as exc:
        raise rule_error(exc) from None
    except IntegrityError:  # a concurrent request took the name first
        raise ValidationError(
            f"a tag named {name!r} exists",
            {"name": ["taken"]},
            reason="tag_taken",
            detail={"name": name},
        ) from None
    return _tag_view(tag, 0)


def delete_tag(who: Principal, tag_id: int) -> None:
    """Take a tag off everyone and delete it, as the back office does (audited)."""
    if who.channels is not None:
        # The tag is on customers of every channel, most of whom this key cannot see.
        raise PermissionDenied(
            "this API key sees only the customers of its channels and cannot delete a tag "
            "that every channel's customers may carry"
        )
    rule_tags.delete_tag(who.user_id, tag_id)


# -- notes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteView:
    id: int
    author: str
    body: str
    created_at: datetime


def notes(who: Principal, customer_id: int) -> list[NoteView]:
    """The newest notes on a customer (200 at most), newest first."""
    standing = standing_id(who, customer_id)
    return [NoteView(n.id, n.author, n.body, n.created_at) for n in crm_profile.notes(standing)]


def add_note(who: Principal, customer_id: int, body: str) -> NoteView:
    """A note on a customer, written as the key's owner and audited as theirs are."""
    standing = standing_id(who, customer_id, "customers.edit")
    note = crm_profile.add_note(who.user_id, standing, body)
    return NoteView(note.id, note.author, note.body, note.created_at)
