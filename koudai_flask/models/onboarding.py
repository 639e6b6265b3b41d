"""The new owner's set-up: each wizard step's progress, the keys typed in, the shop's door.

``OnboardingStep`` remembers where the owner left each step and what its last check found
(a message code and its values, turned into words when shown, in the reader's language).
``MerchantCredential`` holds payment and Official Account keys entered in the back office:
plain values in ``values``, secrets only as Fernet ciphertext in ``sealed``
(:mod:`koudai_flask.services.merchant_credentials`). ``ShopDoor`` is the owner's choice to
let buyers in or show them a "coming soon" page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from koudai_flask.models.base import Base, utcnow

STEP_STATES = ("todo", "done", "failed", "skipped")


class OnboardingStep(Base):
    """One step of the set-up wizard (``profile``, ``wechat``, ``wechatpay``, ...)."""

    __tablename__ = "koudai_onboarding_step"
    __table_args__ = (
        CheckConstraint("state IN ('todo', 'done', 'failed', 'skipped')", name="state_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    step: Mapped[str] = mapped_column(String(20), unique=True)
    state: Mapped[str] = mapped_column(String(12), default="todo")
    # The last check's message: a code of services.credential_checks.MESSAGES and its values.
    problem: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the owner last typed, secrets left out, so a step left half-done resumes filled in.
    draft: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checked_at: Mapped[datetime | None]
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MerchantCredential(Base):
    """Keys for one setting (``KOUDAI_WECHAT``, ...) entered in the back office and checked."""

    __tablename__ = "koudai_merchant_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    setting: Mapped[str] = mapped_column(String(40), unique=True)
    # The values that are not secret (ids, URLs, public keys), as typed.
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Fernet ciphertext of a JSON object of the secret values, keyed from SECRET_KEY.
    sealed: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ShopDoor(Base):
    """Whether buyers may shop; without a row, ``KOUDAI_SHOP_INITIALLY_OPEN`` decides."""

    __tablename__ = "koudai_shop_door"

    id: Mapped[int] = mapped_column(primary_key=True)
    is_open: Mapped[bool]
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
