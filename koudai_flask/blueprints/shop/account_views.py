"""Buyer accounts when the host has none: log in, register, log out, reset by a signed link.

With a host ``LoginManager`` these pages send the visitor to the host's own login. Inside
WeChat, with ``KOUDAI_WECHAT`` set, a buyer is recognised silently by the ``snsapi_base``
OAuth login, which links their openid to a customer.
"""

from __future__ import annotations

import contextlib
import secrets
from urllib.parse import urlencode

import requests
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.signals import Namespace
from flask.typing import ResponseReturnValue

from koudai_flask import identity
from koudai_flask.blueprints.common import current_path
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.blueprints.shop.common import safe_next
from koudai_flask.blueprints.shop.forms import (
    ActionForm,
    LoginForm,
    RegisterForm,
    ResetForm,
    ResetRequestForm,
)
from koudai_flask.errors import ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.services import customers

signals = Namespace()
#: Sent with ``customer`` and ``url`` when a buyer asks to reset their password; connect a
#: receiver that e-mails or texts the link. koudai never logs the link.
password_reset_requested = signals.signal("koudai-password-reset-requested")

OAUTH_STATE_KEY = "koudai_oauth_state"


def _host_login() -> ResponseReturnValue | None:
    manager = identity.host_login_manager()
    if manager is None:
        return None
    if manager.login_view:
        return redirect(url_for(manager.login_view, next=request.args.get("next")))
    abort(404)


def register(bp: Blueprint) -> None:
    @bp.route("/account/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        host = _host_login()
        if host is not None:
            return host
        form = LoginForm()
        if request.method == "POST":
            if not form.validate():
                return render_template(
                    "koudai/shop/account/login.html",
                    form=form,
                    error=_k("Please check the form and try again."),
                ), 400
            customer = customers.authenticate(form.login.data or "", form.password.data or "")
            if customer is None:
                return render_template(
                    "koudai/shop/account/login.html",
                    form=form,
                    error=_k("Wrong login or password."),
                ), 401
            identity.login_buyer(customer)
            return redirect(safe_next(url_for(".index")))
        return render_template("koudai/shop/account/login.html", form=form)

    @bp.route("/account/register", methods=["GET", "POST"])
    def register_account() -> ResponseReturnValue:
        host = _host_login()
        if host is not None:
            return host
        form = RegisterForm()
        if request.method == "POST":
            if not form.validate():
                return render_template(
                    "koudai/shop/account/register.html",
                    form=form,
                    error=_k("Please check the form and try again."),
                ), 400
            login_value = (form.login.data or "").strip()
            kind = "email" if "@" in login_value else "phone"
            try:
                customer = customers.register(
                    password=form.password.data or "",
                    name=form.name.data or "",
                    **{kind: login_value},
                )
            except ValidationError as exc:
                return render_template(
                    "koudai/shop/account/register.html", form=form, error=refusal_text(exc)
                ), 422
            identity.login_buyer(customer)
            return redirect(safe_next(url_for(".index")))
        return render_template("koudai/shop/account/register.html", form=form)

    @bp.post("/account/logout")
    def logout() -> ResponseReturnValue:
        if not ActionForm().validate():
            abort(400)
        identity.logout_buyer()
        return redirect(url_for(".index"))

    @bp.route("/account/reset", methods=["GET", "POST"])
    def reset_request() -> ResponseReturnValue:
        host = _host_login()
        if host is not None:
            return host
        form = ResetRequestForm()
        if request.method == "POST":
            if not form.validate():
                return render_template("koudai/shop/account/reset_request.html", form=form), 400
            customer = customers.find_by_login(form.login.data or "")
            if customer is not None:
                token = customers.reset_token(customer, current_app.config["SECRET_KEY"])
                url = url_for(".reset_password", token=token, _external=True)
                app = current_app._get_current_object()  # type: ignore[attr-defined]
                password_reset_requested.send(app, customer=customer, url=url)
            # The same answer whether or not the account exists.
            flash(_k("If that account exists, a reset link is on its way."), "success")
            return redirect(url_for(".login"))
        return render_template("koudai/shop/account/reset_request.html", form=form)

    @bp.route("/account/reset/<token>", methods=["GET", "POST"])
    def reset_password(token: str) -> ResponseReturnValue:
        form = ResetForm()
        if request.method == "POST":
            if not form.validate():
                return render_template(
                    "koudai/shop/account/reset.html",
                    form=form,
                    error=_k("Please check the form and try again."),
                ), 400
            try:
                customer = customers.reset_password(
                    token, form.password.data or "", current_app.config["SECRET_KEY"]
                )
            except ValidationError as exc:
                return render_template(
                    "koudai/shop/account/reset.html", form=form, error=refusal_text(exc)
                ), 400
            identity.login_buyer(customer)
            flash(_k("Your password was changed."), "success")
            return redirect(url_for(".index"))
        return render_template("koudai/shop/account/reset.html", form=form)

    @bp.get("/wechat/oauth")
    def wechat_oauth() -> ResponseReturnValue:
        """The OAuth2 callback: exchange the code for the openid (PROTOCOLS §3.4)."""
        settings = current_app.config["KOUDAI_WECHAT"]
        expected = session.pop(OAUTH_STATE_KEY, None)
        state = request.args.get("state", "")
        if settings is None or not expected or state != expected.get("state"):
            abort(400)
        code = request.args.get("code")
        if not code:  # the buyer refused, or WeChat sent no code: carry on as a guest
            session["koudai_oauth_skipped"] = True
            return redirect(expected.get("next") or url_for(".index"))
        api = settings.get("api_url", "https://api.weixin.qq.com").rstrip("/")
        try:
            reply = requests.get(
                f"{api}/sns/oauth2/access_token",
                params={
                    "appid": settings["appid"],
                    "secret": settings["secret"],
                    "code": code,
                    "grant_type": "authorization_code",
                },
                timeout=5,
            ).json()
        except (requests.RequestException, ValueError):
            reply = {}
        openid = reply.get("openid")
        if not openid:
            session["koudai_oauth_skipped"] = True
            return redirect(expected.get("next") or url_for(".index"))
        identity.remember_openid(openid)
        customer = identity.current_customer()
        if customer is not None and reply.get("unionid"):
            with contextlib.suppress(ValidationError):
                customers.link_identity(customer.id, "wechat_unionid", reply["unionid"])
        return redirect(expected.get("next") or url_for(".index"))


def wechat_silent_login() -> ResponseReturnValue | None:
    """Before shop requests inside WeChat: get the openid once with ``snsapi_base``."""
    settings = current_app.config["KOUDAI_WECHAT"]
    if (
        settings is None
        or request.method != "GET"
        or "MicroMessenger" not in request.headers.get("User-Agent", "")
        or session.get(identity.OPENID_SESSION_KEY)
        or session.get("koudai_oauth_skipped")
        or (request.endpoint or "").endswith(".wechat_oauth")
    ):
        return None
    state = secrets.token_urlsafe(16)
    session[OAUTH_STATE_KEY] = {"state": state, "next": current_path()}
    callback = url_for(f"{request.blueprint}.wechat_oauth", _external=True)
    query = urlencode(
        {
            "appid": settings["appid"],
            "redirect_uri": callback,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
        }
    )
    base = settings.get("oauth_url", "https://open.weixin.qq.com").rstrip("/")
    return redirect(f"{base}/connect/oauth2/authorize?{query}#wechat_redirect")
