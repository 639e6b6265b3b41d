"""The shop's look: name, logo and colour from config, overridden by the owner's profile."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from flask import current_app, g
from sqlalchemy import select

from koudai_flask.errors import ValidationError
from koudai_flask.models import ShopProfile
from koudai_flask.services.transaction import current_session, unit_of_work


@dataclass(frozen=True)
class Theme:
    name: str
    primary_color: str
    logo_url: str | None


def current() -> Theme:
    """This request's theme (read once per request)."""
    if "koudai_theme" in g:
        theme: Theme = g.koudai_theme
        return theme
    cache = current_app.extensions.setdefault("koudai_theme_cache", {})
    cached = cache.get("theme")
    if cached is not None and cached[0] > time.monotonic():
        g.koudai_theme = cached[1]
        return cached[1]
    config = current_app.config
    profile = current_session().scalar(select(ShopProfile).order_by(ShopProfile.id).limit(1))
    theme = Theme(
        name=(profile.name if profile and profile.name else config["KOUDAI_SHOP_NAME"]),
        primary_color=(
            profile.primary_color
            if profile and profile.primary_color
            else config["KOUDAI_PRIMARY_COLOR"]
        ),
        logo_url=(
            profile.logo_path if profile and profile.logo_path else config["KOUDAI_LOGO_URL"]
        ),
    )
    g.koudai_theme = theme
    cache["theme"] = (time.monotonic() + 30, theme)
    return theme


def update(
    *, name: str | None = None, primary_color: str | None = None, logo_path: str | None = None
) -> ShopProfile:
    """Set the owner's profile; None leaves a value as it is."""
    if primary_color is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", primary_color):
        raise ValidationError("the colour must be written #rrggbb", reason="theme_colour")
    if name is not None and not 1 <= len(name.strip()) <= 120:
        raise ValidationError("the shop name must be 1 to 120 characters", reason="shop_name")
    with unit_of_work() as session:
        profile = session.scalar(select(ShopProfile).order_by(ShopProfile.id).limit(1))
        if profile is None:
            profile = ShopProfile()
            session.add(profile)
        if name is not None:
            profile.name = name.strip()
        if primary_color is not None:
            profile.primary_color = primary_color
        if logo_path is not None:
            profile.logo_path = logo_path
        session.flush()
        g.pop("koudai_theme", None)
        current_app.extensions.get("koudai_theme_cache", {}).clear()
        return profile
