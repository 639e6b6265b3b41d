"""Buyers: customers linked to the host's users or to our own accounts, identities, addresses."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from koudai_flask.config import config_value
from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.models import Address, Customer, CustomerIdentity
from koudai_flask.passwords import hash_password, verify
from koudai_flask.schemas import load
from koudai_flask.schemas.customers import AddressBookInput, RegisterInput
from koudai_flask.services.transaction import current_session, unit_of_work

_register_input = RegisterInput()
_address_input = AddressBookInput()


def get(customer_id: int) -> Customer:
    customer = current_session().get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"unknown customer {customer_id}")
    return customer


def for_user(user_id: str, *, name: str = "") -> Customer:
    """The customer of a host user (Flask-Login id), created on first use."""
    user_id = str(user_id)
    session = current_session()
    found = session.scalar(select(Customer).where(Customer.user_id == user_id))
    if found is not None:
        return _standing(found)
    try:
        with unit_of_work() as session:
            customer = Customer(user_id=user_id, name=name)
            session.add(customer)
            session.flush()
            session.add(CustomerIdentity(customer_id=customer.id, kind="web", value=user_id))
            return customer
    except IntegrityError:  # the same user's first two requests raced
        found = current_session().scalar(select(Customer).where(Customer.user_id == user_id))
        if found is None:
            raise
        return found


def _standing(customer: Customer) -> Customer:
    """The customer itself, or the one it was merged into (services.merges)."""
    from koudai_flask.services.identities import resolve

    target = resolve(customer.id)
    return customer if target == customer.id else get(target)


def by_identity(kind: str, value: str, *, create: bool = True) -> Customer | None:
    """The customer known by ``kind``/``value`` (e.g. a WeChat openid), created if asked."""
    session = current_session()
    identity = session.scalar(
        select(CustomerIdentity).where(
            CustomerIdentity.kind == kind, CustomerIdentity.value == value
        )
    )
    if identity is not None:
        return identity.customer
    if not create:
        return None
    try:
        with unit_of_work() as session:
            customer = Customer(name="")
            session.add(customer)
            session.flush()
            session.add(CustomerIdentity(customer_id=customer.id, kind=kind, value=value))
            return customer
    except IntegrityError:
        return by_identity(kind, value, create=False)


def link_identity(customer_id: int, kind: str, value: str) -> CustomerIdentity:
    """Attach ``kind``/``value`` to a customer; a value already linked elsewhere is refused.

    A WeChat unionid is a strong key: linked elsewhere, it merges that customer into this
    one instead (services.identities).
    """
    if kind == "wechat_unionid":
        from koudai_flask.services import identities

        owner = identities.link_identity(kind, value, customer_id=customer_id)
        found = current_session().scalar(
            select(CustomerIdentity).where(
                CustomerIdentity.kind == kind, CustomerIdentity.value == value.strip()
            )
        )
        assert found is not None and found.customer_id == owner
        return found
    with unit_of_work() as session:
        existing = session.scalar(
            select(CustomerIdentity).where(
                CustomerIdentity.kind == kind, CustomerIdentity.value == value
            )
        )
        if existing is not None:
            if existing.customer_id != customer_id:
                raise ValidationError(
                    f"this {kind} belongs to another customer", reason="identity_taken"
                )
            return existing
        identity = CustomerIdentity(customer_id=get(customer_id).id, kind=kind, value=value)
        session.add(identity)
        session.flush()
        return identity


def register(
    *, password: str, email: str | None = None, phone: str | None = None, name: str = ""
) -> Customer:
    """Create our own buyer account (used when the host has no login of its own)."""
    data = load(
        _register_input,
        {"email": email, "phone": phone, "password": password, "name": name},
        "registration",
    )
    email = data["email"].lower() if data["email"] else None
    with unit_of_work() as session:
        for kind, value in (("email", email), ("phone", data["phone"])):
            if value and session.scalar(
                select(CustomerIdentity.id).where(
                    CustomerIdentity.kind == kind, CustomerIdentity.value == value
                )
            ):
                raise ValidationError(
                    f"this {kind} already has an account; log in instead",
                    {kind: ["already registered"]},
                    reason="account_exists",
                )
        customer = Customer(
            name=data["name"],
            email=email,
            phone=data["phone"],
            password_hash=hash_password(data["password"]),
        )
        session.add(customer)
        session.flush()
        for kind, value in (("email", email), ("phone", data["phone"])):
            if value:
                session.add(CustomerIdentity(customer_id=customer.id, kind=kind, value=value))
        return customer


def authenticate(login: str, password: str) -> Customer | None:
    """Our own buyer login by email or phone; None when either is wrong."""
    login = login.strip().lower()
    with unit_of_work() as session:
        identity = session.scalar(
            select(CustomerIdentity).where(
                CustomerIdentity.kind.in_(("email", "phone")), CustomerIdentity.value == login
            )
        )
        customer = identity.customer if identity is not None else None
        return customer if verify(customer, password) else None


def _reset_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="koudai-password-reset")


def reset_token(customer: Customer, secret_key: str) -> str:
    """A signed token for a reset link; it dies when the password changes (single use)."""
    return _reset_serializer(secret_key).dumps(
        {"id": customer.id, "h": (customer.password_hash or "")[-12:]}
    )


def reset_password(token: str, new_password: str, secret_key: str) -> Customer:
    try:
        data: dict[str, Any] = _reset_serializer(secret_key).loads(
            token, max_age=config_value("PASSWORD_RESET_MAX_AGE")
        )
    except SignatureExpired:
        raise ValidationError(
            "this reset link has expired; ask for a new one", reason="reset_expired"
        ) from None
    except BadSignature:
        raise ValidationError("this reset link is not valid", reason="reset_invalid") from None
    if len(new_password) < 8:
        raise ValidationError(
            "a password needs at least 8 characters",
            {"password": ["at least 8 characters"]},
            reason="password_short",
        )
    with unit_of_work() as session:
        customer = get(int(data["id"]))
        if (customer.password_hash or "")[-12:] != data["h"]:
            raise ValidationError("this reset link was already used", reason="reset_used")
        customer.password_hash = hash_password(new_password)
        session.flush()
        return customer


# -- address book ----------------------------------------------------------------------------


def addresses(customer_id: int) -> list[Address]:
    return list(
        current_session().scalars(
            select(Address)
            .where(Address.customer_id == customer_id)
            .order_by(Address.is_default.desc(), Address.id.desc())
        )
    )


MAX_ADDRESSES = 20  # a buyer's address book, as marketplaces cap theirs


class AddressBookFull(ValidationError):
    """The customer's address book holds :data:`MAX_ADDRESSES` already."""

    def __init__(self) -> None:
        super().__init__(
            f"an address book holds at most {MAX_ADDRESSES} addresses",
            {"address": ["the address book is full"]},
            reason="address_book_full",
            detail={"most": MAX_ADDRESSES},
        )


def add_address(customer_id: int, **fields: Any) -> Address:
    """Save an address in the customer's book; the first one, or one marked ``is_default``,
    becomes the default. A full book (:data:`MAX_ADDRESSES`) is refused."""
    data = load(_address_input, fields, "address")
    with unit_of_work() as session:
        book = addresses(customer_id)
        if len(book) >= MAX_ADDRESSES:
            raise AddressBookFull()
        make_default = data.pop("is_default") or not book
        address = Address(customer_id=get(customer_id).id, **data)
        session.add(address)
        session.flush()
        if make_default:
            _only_default(session, customer_id, address)
        return address


def get_address(customer_id: int, address_id: int) -> Address:
    """One of the customer's own addresses; someone else's is NotFound."""
    address = current_session().get(Address, address_id)
    if address is None or address.customer_id != customer_id:
        raise NotFound(f"unknown address {address_id}")
    return address


def update_address(customer_id: int, address_id: int, **fields: Any) -> Address:
    """Change one of the customer's addresses; ``is_default`` true makes it the default.
    Orders placed to it keep the address they were placed with."""
    data = load(_address_input, fields, "address")
    with unit_of_work() as session:
        address = get_address(customer_id, address_id)
        make_default = data.pop("is_default") and not address.is_default
        for key, value in data.items():
            setattr(address, key, value)
        if make_default:
            _only_default(session, customer_id, address)
        session.flush()
        return address


def set_default_address(customer_id: int, address_id: int) -> Address:
    """The address checkout offers first."""
    with unit_of_work() as session:
        address = get_address(customer_id, address_id)
        _only_default(session, customer_id, address)
        return address


def _only_default(session: Session, customer_id: int, address: Address) -> None:
    session.execute(
        update(Address)
        .where(Address.customer_id == customer_id, Address.id != address.id)
        .values(is_default=False)
    )
    address.is_default = True


def delete_address(customer_id: int, address_id: int) -> None:
    """Delete one of the customer's addresses; when it was the default, the newest left
    becomes the default (orders placed to it keep their copy)."""
    with unit_of_work() as session:
        address = get_address(customer_id, address_id)
        was_default = address.is_default
        session.delete(address)
        session.flush()
        if was_default:
            newest = session.scalar(
                select(Address)
                .where(Address.customer_id == customer_id)
                .order_by(Address.id.desc())
                .limit(1)
            )
            if newest is not None:
                newest.is_default = True


def find_by_login(login: str) -> Customer | None:
    """The customer whose email or phone is ``login``."""
    identity = current_session().scalar(
        select(CustomerIdentity).where(
            CustomerIdentity.kind.in_(("email", "phone")),
            CustomerIdentity.value == login.strip().lower(),
        )
    )
    return identity.customer if identity is not None else None
