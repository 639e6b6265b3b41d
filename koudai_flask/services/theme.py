"""The shop's look: name, logo and colour from config, overridden by the owner's profile."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from flask import current_app, g
from sqlalchemy import select

from koudai_flask.errors import ValidationError
from koudai_flask.models import ShopProfile
from koudai_flask.services.transaction import current_session, unit_of_work

# The page background the shop's text sits on (``--kd-bg`` in koudai.css), and its ink.
PAGE = "#f5f5f5"
INK = "#222222"
# WCAG 2.1 AA: body text needs a contrast of 4.5 against what is behind it.
READABLE = 4.5


@dataclass(frozen=True)
class Theme:
    name: str
    primary_color: str
    logo_url: str | None
    # Where buyers send the goods of a return: {"name", "phone", "address"}, or None.
    return_address: dict[str, str] | None = None

    @cached_property
    def accent_ink(self) -> str:
        """The colour for prices, errors and the current tab: the owner's colour, darkened
        as little as it takes to be readable on the page (and on white cards)."""
        return readable_on(self.primary_color, PAGE)

    @cached_property
    def accent_fill(self) -> str:
        """The background of buttons and badges: the owner's colour when white or ink text
        reads on it, else its readable shade (a mid red such as #e4393c reads with neither)."""
        colour = self.primary_color.lower()
        return colour if contrast(_words_on(colour), colour) >= READABLE else self.accent_ink

    @cached_property
    def on_accent(self) -> str:
        """The text on ``accent_fill``: white or ink, whichever reads better."""
        return _words_on(self.accent_fill)

    @cached_property
    def accent_deep(self) -> str:
        """The far end of the banner's gradient: a fill a little darker, or lighter under
        ink text, so the banner's words read across all of it."""
        fill = self.accent_fill
        return _scaled(fill, 0.8) if self.on_accent != INK else _lighter(fill, 0.3)


def _words_on(background: str) -> str:
    """White or ink, whichever reads better on ``background``."""
    return "#ffffff" if contrast("#ffffff", background) >= contrast(INK, background) else INK


def _channels(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def _hex(channels: Iterable[float]) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in channels)


def _scaled(colour: str, factor: float) -> str:
    return _hex(c * factor for c in _channels(colour))


def _lighter(colour: str, share: float) -> str:
    """``colour`` moved ``share`` of the way to white."""
    return _hex(c + (255 - c) * share for c in _channels(colour))


def luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in _channels(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two colours, 1 to 21."""
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def readable_on(colour: str, background: str, minimum: float = READABLE) -> str:
    """``colour`` darkened in small steps until it reads on ``background``."""
    shade = colour.lower()
    while contrast(shade, background) < minimum and shade != "#000000":
        shade = _scaled(shade, 0.93)
    return shade


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
        return_address=dict(profile.return_address) if profile and profile.return_address else None,
    )
    g.koudai_theme = theme
    cache["theme"] = (time.monotonic() + 30, theme)
    return theme


# A return address's parts and their longest length; a phone as carriers' forms take it.
RETURN_ADDRESS_PARTS = {"name": 60, "phone": 20, "address": 200}
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,18}[0-9]")


def update(
    *,
    name: str | None = None,
    primary_color: str | None = None,
    logo_path: str | None = None,
    return_address: dict[str, str] | None = None,
) -> ShopProfile:
    """Set the owner's profile; None leaves a value as it is, and a return address whose
    parts are all empty removes it."""
    if primary_color is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", primary_color):
        raise ValidationError("the colour must be written #rrggbb", reason="theme_colour")
    if name is not None and not 1 <= len(name.strip()) <= 120:
        raise ValidationError("the shop name must be 1 to 120 characters", reason="shop_name")
    address = check_return_address(return_address) if return_address is not None else None
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
        if return_address is not None:
            profile.return_address = address or None
        session.flush()
        g.pop("koudai_theme", None)
        current_app.extensions.get("koudai_theme_cache", {}).clear()
        return profile


def check_return_address(given: dict[str, str]) -> dict[str, str]:
    """The parts of a return address, checked: all of them, or none (no address)."""
    parts = {key: " ".join(str(given.get(key) or "").split()) for key in RETURN_ADDRESS_PARTS}
    if not any(parts.values()):
        return {}
    for key, longest in RETURN_ADDRESS_PARTS.items():
        if not 1 <= len(parts[key]) <= longest:
            raise ValidationError(
                f"a return address needs a {key} of 1 to {longest} characters",
                reason="return_address",
            )
    if not _PHONE.fullmatch(parts["phone"]):
        raise ValidationError(
            f"{parts['phone']!r} is not a phone number", reason="return_address_phone"
        )
    return parts
