"""The back office's door: the dashboard, staff login and logout.

Every view needs a staff member. With a host Flask-Login, an anonymous visitor is sent to
the host's login view; without one, to our own staff login form.
"""

from __future__ import annotations

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
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length, Regexp

from koudai_flask import identity
from koudai_flask.blueprints.admin.common import public, staff_required
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.services import dashboard, outbox_review, staff


class StaffLoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Regexp(r"^[^@\s]+@[^@\s]+$")])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=8, max=200)])


def register(bp: Blueprint) -> None:

    @bp.get("/")
    @staff_required()
    def index() -> ResponseReturnValue:
        member = g.koudai_staff
        # Events that gave up are the whole shop's: shown to who can act on them.
        sees_jobs = member.channels is None and staff.can(member.user_id, "staff.manage")
        return render_template(
            "koudai/admin/index.html",
            dashboard=dashboard.for_member(member),
            dead_events=outbox_review.dead_count() if sees_jobs else 0,
        )

    @bp.route("/login", methods=["GET", "POST"])
    @public
    def login() -> ResponseReturnValue:
        manager = identity.host_login_manager()
        if manager is not None and manager.login_view:
            return redirect(url_for(manager.login_view, next=request.args.get("next")))
        form = StaffLoginForm()
        error = None
        if request.method == "POST" and not form.validate():
            error = (
                _k("The form expired; please try again.")
                if "csrf_token" in form.errors
                else _k("Enter your email and a password of at least 8 characters.")
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
            error = _k("Wrong email or password.")
        status = 401 if error else 200
        return render_template("koudai/admin/login.html", form=form, error=error), status

    @bp.post("/logout")
    @public
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
