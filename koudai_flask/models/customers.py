"""Customers: one profile across channels, with the identities that link to it."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from koudai_flask.models.base import Base, Timestamped


class Customer(Base, Timestamped):
    __tablename__ = "koudai_customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The host site's user id (Flask-Login's get_id()) when the host owns buyer accounts.
    user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    # Own buyer login when the host has none (werkzeug hash).
    password_hash: Mapped[str | None] = mapped_column(String(256))

    identities: Mapped[list[CustomerIdentity]] = relationship(
        back_populates="customer", cascade="all, delete-orphan"
    )


class CustomerIdentity(Base, Timestamped):
    """One way a customer is known: a WeChat openid, a Taobao buyer nick, a Weibo uid, ..."""

    __tablename__ = "koudai_customer_identity"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("koudai_customer.id"), index=True)
    # web | phone | email | wechat_openid | wechat_unionid | weibo_uid | taobao_nick | ...
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(128))

    customer: Mapped[Customer] = relationship(back_populates="identities")
