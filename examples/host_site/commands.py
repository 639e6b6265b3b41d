"""The site's own CLI: ``flask init-db`` and ``flask seed-users``.

``init-db`` creates the site's tables only: koudai's tables are on another metadata and
are created by ``flask koudai db upgrade``. Both commands can be run again safely.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select

from examples.host_site.extensions import db
from examples.host_site.models import User
from koudai_flask.errors import NotFound
from koudai_flask.services import staff


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    name: str
    role: str | None  # a koudai staff role; None for a shopper


DEMO_ACCOUNTS = (
    DemoAccount("owner@example.com", "camellia-owner", "王店长 Shop owner", "owner"),
    DemoAccount(
        "service@example.com", "camellia-service", "小美 Customer service", "customer_service"
    ),
    DemoAccount("buyer@example.com", "camellia-buyer", "李同学 Buyer", None),
)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create the site's own tables (users)."""
    db.create_all()
    click.echo("site tables are ready: " + ", ".join(sorted(db.metadata.tables)))


def _ensure_user(account: DemoAccount) -> tuple[User, bool]:
    user = db.session.scalar(select(User).where(User.email == account.email))
    if user is not None:
        return user, False
    user = User(email=account.email, name=account.name)
    user.set_password(account.password)
    db.session.add(user)
    db.session.commit()
    return user, True


def _ensure_role(user: User, account: DemoAccount) -> bool:
    assert account.role is not None
    try:
        member = staff.get_member(str(user.id))
    except NotFound:
        member = None
    if member is not None and member.role == account.role:
        return False
    staff.grant(str(user.id), account.role, display_name=account.name)
    return True


@click.command("seed-users")
@with_appcontext
def seed_users() -> None:
    """Create the demo accounts and give the staff among them their back-office roles."""
    for account in DEMO_ACCOUNTS:
        user, created = _ensure_user(account)
        granted = account.role is not None and _ensure_role(user, account)
        what = "created" if created else "exists "
        role = f"staff role {account.role}" if account.role else "shopper, no back office"
        note = " (granted)" if granted else ""
        click.echo(f"{what} {account.email:<22} {role}{note}")


def register(app: Flask) -> None:
    app.cli.add_command(init_db)
    app.cli.add_command(seed_users)
