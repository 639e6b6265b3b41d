"""Keys the owner enters in the back office, sealed at rest and laid over the site's config.

The set-up wizard stores the WeChat Official Account, WeChat Pay and Alipay keys it checked
in ``koudai_merchant_credential``: ids, URLs and public keys as they are, the secrets only as
Fernet ciphertext keyed from ``SECRET_KEY`` (HKDF-SHA256 with a salt of its own, as the
Taobao tokens and webhook secrets are sealed). A rotated ``SECRET_KEY`` makes them
unreadable: the site's config applies again and the wizard asks for the keys anew.

Precedence: what the owner saved wins over ``KOUDAI_WECHAT`` / ``KOUDAI_WECHATPAY`` /
``KOUDAI_ALIPAY`` for the keys the wizard holds (the owner checked them live and expects them
used); every other key of those settings (a server ``token``, a ``timeout``) still comes from
config, and forgetting the saved keys brings the config back. The merged value is written
into ``app.config``, so every reader (payments, messages, the WeChat login) sees it with no
change of its own: at once in the process that saved it, and within
:data:`REFRESH_INTERVAL` seconds in every other process and worker, which look again when
an app context is pushed.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, appcontext_pushed, current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from koudai_flask.errors import ConfigError, NotFound, PermissionDenied, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.models import MerchantCredential
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session, unit_of_work

log = logging.getLogger("koudai_flask.onboarding")

REFRESH_INTERVAL = 30.0  # seconds between looks at the stored keys, per process
_EXTENSION = "koudai_merchant_credentials"
_SALT = b"koudai-merchant-credentials"
_INFO = b"koudai merchant credentials v1"


def _validate_wechat(value: dict[str, Any]) -> dict[str, Any]:
    from koudai_flask.connectors.wechat.settings import validate_wechat

    checked = validate_wechat(value)
    assert checked is not None
    return checked


def _validate_wechatpay(value: dict[str, Any]) -> dict[str, Any]:
    from koudai_flask.payments.wechatpay import validate_settings

    return validate_settings(value)


def _validate_alipay(value: dict[str, Any]) -> dict[str, Any]:
    from koudai_flask.payments.alipay import validate_settings

    return validate_settings(value)


@dataclass(frozen=True)
class CredentialSpec:
    """Which keys of one setting the wizard holds, and which of them are secret."""

    setting: str
    public: tuple[str, ...]
    secret: tuple[str, ...]
    validate: Callable[[dict[str, Any]], dict[str, Any]]

    def merge(
        self, base: Mapping[str, Any] | None, values: Mapping[str, Any], secrets: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The config value with the stored keys over it, checked like the setting itself."""
        merged = dict(base or {})
        merged.update({key: values.get(key) for key in self.public})
        merged.update({key: secrets[key] for key in self.secret})
        return self.validate({key: value for key, value in merged.items() if value is not None})


SPECS: dict[str, CredentialSpec] = {
    "KOUDAI_WECHAT": CredentialSpec(
        "KOUDAI_WECHAT", ("appid", "api_url"), ("secret",), _validate_wechat
    ),
    "KOUDAI_WECHATPAY": CredentialSpec(
        "KOUDAI_WECHATPAY",
        ("mchid", "appid", "merchant_serial_no", "platform_public_keys", "gateway_url"),
        ("apiv3_key", "merchant_private_key"),
        _validate_wechatpay,
    ),
    "KOUDAI_ALIPAY": CredentialSpec(
        "KOUDAI_ALIPAY",
        ("app_id", "alipay_public_key", "gateway_url", "seller_id"),
        ("app_private_key",),
        _validate_alipay,
    ),
}


def spec(setting: str) -> CredentialSpec:
    try:
        return SPECS[setting]
    except KeyError:
        raise NotFound(f"{setting} is not a setting the back office stores") from None


# -- sealing ---------------------------------------------------------------------------------


def _cipher(secret_key: Any) -> Fernet:
    if not secret_key:
        raise ConfigError("SECRET_KEY is empty: set it before saving keys in the back office")
    raw = secret_key.encode("utf-8") if isinstance(secret_key, str) else bytes(secret_key)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(raw)
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secrets: Mapping[str, str], secret_key: Any = None) -> str:
    key = secret_key if secret_key is not None else current_app.config.get("SECRET_KEY")
    text = json.dumps(dict(secrets), separators=(",", ":"))
    return _cipher(key).encrypt(text.encode("utf-8")).decode("ascii")


def unseal(sealed: str, secret_key: Any = None) -> dict[str, str]:
    """The secrets back; a changed SECRET_KEY or altered text raises ``ConfigError``."""
    key = secret_key if secret_key is not None else current_app.config.get("SECRET_KEY")
    try:
        data = json.loads(_cipher(key).decrypt(sealed.encode("ascii")))
    except (InvalidToken, UnicodeEncodeError, ValueError):
        raise ConfigError(
            "saved keys cannot be decrypted (SECRET_KEY changed?): enter them again"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("saved keys are damaged: enter them again")
    return {str(k): str(v) for k, v in data.items()}


# -- reading and changing --------------------------------------------------------------------


def stored_settings() -> list[str]:
    """The settings that have keys saved in the back office."""
    session = current_session()
    try:
        return list(session.scalars(select(MerchantCredential.setting)))
    finally:
        session.rollback()


def _masked(spec_: CredentialSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    shown = {key: values.get(key) for key in spec_.public if key != "platform_public_keys"}
    if "platform_public_keys" in spec_.public:
        shown["platform_public_keys"] = sorted((values.get("platform_public_keys") or {}).keys())
    shown.update({key: "set" for key in spec_.secret})
    return shown


def save(user_id: str, setting: str, values: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
    """Keep checked keys for ``setting`` (``staff.manage``, all channels); audited, masked.

    ``values`` are the public keys, ``secrets`` the secret ones; both are checked as the
    setting would be (merged over the site's config), so nothing unusable is stored.
    """
    with unit_of_work():
        write(user_id, setting, values, secrets)
    refresh(force=True)


def write(
    user_id: str, setting: str, values: Mapping[str, Any], secrets: Mapping[str, str]
) -> None:
    """:func:`save` inside the caller's unit of work; the caller calls :func:`refresh` after."""
    spec_ = spec(setting)
    require_owner(user_id)
    missing = [key for key in spec_.secret if not secrets.get(key)]
    if missing:
        raise ValidationError(f"{setting}: {', '.join(missing)} missing")
    public = {key: values.get(key) for key in spec_.public}
    try:
        spec_.merge(config_base(setting), public, secrets)
    except (ValueError, ConfigError) as exc:
        message = exc.message if isinstance(exc, ConfigError) else str(exc)
        raise ValidationError(f"{setting}: {message}") from None
    session = current_session()
    row = session.scalar(select(MerchantCredential).where(MerchantCredential.setting == setting))
    before = _masked(spec_, row.values) if row is not None else None
    if row is None:
        row = MerchantCredential(setting=setting, sealed="")
        session.add(row)
    row.values = public
    row.sealed = seal({key: secrets[key] for key in spec_.secret})
    row.updated_by = f"staff:{user_id}"
    session.flush()
    staff.audit(
        f"staff:{user_id}",
        "onboarding.keys_saved",
        "setting",
        setting,
        before,
        _masked(spec_, public),
    )


def saved_secrets(setting: str) -> dict[str, str]:
    """The secrets saved for ``setting`` (empty when none, or when they cannot be read)."""
    session = current_session()
    sealed = session.scalar(
        select(MerchantCredential.sealed).where(MerchantCredential.setting == setting)
    )
    if not sealed:
        return {}
    try:
        return unseal(sealed)
    except ConfigError:
        return {}


def require_owner(user_id: str) -> None:
    """Shop-wide keys and the shop's door: ``staff.manage`` on every channel."""
    member = staff.require(user_id, "staff.manage")
    if member.channels is not None:
        raise PermissionDenied(
            f"staff {user_id} works on some channels only: cannot set up the whole shop"
        )


def forget(user_id: str, setting: str) -> bool:
    """Drop the saved keys of ``setting``: the site's config applies again. False if none."""
    spec_ = spec(setting)
    require_owner(user_id)
    with unit_of_work() as session:
        row = session.scalar(
            select(MerchantCredential).where(MerchantCredential.setting == setting)
        )
        if row is None:
            return False
        before = _masked(spec_, row.values)
        session.execute(delete(MerchantCredential).where(MerchantCredential.id == row.id))
        staff.audit(
            f"staff:{user_id}", "onboarding.keys_forgotten", "setting", setting, before, None
        )
    refresh(force=True)
    return True


# -- laying the stored keys over app.config --------------------------------------------------


class _Overlay:
    """Per app: the config each setting had from the host, and what we wrote over it."""

    def __init__(self, app: Flask) -> None:
        self.base: dict[str, Any] = {key: app.config.get(key) for key in SPECS}
        self.written: dict[str, Any] = {}
        self.fingerprints: dict[str, tuple[Any, ...]] = {}
        self.unusable: set[str] = set()
        self.next_look = 0.0
        self.lock = threading.Lock()


def install(app: Flask) -> None:
    """Start laying stored keys over ``app``'s config (once per app)."""
    if _EXTENSION in app.extensions:
        return
    app.extensions[_EXTENSION] = _Overlay(app)
    appcontext_pushed.connect(_on_push, app)


def _on_push(app: Flask, **_: Any) -> None:
    overlay: _Overlay | None = app.extensions.get(_EXTENSION)
    if overlay is not None and time.monotonic() >= overlay.next_look:
        refresh(app)


def _app(app: Flask | None) -> Flask:
    return app or current_app._get_current_object()  # type: ignore[attr-defined]


def config_base(setting: str, app: Flask | None = None) -> Any:
    """What the site's own config says for ``setting`` (before any stored keys)."""
    app = _app(app)
    overlay: _Overlay | None = app.extensions.get(_EXTENSION)
    current = app.config.get(setting)
    if overlay is None or overlay.written.get(setting, current) is not current:
        return current  # set by the host since we last looked: that is the config now
    return overlay.base.get(setting)


def source(setting: str, app: Flask | None = None) -> str | None:
    """Where ``setting`` comes from now: ``"saved"`` (the back office), ``"config"``, None."""
    app = _app(app)
    overlay: _Overlay | None = app.extensions.get(_EXTENSION)
    if overlay is not None and setting in overlay.fingerprints:
        return "saved"
    return "config" if config_base(setting, app) is not None else None


def unusable(setting: str, app: Flask | None = None) -> bool:
    """True when keys are saved but cannot be used (SECRET_KEY changed, or refused)."""
    overlay: _Overlay | None = _app(app).extensions.get(_EXTENSION)
    return overlay is not None and setting in overlay.unusable


def refresh(app: Flask | None = None, *, force: bool = False) -> None:
    """Read the stored keys and write each setting's merged value into the config."""
    app = _app(app)
    overlay: _Overlay | None = app.extensions.get(_EXTENSION)
    if overlay is None:
        return
    with overlay.lock:
        if not force and time.monotonic() < overlay.next_look:
            return
        overlay.next_look = time.monotonic() + REFRESH_INTERVAL
        try:
            with get_state(app).get_engine().connect() as connection:
                rows = {
                    row.setting: row
                    for row in connection.execute(
                        select(
                            MerchantCredential.setting,
                            MerchantCredential.values,
                            MerchantCredential.sealed,
                            MerchantCredential.updated_at,
                        )
                    )
                }
        except SQLAlchemyError as exc:  # no table yet (before the first upgrade), or no DB
            log.debug("stored keys not read: %s", type(exc).__name__)
            return
        for setting, spec_ in SPECS.items():
            _apply(app, overlay, spec_, rows.get(setting))


def _apply(app: Flask, overlay: _Overlay, spec_: CredentialSpec, row: Any) -> None:
    setting = spec_.setting
    base = config_base(setting, app)
    overlay.base[setting] = base
    if row is None:
        value: Any = base
        overlay.fingerprints.pop(setting, None)
        overlay.unusable.discard(setting)
    else:
        fingerprint = (row.updated_at, row.sealed, id(base))
        if overlay.fingerprints.get(setting) == fingerprint:
            return  # unchanged: keep the same object, so providers are not rebuilt
        try:
            value = spec_.merge(
                base, row.values or {}, unseal(row.sealed, app.config["SECRET_KEY"])
            )
        except (ValueError, ConfigError):
            # Never the exception text: a validator's message may quote a value.
            log.warning("the keys saved for %s cannot be used; the site's config applies", setting)
            overlay.unusable.add(setting)
            overlay.fingerprints.pop(setting, None)
            value = base
        else:
            overlay.unusable.discard(setting)
            overlay.fingerprints[setting] = fingerprint
    app.config[setting] = value
    overlay.written[setting] = value


__all__ = [
    "REFRESH_INTERVAL",
    "SPECS",
    "CredentialSpec",
    "config_base",
    "forget",
    "install",
    "refresh",
    "require_owner",
    "save",
    "saved_secrets",
    "seal",
    "source",
    "spec",
    "stored_settings",
    "unseal",
    "unusable",
    "write",
]
