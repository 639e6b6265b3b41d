"""The set-up wizard's last steps: link a Taobao shop and import its catalog, open the shop.

A Taobao shop is linked through the same steps as the channel pages (the channel created
paused with the app's key and secret, Taobao's authorize page, a single-use ``state`` kept
in the browser's session, the code exchanged and the tokens sealed), except that Taobao
sends the owner back to the wizard, where the catalog import starts and shows its progress.

While the shop is closed, every shop page answers buyers with a "coming soon" page (503);
signed-in staff still see the shop, to preview it. :func:`install` adds that check and the
stored keys' overlay to the app when the back office is registered.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as browser_session
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask.blueprints.admin.channel_common import labels
from koudai_flask.blueprints.admin.channel_link_views import (
    _NAME,
    OAUTH_STATES,
    TAOBAO_DEFAULTS,
    read_fields,
)
from koudai_flask.blueprints.admin.channel_views import import_progress
from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.connectors.errors import ConnectorError
from koudai_flask.connectors.taobao.client import SIGN_METHODS
from koudai_flask.connectors.taobao.oauth import OAUTH_BASE, TaobaoOAuth
from koudai_flask.connectors.taobao.tokens import seal_token
from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import channel_admin, channels, onboarding
from koudai_flask.services import merchant_credentials as keys
from koudai_flask.services.channels import ChannelInfo
from koudai_flask.services.onboarding import StepStatus

SHOP_PACKAGE = "koudai_flask.blueprints.shop"
# Shop endpoints a closed shop still serves: product pictures (a preview shared by staff).


def _taobao_shops() -> list[ChannelInfo]:
    return [info for info in channels.all_channels() if info.kind == "taobao"]


def shown_steps(statuses: Mapping[str, StepStatus]) -> list[StepStatus]:
    """The steps as the wizard shows them: the Taobao step from its shops' import, the last
    step from the door itself (they can change outside the wizard)."""
    shown: list[StepStatus] = []
    for step, status in statuses.items():
        if step == "taobao":
            status = _taobao_status(status)
        elif step == "open":
            status = StepStatus("open", "done" if onboarding.shop_is_open() else "todo")
        shown.append(status)
    return shown


def _taobao_status(stored: StepStatus) -> StepStatus:
    imports = [import_progress(info) for info in _taobao_shops() if _linked(info)]
    states = [p["state"] for p in imports]
    text = next((str(p["text"]) for p in imports if p["state"] in ("done", "running")), "")
    if "done" in states:
        return StepStatus("taobao", "done", detail={"text": text})
    if "running" in states:
        return StepStatus("taobao", "todo", detail={"text": text})
    if "failed" in states:
        failed = next(str(p["text"]) for p in imports if p["state"] == "failed")
        return StepStatus("taobao", "failed", detail={"text": failed})
    if imports and stored.state != "skipped":
        return StepStatus("taobao", "todo", detail={"text": _k("Linked: import its catalog next.")})
    return stored


def _linked(info: ChannelInfo) -> bool:
    return bool(info.settings.get("access_token"))


def _callback_uri(name: str) -> str:
    return url_for(".onboarding_taobao_callback", name=name, _external=True)


def _authorize(info: ChannelInfo) -> ResponseReturnValue:
    """Taobao's authorize page, coming back to the wizard, with a fresh single-use state."""
    state = secrets.token_urlsafe(24)
    pending = dict(browser_session.get(OAUTH_STATES) or {})
    pending[info.name] = state
    browser_session[OAUTH_STATES] = pending
    oauth = TaobaoOAuth(
        str(info.settings.get("app_key") or ""),
        str(info.settings.get("app_secret") or ""),
        base=str(info.settings.get("oauth_base") or OAUTH_BASE),
    )
    view = "wap" if "Mobile" in request.user_agent.string else "web"
    return redirect(oauth.authorize_url(_callback_uri(info.name), state, view=view), 303)


def _shop(name: str) -> ChannelInfo:
    try:
        info = channels.info(name)
    except NotFound:
        info = None
    if info is None or info.kind != "taobao":
        abort(404)
    return info


def _shop_url() -> str | None:
    """The shop's home, where the owner previews it (None when no shop is mounted)."""
    for name, blueprint in current_app.blueprints.items():
        if blueprint.import_name == SHOP_PACKAGE:
            return url_for(f"{name}.index")
    return None


def _back() -> ResponseReturnValue:
    return redirect(url_for(".onboarding_taobao"), 303)


def register(bp: Blueprint) -> None:
    from koudai_flask.blueprints.admin.onboarding_views import owner_only, words

    bp.record_once(_install_from_blueprint)

    def _taobao_page(status: int = 200, **context: Any) -> ResponseReturnValue:
        shops = [(info, _linked(info), import_progress(info)) for info in _taobao_shops()]
        return render_template(
            "koudai/admin/onboarding_taobao.html",
            shops=shops,
            current=_taobao_status(onboarding.status("taobao")),
            fields=channel_admin.setting_fields("taobao"),
            values={**TAOBAO_DEFAULTS, **context.pop("values", {})},
            errors=context.pop("errors", {}),
            sign_methods=SIGN_METHODS,
            editing=False,
            form=FlaskForm(),
            **labels(),
            **words(),
            **context,
        ), status

    @bp.get("/onboarding/taobao")
    @staff_required("staff.manage")
    def onboarding_taobao() -> ResponseReturnValue:
        owner_only()
        return _taobao_page()

    @bp.post("/onboarding/taobao")
    @staff_required("staff.manage")
    def onboarding_taobao_add() -> ResponseReturnValue:
        checked_form()
        owner_only()
        name = request.form.get("name", "").strip()
        fields = channel_admin.setting_fields("taobao")
        values, errors = read_fields(fields, keep_secrets=False)
        if not _NAME.match(name) or name == "new":
            errors["name"] = _k("Letters, digits, - and _ only, at most 64.")
        typed = {f.name: values.get(f.name, "") for f in fields if not f.secret}
        if errors:
            return _taobao_page(400, values=typed, errors=errors, name=name)
        try:
            # Paused until the owner authorized it, as on the channel pages.
            channel_admin.create_channel(actor_id(), "taobao", name, values, active=False)
        except KoudaiError as exc:
            if exc.http_status == 403:
                abort(403)
            return _taobao_page(400, values=typed, error=refusal_text(exc), name=name)
        return _authorize(_shop(name))

    @bp.post("/onboarding/taobao/<name>/authorize")
    @staff_required("staff.manage")
    def onboarding_taobao_authorize(name: str) -> ResponseReturnValue:
        checked_form()
        owner_only()
        return _authorize(_shop(name))

    @bp.get("/onboarding/taobao/<name>/callback")
    @staff_required("staff.manage")
    def onboarding_taobao_callback(name: str) -> ResponseReturnValue:
        owner_only()
        info = _shop(name)
        pending = dict(browser_session.get(OAUTH_STATES) or {})
        expected, given = str(pending.get(name) or ""), request.args.get("state", "")
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            return render_template("koudai/admin/channel_refused.html", info=info), 400
        pending.pop(name)
        browser_session[OAUTH_STATES] = pending  # one callback per state
        code = request.args.get("code", "")
        if not code:
            reason = request.args.get("error_description") or request.args.get("error") or ""
            flash(_k("Taobao did not authorize the app: %(reason)s", reason=reason), "error")
            return _back()
        oauth = TaobaoOAuth(
            str(info.settings.get("app_key") or ""),
            str(info.settings.get("app_secret") or ""),
            base=str(info.settings.get("oauth_base") or OAUTH_BASE),
        )
        try:
            token = oauth.exchange_code(code, _callback_uri(name))
        except ConnectorError as exc:
            flash(refusal_text(exc), "error")
            return _back()
        finally:
            oauth.http.close()
        sealed = seal_token(str(current_app.config["SECRET_KEY"]), token)
        try:
            channel_admin.store_authorization(actor_id(), name, sealed)
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return _back()
        flash(_k("Linked as %(nick)s.", nick=token.taobao_user_nick), "success")
        return _back()

    @bp.post("/onboarding/taobao/<name>/import")
    @staff_required("staff.manage")
    def onboarding_taobao_import(name: str) -> ResponseReturnValue:
        checked_form()
        owner_only()
        info = _shop(name)
        if not _linked(info):
            flash(_k("Authorize the shop on Taobao first."), "error")
            return _back()
        from koudai_flask.jobs.catalog_import import start_import

        try:
            state = start_import(info.id)  # inline: it has run already; on RQ: queued
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return _back()
        text = str(import_progress(channels.info(name))["text"])
        flash(text, "error" if state == "failed" else "success")
        try:
            channel_admin.record_action(
                actor_id(), name, "channels.import_catalog", {"state": state}
            )
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
        return _back()

    @bp.get("/onboarding/open")
    @staff_required("staff.manage")
    def onboarding_open() -> ResponseReturnValue:
        owner_only()
        statuses = shown_steps(onboarding.progress())
        return render_template(
            "koudai/admin/onboarding_open.html",
            rows=statuses,
            is_open=onboarding.shop_is_open(),
            shop_url=_shop_url(),
            form=FlaskForm(),
            **words(),
        )

    def _set_door(is_open: bool) -> ResponseReturnValue:
        try:
            onboarding.set_shop_open(actor_id(), is_open)
        except KoudaiError as exc:
            if exc.http_status == 403:
                abort(403)
            flash(refusal_text(exc), "error")
        else:
            flash(
                _k("The shop is open: buyers can shop now.")
                if is_open
                else _k("The shop is closed: buyers see a 'coming soon' page."),
                "success",
            )
        return redirect(url_for(".onboarding_open"), 303)

    @bp.post("/onboarding/open")
    @staff_required("staff.manage")
    def onboarding_open_shop() -> ResponseReturnValue:
        checked_form()
        owner_only()
        return _set_door(True)

    @bp.post("/onboarding/close")
    @staff_required("staff.manage")
    def onboarding_close_shop() -> ResponseReturnValue:
        checked_form()
        owner_only()
        return _set_door(False)


# -- the stored keys, app-wide -------------------------------------------


def install(app: Flask) -> None:
    """Add the stored keys' overlay to ``app``."""
    keys.install(app)


def _install_from_blueprint(state: BlueprintSetupState) -> None:
    app = state.app
    assert isinstance(app, Flask)
    install(app)


__all__ = ["install", "register", "shown_steps"]
