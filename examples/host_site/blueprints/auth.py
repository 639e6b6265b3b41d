"""Sign in and out with the site's own accounts; koudai reads ``current_user`` from here."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from examples.host_site.extensions import db
from examples.host_site.forms import LoginForm
from examples.host_site.models import User

bp = Blueprint("auth", __name__)


def _next_url() -> str:
    """The ``next`` parameter when it is a path on this site, else the home page."""
    target = request.args.get("next", "")
    parts = urlsplit(target)
    # Only a local path: "//host" and "/\host" are treated as other sites by browsers.
    if parts.scheme or parts.netloc or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return url_for("main.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_next_url())
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None and user.check_password(form.password.data or ""):
            login_user(user, remember=bool(form.remember.data))
            return redirect(_next_url())
        flash("邮箱或密码不正确。 Wrong email or password.", "error")
        status = 401
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    flash("已退出登录。 You are signed out.", "info")
    return redirect(url_for("main.index"))
