"""The set-up wizard (``/onboarding``): the steps' page, the profile and the keys checked live.

Every page needs ``staff.manage`` and no channel scope (the keys and the door are the whole
shop's): owners and admins. Each form is CSRF-checked; a refused form says in plain words
what is wrong and changes nothing but the step's own note. Secrets are password inputs and
never sent back to the browser: the page says which are set. The Taobao step and opening
the shop are in :mod:`.onboarding_shop_views`, registered from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask.blueprints.admin import onboarding_shop_views
from koudai_flask.blueprints.admin.common import acting, actor_id, checked_form, staff_required
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.services import credential_checks, onboarding, theme
from koudai_flask.services import merchant_credentials as keys
from koudai_flask.services.theme import RETURN_ADDRESS_PARTS

# The profile form's fields of the return address (退货地址).
RETURN_FIELDS = tuple(f"return_{key}" for key in RETURN_ADDRESS_PARTS)

STEP_TITLES = {
    "profile": _l("Shop profile and theme"),
    "wechat": _l("WeChat Official Account"),
    "wechatpay": _l("WeChat Pay"),
    "alipay": _l("Alipay"),
    "taobao": _l("Taobao shop and catalog"),
    "open": _l("Open the shop"),
}
STATE_LABELS = {
    "todo": _l("To do"),
    "done": _l("Done"),
    "failed": _l("Needs attention"),
    "skipped": _l("Skipped"),
}
STEP_HELP = {
    "wechat": _l(
        "From the Official Account platform, Settings and development > Basic configuration: "
        "the AppID and the AppSecret. We fetch an access token with them to check."
    ),
    "wechatpay": _l(
        "From the WeChat Pay merchant platform, Account centre > API security: the merchant "
        "ID, the APIv3 key, the merchant API certificate's serial number and private key "
        "(apiclient_key.pem), and the WeChat Pay public key with its ID. We make a signed "
        "query to check."
    ),
    "alipay": _l(
        "From open.alipay.com, your app's development settings: the AppID, the app private "
        "key and the Alipay public key (RSA2). We make a signed alipay.trade.query to check."
    ),
}


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str  # text | url | secret | pem | pem_secret
    required: bool = True


KEY_FIELDS: dict[str, list[FormField]] = {
    "wechat": [
        FormField("appid", "text"),
        FormField("secret", "secret"),
        FormField("api_url", "url", required=False),
    ],
    "wechatpay": [
        FormField("mchid", "text"),
        FormField("appid", "text"),
        FormField("apiv3_key", "secret"),
        FormField("merchant_serial_no", "text"),
        FormField("merchant_private_key", "pem_secret"),
        FormField("platform_key_id", "text"),
        FormField("platform_public_key", "pem"),
        FormField("gateway_url", "url", required=False),
    ],
    "alipay": [
        FormField("app_id", "text"),
        FormField("app_private_key", "pem_secret"),
        FormField("alipay_public_key", "pem"),
        FormField("gateway_url", "url", required=False),
        FormField("seller_id", "text", required=False),
    ],
}


def owner_only() -> None:
    """The wizard is the whole shop's: a member scoped to some channels gets 403."""
    if acting().channels is not None:
        abort(403)


def to_step(step: str) -> ResponseReturnValue:
    endpoint = {
        "profile": ".onboarding_profile",
        "taobao": ".onboarding_taobao",
        "open": ".onboarding_open",
    }.get(step)
    if endpoint is None:
        return redirect(url_for(".onboarding_keys", step=step), 303)
    return redirect(url_for(endpoint), 303)


def words() -> dict[str, Any]:
    """The label helpers every wizard template uses."""
    return {
        "step_title": lambda step: str(STEP_TITLES.get(step, step)),
        "state_label": lambda state: str(STATE_LABELS.get(state, state)),
        "field_label": lambda name: str(credential_checks.FIELD_LABELS.get(name, name)),
        "steps": onboarding.STEPS,
    }


def _in_use(step: str) -> dict[str, Any]:
    """What the shop uses now for a key step, masked: ids and URLs shown, secrets "set"."""
    setting = onboarding.KEY_STEPS[step]
    value = current_app.config.get(setting) or {}
    spec = keys.spec(setting)
    shown: dict[str, Any] = {}
    for name in spec.public:
        if name == "platform_public_keys":
            shown["platform_key_id"] = ", ".join(sorted(value.get(name) or {}))
        elif name not in ("alipay_public_key",):
            shown[name] = value.get(name) or ""
    for name in spec.secret:
        shown[name] = bool(value.get(name))
    return shown


def _keys_page(step: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    setting = onboarding.KEY_STEPS[step]
    current = onboarding.status(step)
    typed = context.pop("typed", None)
    return render_template(
        "koudai/admin/onboarding_keys.html",
        step=step,
        help=STEP_HELP[step],
        fields=KEY_FIELDS[step],
        values=typed if typed is not None else current.draft,
        errors=context.pop("errors", {}),
        current=current,
        source=keys.source(setting),
        unusable=keys.unusable(setting),
        in_use=_in_use(step),
        saved=setting in keys.stored_settings(),
        skippable=step in onboarding.SKIPPABLE,
        form=FlaskForm(),
        **words(),
        **context,
    ), status


def _refused(exc: KoudaiError) -> None:
    if exc.http_status == 403:
        abort(403)
    flash(refusal_text(exc), "error")


def register(bp: Blueprint) -> None:
    onboarding_shop_views.register(bp)

    @bp.get("/onboarding")
    @staff_required("staff.manage")
    def onboarding_index() -> ResponseReturnValue:
        owner_only()
        statuses = onboarding.progress()
        rows = onboarding_shop_views.shown_steps(statuses)
        return render_template(
            "koudai/admin/onboarding.html",
            rows=rows,
            next_step=onboarding.next_step({row.step: row for row in rows}),
            is_open=onboarding.shop_is_open(),
            form=FlaskForm(),
            **words(),
        )

    @bp.get("/onboarding/profile")
    @staff_required("staff.manage")
    def onboarding_profile() -> ResponseReturnValue:
        owner_only()
        shown = theme.current()
        values = {
            "name": shown.name,
            "primary_color": shown.primary_color,
            "logo_url": shown.logo_url or "",
            **{f"return_{key}": value for key, value in (shown.return_address or {}).items()},
        }
        return _profile_page(values)

    def _profile_page(values: dict[str, str], status: int = 200, error: str | None = None) -> Any:
        return render_template(
            "koudai/admin/onboarding_profile.html",
            values=values,
            error=error,
            current=onboarding.status("profile"),
            form=FlaskForm(),
            **words(),
        ), status

    @bp.post("/onboarding/profile")
    @staff_required("staff.manage")
    def onboarding_profile_save() -> ResponseReturnValue:
        checked_form()
        owner_only()
        values = {
            name: request.form.get(name, "").strip()
            for name in ("name", "primary_color", "logo_url", *RETURN_FIELDS)
        }
        try:
            onboarding.save_profile(
                actor_id(),
                name=values["name"],
                primary_color=values["primary_color"],
                logo_url=values["logo_url"] or None,
                return_address={key: values[f"return_{key}"] for key in RETURN_ADDRESS_PARTS},
            )
        except KoudaiError as exc:
            if exc.http_status == 403:
                abort(403)
            return _profile_page(values, 400, refusal_text(exc))
        flash(_k("The shop's profile is saved."), "success")
        return redirect(url_for(".onboarding_index"), 303)

    @bp.get("/onboarding/keys/<step>")
    @staff_required("staff.manage")
    def onboarding_keys(step: str) -> ResponseReturnValue:
        owner_only()
        if step not in onboarding.KEY_STEPS:
            abort(404)
        return _keys_page(step)

    @bp.post("/onboarding/keys/<step>")
    @staff_required("staff.manage")
    def onboarding_keys_check(step: str) -> ResponseReturnValue:
        checked_form()
        owner_only()
        if step not in onboarding.KEY_STEPS:
            abort(404)
        form = {f.name: request.form.get(f.name, "") for f in KEY_FIELDS[step]}
        try:
            outcome = onboarding.check_keys(actor_id(), step, form)
        except KoudaiError as exc:
            if exc.http_status == 403:
                abort(403)
            return _keys_page(step, 400, error=refusal_text(exc))
        if outcome.ok:
            flash(
                credential_checks.describe(outcome.finding.code, outcome.finding.detail), "success"
            )
            return redirect(url_for(".onboarding_index"), 303)
        errors = {
            p.field: credential_checks.describe(p.code, p.detail)
            for p in outcome.problems
            if p.field
        }
        typed = {
            f.name: form[f.name].strip()
            for f in KEY_FIELDS[step]
            if f.kind not in ("secret", "pem_secret")
        }
        message = credential_checks.describe(outcome.finding.code, outcome.finding.detail)
        return _keys_page(
            step, 400, typed=typed, errors=errors, error=message, problem=outcome.finding.code
        )

    @bp.post("/onboarding/keys/<step>/recheck")
    @staff_required("staff.manage")
    def onboarding_keys_recheck(step: str) -> ResponseReturnValue:
        checked_form()
        owner_only()
        if step not in onboarding.KEY_STEPS:
            abort(404)
        try:
            finding = onboarding.recheck(actor_id(), step)
        except KoudaiError as exc:
            _refused(exc)
        else:
            text = credential_checks.describe(finding.code, finding.detail)
            flash(text, "success" if finding.ok else "error")
        return to_step(step)

    @bp.post("/onboarding/keys/<step>/forget")
    @staff_required("staff.manage")
    def onboarding_keys_forget(step: str) -> ResponseReturnValue:
        checked_form()
        owner_only()
        if step not in onboarding.KEY_STEPS:
            abort(404)
        try:
            dropped = onboarding.forget_keys(actor_id(), step)
        except KoudaiError as exc:
            _refused(exc)
        else:
            if dropped:
                flash(
                    _k("The saved keys are gone: the site's configuration applies again."),
                    "success",
                )
            else:
                flash(_k("No keys were saved here."), "error")
        return to_step(step)

    @bp.post("/onboarding/<step>/skip")
    @staff_required("staff.manage")
    def onboarding_skip(step: str) -> ResponseReturnValue:
        checked_form()
        owner_only()
        if step not in onboarding.SKIPPABLE:
            abort(404)
        try:
            onboarding.skip(actor_id(), step)
        except KoudaiError as exc:
            _refused(exc)
            return to_step(step)
        flash(_k("Skipped: you can come back to it at any time."), "success")
        return redirect(url_for(".onboarding_index"), 303)


__all__ = ["KEY_FIELDS", "STEP_TITLES", "owner_only", "register", "to_step", "words"]
