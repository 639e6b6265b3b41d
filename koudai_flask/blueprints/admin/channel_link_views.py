"""Adding a channel, its settings, and linking a Taobao shop by OAuth (``channels.manage``).

A Taobao shop is created paused with its app's key and secret, then the owner's browser goes
to Taobao's authorize page; Taobao sends it back to the callback with a ``code`` and the
``state`` we gave. The state is random, kept in the Flask session for that channel and good
for one callback (RFC 6749 §10.12: it binds the answer to the browser that asked), so a
forged or replayed callback is refused with 400 and changes nothing. The code becomes
tokens that are stored sealed (``connectors.taobao.tokens``); the first link starts the
channel. ERP kinds get a plain form of their connector's ``required_settings``. Secrets are
password inputs and never sent back to the browser: the page says "set" instead.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask import session as browser_session
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask.blueprints.admin.channel_common import (
    channel_or_404,
    labels,
    refused,
    to_channel,
)
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.connectors.base import connector_kinds
from koudai_flask.connectors.errors import ConnectorError
from koudai_flask.connectors.taobao.client import PRODUCTION_GATEWAY, SIGN_METHODS
from koudai_flask.connectors.taobao.oauth import OAUTH_BASE, TaobaoOAuth
from koudai_flask.connectors.taobao.tokens import seal_token
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import channel_admin
from koudai_flask.services.channel_admin import SettingField
from koudai_flask.services.channels import ChannelInfo

OAUTH_STATES = "koudai_oauth_states"  # Flask session key: {channel name: pending state}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
TAOBAO_DEFAULTS = {
    "gateway_url": PRODUCTION_GATEWAY,
    "oauth_base": OAUTH_BASE,
    "sign_method": "md5",
}


def _is_url_field(name: str) -> bool:
    return name.endswith(("url", "_base"))


def read_fields(
    fields: list[SettingField], *, keep_secrets: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """The posted settings and the per-field errors; an empty secret is kept when editing."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in fields:
        value = request.form.get(field.name, "").strip()
        if not value:
            if not (field.secret and keep_secrets):
                errors[field.name] = _k("Required.")
            continue
        if len(value) > 500:
            errors[field.name] = _k("At most 500 characters.")
        elif _is_url_field(field.name) and (
            urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname
        ):
            errors[field.name] = _k("An address starting with http:// or https://.")
        elif field.name == "sign_method" and value not in SIGN_METHODS:
            errors[field.name] = _k("One of %(methods)s.", methods=", ".join(SIGN_METHODS))
        values[field.name] = value
    return values, errors


def _redirect_uri(name: str) -> str:
    return url_for(".channel_oauth_callback", name=name, _external=True)


def start_authorization(info: ChannelInfo) -> ResponseReturnValue:
    """Send the browser to Taobao's authorize page with a fresh single-use state."""
    app_key, app_secret = info.settings.get("app_key"), info.settings.get("app_secret")
    if not app_key or not app_secret:
        flash(_k("Fill in the app key and secret first."), "error")
        return redirect(url_for(".channel_settings", name=info.name), 303)
    state = secrets.token_urlsafe(24)
    pending = dict(browser_session.get(OAUTH_STATES) or {})
    pending[info.name] = state
    browser_session[OAUTH_STATES] = pending
    oauth = TaobaoOAuth(
        str(app_key), str(app_secret), base=str(info.settings.get("oauth_base") or OAUTH_BASE)
    )
    view = "wap" if "Mobile" in request.user_agent.string else "web"
    return redirect(oauth.authorize_url(_redirect_uri(info.name), state, view=view), 303)


def _form_page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, form=FlaskForm(), **labels(), **context), status


def _new_page(kind: str, status: int = 200, **context: Any) -> tuple[str, int]:
    defaults = TAOBAO_DEFAULTS if kind == "taobao" else {}
    return _form_page(
        "koudai/admin/channel_new.html",
        status,
        kind=kind,
        kinds=sorted(connector_kinds()),
        fields=channel_admin.setting_fields(kind),
        values={**defaults, **context.pop("values", {})},
        errors=context.pop("errors", {}),
        sign_methods=SIGN_METHODS,
        editing=False,
        **context,
    )


def register(bp: Blueprint) -> None:
    @bp.get("/channels/new")
    @staff_required("channels.manage")
    def channel_new() -> ResponseReturnValue:
        kind = request.args.get("kind", "taobao")
        if kind not in connector_kinds():
            kind = "taobao"
        return _new_page(kind)

    @bp.post("/channels/new")
    @staff_required("channels.manage")
    def channel_create() -> ResponseReturnValue:
        checked_form()
        kind = request.form.get("kind", "")
        if kind not in connector_kinds():
            return _new_page("taobao", 400, error=_k("Choose a kind of channel."))
        name = request.form.get("name", "").strip()
        fields = channel_admin.setting_fields(kind)
        values, errors = read_fields(fields, keep_secrets=False)
        if not _NAME.match(name) or name == "new":
            errors["name"] = _k("Letters, digits, - and _ only, at most 64.")
        typed = {f.name: values.get(f.name, "") for f in fields if not f.secret}
        if errors:
            return _new_page(kind, 400, values=typed, errors=errors, name=name)
        taobao = kind == "taobao"
        try:
            # A shop is paused until its owner has authorized it: no job fails meanwhile.
            channel_admin.create_channel(actor_id(), kind, name, values, active=not taobao)
        except KoudaiError as exc:
            if exc.http_status == 403:
                refused(exc)
            return _new_page(kind, 400, values=typed, error=refusal_text(exc), name=name)
        if taobao:
            return start_authorization(channel_or_404(name, "channels.manage"))
        flash(_k("Channel added."), "success")
        return to_channel(name)

    def _settings_page(info: ChannelInfo, status: int = 200, **context: Any) -> tuple[str, int]:
        shown = channel_admin.masked(info.kind, info.settings)
        return _form_page(
            "koudai/admin/channel_settings.html",
            status,
            info=info,
            fields=channel_admin.setting_fields(info.kind),
            values={**shown, **context.pop("values", {})},
            errors=context.pop("errors", {}),
            sign_methods=SIGN_METHODS,
            editing=True,
            **context,
        )

    @bp.get("/channels/<name>/settings")
    @staff_required("channels.manage")
    def channel_settings(name: str) -> ResponseReturnValue:
        return _settings_page(channel_or_404(name, "channels.manage"))

    @bp.post("/channels/<name>/settings")
    @staff_required("channels.manage")
    def channel_settings_save(name: str) -> ResponseReturnValue:
        checked_form()
        info = channel_or_404(name, "channels.manage")
        fields = channel_admin.setting_fields(info.kind)
        values, errors = read_fields(fields, keep_secrets=True)
        typed = {f.name: values.get(f.name, "") for f in fields if not f.secret}
        if errors:
            return _settings_page(info, 400, values=typed, errors=errors)
        changes = {k: v for k, v in values.items() if info.settings.get(k) != v}
        if changes:
            try:
                channel_admin.save_settings(actor_id(), name, changes)
            except KoudaiError as exc:
                if exc.http_status == 403:
                    refused(exc)
                return _settings_page(info, 400, values=typed, error=refusal_text(exc))
        flash(_k("Settings saved."), "success")
        return to_channel(name)

    @bp.post("/channels/<name>/authorize")
    @staff_required("channels.manage")
    def channel_authorize(name: str) -> ResponseReturnValue:
        checked_form()
        info = channel_or_404(name, "channels.manage")
        if info.kind != "taobao":
            flash(_k("Only a Taobao shop is linked by authorization."), "error")
            return to_channel(name)
        return start_authorization(info)

    @bp.get("/channels/<name>/oauth/callback")
    @staff_required("channels.manage")
    def channel_oauth_callback(name: str) -> ResponseReturnValue:
        info = channel_or_404(name, "channels.manage")
        pending = dict(browser_session.get(OAUTH_STATES) or {})
        expected, given = str(pending.get(name) or ""), request.args.get("state", "")
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            page = render_template("koudai/admin/channel_refused.html", info=info)
            return page, 400
        pending.pop(name)
        browser_session[OAUTH_STATES] = pending  # one callback per state
        code = request.args.get("code", "")
        if not code:
            reason = request.args.get("error_description") or request.args.get("error") or ""
            flash(_k("Taobao did not authorize the app: %(reason)s", reason=reason), "error")
            return to_channel(name)
        oauth = TaobaoOAuth(
            str(info.settings.get("app_key") or ""),
            str(info.settings.get("app_secret") or ""),
            base=str(info.settings.get("oauth_base") or OAUTH_BASE),
        )
        try:
            token = oauth.exchange_code(code, _redirect_uri(name))
        except ConnectorError as exc:
            flash(refusal_text(exc), "error")
            return to_channel(name)
        finally:
            oauth.http.close()
        sealed = seal_token(str(current_app.config["SECRET_KEY"]), token)
        try:
            channel_admin.store_authorization(actor_id(), name, sealed)
        except KoudaiError as exc:
            refused(exc)
            return to_channel(name)
        flash(_k("Linked as %(nick)s.", nick=token.taobao_user_nick), "success")
        return to_channel(name)
