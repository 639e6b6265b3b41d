"""The back office: the ``koudai_admin`` blueprint.

Every view needs a staff member. With a host Flask-Login, an anonymous visitor is sent to
the host's login view; without one, to our own staff login form.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length, Regexp

from koudai_flask import identity
from koudai_flask.models import Order, Product, StockLevel
from koudai_flask.services import staff
from koudai_flask.services.transaction import current_session


class StaffLoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Regexp(r"^[^@\s]+@[^@\s]+$")])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=200)])


def staff_required(permission: str | None = None) -> Callable[..., Any]:
    def decorate(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            member = identity.current_staff()
            if member is None:
                manager = identity.host_login_manager()
                if manager is not None:
                    if identity.current_user_id() is None:
                        return manager.unauthorized()
                    abort(403)
                return redirect(url_for(".login", next=request.full_path))
            if permission is not None and not staff.can(member.user_id, permission):
                abort(403)
            g.koudai_staff = member
            return view(*args, **kwargs)

        return wrapped

    return decorate


def create_admin_blueprint(name: str = "koudai_admin") -> Blueprint:
    bp = Blueprint(name, __name__)

    @bp.get("/")
    @staff_required()
    def index() -> ResponseReturnValue:
        session = current_session()
        by_status = dict(
            session.execute(select(Order.status, func.count()).group_by(Order.status)).all()
        )
        products = session.scalar(
            select(func.count()).select_from(Product).where(Product.status == "active")
        )
        low_stock = session.scalar(
            select(func.count())
            .select_from(StockLevel)
            .where(StockLevel.on_hand - StockLevel.reserved <= 3)
        )
        return render_template(
            "koudai/admin/index.html",
            staff_member=g.koudai_staff,
            orders_by_status=by_status,
            product_count=products,
            low_stock=low_stock,
        )

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        manager = identity.host_login_manager()
        if manager is not None and manager.login_view:
            return redirect(url_for(manager.login_view, next=request.args.get("next")))
        form = StaffLoginForm()
        error = None
        if request.method == "POST" and not form.validate():
            error = (
                "The form expired; please try again."
                if "csrf_token" in form.errors
                else "Enter your email and a password of at least 8 characters."
            )
            return render_template("koudai/admin/login.html", form=form, error=error), 400
        if request.method == "POST":
            member = staff.authenticate(form.email.data or "", form.password.data or "")
            if member is not None:
                identity.login_staff(member)
                target = request.args.get("next") or ""
                # Only same-site paths: never an open redirect.
                if not target.startswith("/") or target.startswith("//"):
                    target = url_for(".index")
                return redirect(target)
            error = "Wrong email or password."
        status = 401 if error else 200
        return render_template("koudai/admin/login.html", form=form, error=error), status

    @bp.post("/logout")
    def logout() -> ResponseReturnValue:
        form = FlaskForm()
        if not form.validate_on_submit():
            abort(400)
        identity.logout_staff()
        if identity.host_login_manager() is not None:
            # The host's login is the staff identity: logging out of the back office ends it.
            from flask_login import logout_user

            logout_user()
        return redirect(url_for(".login"))

    return bp
