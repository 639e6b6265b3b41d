"""The new owner's set-up wizard: its steps, their progress, and the shop's door.

Six steps, in order: the shop's profile and theme, the WeChat Official Account, WeChat Pay,
Alipay, a Taobao shop (link it and import its catalog) and opening the shop. Every step but
the first and the last may be skipped (a shop may take offline payment only). Each step's
state (``todo``, ``done``, ``failed``, ``skipped``), its last check's message and what was
typed (secrets left out) are kept, so the owner can leave and come back to where they were.

Only a member with ``staff.manage`` on every channel runs it (owners and admins): the keys
and the door are the whole shop's. Remote checks run with no transaction open; what they
found and the keys that worked are then written in one transaction, audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from koudai_flask.errors import NotFound, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import OnboardingStep, ShopDoor
from koudai_flask.models.base import utcnow
from koudai_flask.services import credential_checks as checks
from koudai_flask.services import merchant_credentials as keys
from koudai_flask.services import staff, theme
from koudai_flask.services.transaction import current_session, unit_of_work

STEPS = ("profile", "wechat", "wechatpay", "alipay", "taobao", "open")
SKIPPABLE = frozenset({"wechat", "wechatpay", "alipay", "taobao"})
KEY_STEPS = {"wechat": "KOUDAI_WECHAT", "wechatpay": "KOUDAI_WECHATPAY", "alipay": "KOUDAI_ALIPAY"}
# The typed fields a step keeps as its draft (never a secret).
DRAFT_FIELDS = {
    "wechat": ("appid", "api_url"),
    "wechatpay": (
        "mchid",
        "appid",
        "merchant_serial_no",
        "platform_key_id",
        "platform_public_key",
        "gateway_url",
    ),
    "alipay": ("app_id", "alipay_public_key", "gateway_url", "seller_id"),
}
_PREPARE: dict[str, Callable[..., Any]] = {
    "wechat": checks.prepare_wechat,
    "wechatpay": checks.prepare_wechatpay,
    "alipay": checks.prepare_alipay,
}
_CHECK: dict[str, Callable[[Mapping[str, Any]], checks.Finding]] = {
    "wechat": checks.check_wechat,
    "wechatpay": checks.check_wechatpay,
    "alipay": checks.check_alipay,
}
DOOR_CACHE_SECONDS = 30.0
_DOOR_CACHE = "koudai_shop_door_cache"


@dataclass(frozen=True)
class StepStatus:
    """One step as the wizard shows it."""

    step: str
    state: str = "todo"
    problem: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    draft: dict[str, Any] = field(default_factory=dict)
    checked_at: datetime | None = None

    @property
    def message(self) -> str:
        return checks.describe(self.problem, self.detail)


@dataclass(frozen=True)
class CheckOutcome:
    """What checking typed keys found: the live check's finding, or the form's problems."""

    finding: checks.Finding
    problems: list[checks.Finding]

    @property
    def ok(self) -> bool:
        return self.finding.ok


def _known(step: str) -> str:
    if step not in STEPS:
        raise NotFound(f"no set-up step {step!r}")
    return step


def _status(row: OnboardingStep | None, step: str) -> StepStatus:
    if row is None:
        return StepStatus(step)
    return StepStatus(
        step,
        row.state,
        row.problem,
        dict(row.detail or {}),
        dict(row.draft or {}),
        row.checked_at,
    )


def progress() -> dict[str, StepStatus]:
    """Every step's status, in order."""
    session = current_session()
    try:
        rows = {row.step: row for row in session.scalars(select(OnboardingStep))}
        return {step: _status(rows.get(step), step) for step in STEPS}
    finally:
        session.rollback()


def status(step: str) -> StepStatus:
    return progress()[_known(step)]


def next_step(statuses: Mapping[str, StepStatus]) -> str | None:
    """The first step still to do (or that failed); None when all are done or skipped."""
    return next((s for s in STEPS if statuses[s].state in ("todo", "failed")), None)


def _write(
    step: str,
    *,
    state: str,
    actor: str,
    problem: str | None = None,
    detail: Mapping[str, Any] | None = None,
    draft: Mapping[str, Any] | None = None,
    checked: bool = False,
) -> None:
    session = current_session()
    row = session.scalar(select(OnboardingStep).where(OnboardingStep.step == step))
    before = {"state": row.state, "problem": row.problem} if row is not None else None
    if row is None:
        row = OnboardingStep(step=step, detail={}, draft={})
        session.add(row)
    row.state, row.problem, row.detail = state, problem, dict(detail or {})
    if draft is not None:
        row.draft = dict(draft)
    if checked:
        row.checked_at = utcnow()
    row.updated_by = actor
    session.flush()
    staff.audit(
        actor,
        f"onboarding.{step}",
        "onboarding_step",
        step,
        before,
        {
            "state": state,
            "problem": problem,
        },
    )


def note(
    user_id: str,
    step: str,
    state: str,
    problem: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record a step's state and message as they are now (the Taobao step's progress)."""
    keys.require_owner(user_id)
    with unit_of_work():
        _write(_known(step), state=state, actor=f"staff:{user_id}", problem=problem, detail=detail)


def skip(user_id: str, step: str) -> None:
    """Leave an optional step out; it can be done later all the same."""
    if _known(step) not in SKIPPABLE:
        raise ValidationError(f"the {step} step cannot be skipped")
    note(user_id, step, "skipped")


# -- step 1: profile and theme ---------------------------------------------------------------


def save_profile(
    user_id: str,
    *,
    name: str,
    primary_color: str,
    logo_url: str | None,
    return_address: dict[str, str] | None = None,
) -> None:
    """The shop's name, colour and logo (the theme every shop page draws) and, when given,
    where buyers send returns (all parts empty: none), then step done."""
    keys.require_owner(user_id)
    if logo_url and not (
        logo_url.startswith(("https://", "http://", "/")) and len(logo_url) <= 300
    ):
        raise ValidationError(
            "the logo must be an address starting with https://, http:// or /", reason="logo_url"
        )
    with unit_of_work():
        theme.update(
            name=name,
            primary_color=primary_color,
            logo_path=logo_url or "",
            return_address=return_address,
        )
        _write(
            "profile",
            state="done",
            actor=f"staff:{user_id}",
            draft={
                "name": name.strip(),
                "primary_color": primary_color,
                "logo_url": logo_url or "",
            },
        )


# -- steps 2 to 4: keys checked live ---------------------------------------------------------


def check_keys(user_id: str, step: str, form: Mapping[str, str]) -> CheckOutcome:
    """Read typed keys, check them live and save them when they work.

    An empty secret keeps the one saved before (so changing an address needs no re-paste).
    Keys that fail are never stored; the step keeps what was typed minus the secrets, and
    the plain-words reason.
    """
    keys.require_owner(user_id)
    setting = KEY_STEPS[_known(step)] if step in KEY_STEPS else None
    if setting is None:
        raise NotFound(f"the {step} step has no keys")
    spec = keys.spec(setting)
    values, found, problems = _PREPARE[step](form)
    session = current_session()
    try:
        saved = keys.saved_secrets(setting)
    finally:
        session.rollback()
    for name in spec.secret:
        if name not in found and name in saved:
            found[name] = saved[name]
        elif name not in found and not any(p.field == name for p in problems):
            problems.append(checks.Finding(False, "required", {"field": name}, name))
    draft = {name: str(form.get(name) or "").strip() for name in DRAFT_FIELDS[step]}
    actor = f"staff:{user_id}"
    if problems:
        first = problems[0]
        with unit_of_work():
            _write(
                step,
                state="failed",
                actor=actor,
                problem=first.code,
                detail=first.detail,
                draft=draft,
            )
        return CheckOutcome(first, problems)
    settings = {k: v for k, v in {**values, **found}.items() if v is not None}
    try:
        finding = _CHECK[step](settings)  # the network call: no transaction is open
    except ValueError as exc:  # a setting's own check; its messages name keys, never values
        finding = checks.Finding(False, f"{step}_other", {"code": "-", "reason": str(exc)})
    with unit_of_work():
        if finding.ok:
            keys.write(user_id, setting, values, found)
        _write(
            step,
            state="done" if finding.ok else "failed",
            actor=actor,
            problem=finding.code,
            detail=finding.detail,
            draft=draft,
            checked=True,
        )
    if finding.ok:
        keys.refresh(force=True)
    return CheckOutcome(finding, [] if finding.ok else [finding])


def recheck(user_id: str, step: str) -> checks.Finding:
    """Check the keys in use now (saved here or set in config) without typing them again."""
    keys.require_owner(user_id)
    setting = KEY_STEPS.get(_known(step))
    if setting is None:
        raise NotFound(f"the {step} step has no keys")
    keys.refresh(force=True)
    current = current_app.config.get(setting)
    if keys.unusable(setting):
        finding = checks.Finding(False, "unusable")
    elif not current:
        finding = checks.Finding(False, "required", {"field": keys.spec(setting).secret[0]})
    else:
        current_session().rollback()  # no transaction stays open during the network call
        try:
            finding = _CHECK[step](current)
        except ValueError:
            finding = checks.Finding(False, "unusable")
    with unit_of_work():
        _write(
            step,
            state="done" if finding.ok else "failed",
            actor=f"staff:{user_id}",
            problem=finding.code,
            detail=finding.detail,
            checked=True,
        )
    return finding


def forget_keys(user_id: str, step: str) -> bool:
    """Drop the keys saved for a step: the site's config applies again; the step is to do."""
    setting = KEY_STEPS.get(_known(step))
    if setting is None:
        raise NotFound(f"the {step} step has no keys")
    dropped = keys.forget(user_id, setting)
    note(user_id, step, "todo")
    return dropped


# -- step 6: the shop's door -----------------------------------------------------------------


def shop_is_open() -> bool:
    """Whether buyers may shop (read at most every 30 seconds per process)."""
    cache: dict[str, tuple[float, bool]] = current_app.extensions.setdefault(_DOOR_CACHE, {})
    cached = cache.get("door")
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    try:
        row = (
            get_state()
            .read_connection()
            .execute(select(ShopDoor.is_open).order_by(ShopDoor.id).limit(1))
            .first()
        )
    except SQLAlchemyError:  # the table is not there yet (before `flask koudai db upgrade`)
        row = None
    is_open = (
        bool(row.is_open)
        if row is not None
        else bool(current_app.config["KOUDAI_SHOP_INITIALLY_OPEN"])
    )
    cache["door"] = (time.monotonic() + DOOR_CACHE_SECONDS, is_open)
    return is_open


def set_shop_open(user_id: str, is_open: bool) -> None:
    """Open the shop to buyers, or close it (buyers see "coming soon"; staff still preview)."""
    keys.require_owner(user_id)
    actor = f"staff:{user_id}"
    with unit_of_work() as session:
        door = session.scalar(select(ShopDoor).order_by(ShopDoor.id).limit(1))
        before = {"is_open": door.is_open} if door is not None else None
        if door is None:
            door = ShopDoor(is_open=is_open, changed_by=actor)
            session.add(door)
        door.is_open, door.changed_by, door.changed_at = is_open, actor, utcnow()
        staff.audit(
            actor,
            "shop.opened" if is_open else "shop.closed",
            "shop",
            "door",
            before,
            {"is_open": is_open},
        )
        _write("open", state="done" if is_open else "todo", actor=actor)
    current_app.extensions.get(_DOOR_CACHE, {}).clear()


__all__ = [
    "KEY_STEPS",
    "SKIPPABLE",
    "STEPS",
    "CheckOutcome",
    "StepStatus",
    "check_keys",
    "forget_keys",
    "next_step",
    "note",
    "progress",
    "recheck",
    "save_profile",
    "set_shop_open",
    "shop_is_open",
    "skip",
    "status",
]
