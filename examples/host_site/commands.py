"""The site's own CLI: ``flask init-db``, ``flask seed-users``, ``flask link-taobao`` (and,
from demo_crm, ``flask seed-crm`` and ``flask subscribe-webhook``).

``init-db`` creates the site's tables only: koudai's tables are on another metadata and
are created by ``flask koudai db upgrade``. ``link-taobao`` is what a merchant's script
would do to link a Taobao shop whose items carry our SKU codes as outer ids (the demo
points it at the Taobao sandbox). ``seed-users`` also gives the shop a return address, as an
owner would on the profile page. Every command can be run again safely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select

from examples.host_site.extensions import db
from examples.host_site.models import User
from koudai_flask.errors import NotFound
from koudai_flask.services import channels, staff, stock_sync, theme


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
    if theme.current().return_address is None:  # what the owner sets on the profile page
        theme.update(return_address=RETURN_ADDRESS)
        click.echo(f"return address set: {RETURN_ADDRESS['address']}")


# Where the demo's returns go: the shop's warehouse.
RETURN_ADDRESS = {
    "name": "山茶花仓库 售后组",
    "phone": "0571-88886666",
    "address": "浙江省杭州市西湖区文三路 90 号 3 号楼 1 层",
}


TAOBAO_CHANNEL = "taobao-demo"


@click.command("link-taobao")
@click.argument("settings_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=TAOBAO_CHANNEL, show_default=True, help="The channel's name.")
@with_appcontext
def link_taobao(settings_file: Path, name: str) -> None:
    """Link a Taobao shop (settings JSON with a seller session) and bind it by outer id."""
    from koudai_flask.connectors.taobao.connector import TaobaoConnector
    from koudai_flask.jobs.sync import build_connector, run_channel_job

    settings = json.loads(settings_file.read_text(encoding="utf-8"))
    try:
        channels.info(name)
    except NotFound:
        channels.create("taobao", name, settings=settings)
    else:  # a new session (the sandbox starts afresh each time): store it sealed
        from flask import current_app

        sealed = TaobaoConnector.prepare_settings(settings, current_app.config["SECRET_KEY"])
        channels.update_settings(name, sealed)
    info = channels.info(name)
    connector = build_connector(info)
    assert connector is not None
    try:
        remote = list(connector.fetch_stock(None))
    finally:
        connector.close()
    bound = 0
    for row in remote:
        if not row.sku_code:
            continue
        try:
            channels.link(
                name,
                row.sku_code,
                external_item_id=row.external_item_id,
                external_sku_id=row.external_sku_id or None,
            )
        except NotFound:
            continue  # an outer id that is not one of our SKU codes: map it in the admin
        bound += 1
    stock_sync.mark_channel_dirty(name)
    run_channel_job(info.id, "push_stock", [])
    click.echo(f"linked {name}: {bound} SKU(s) bound by outer id, stock published")


def register(app: Flask) -> None:
    from examples.host_site.demo_crm import seed_crm, subscribe_webhook
    from examples.host_site.demo_sales import seed_sales

    app.cli.add_command(seed_crm)
    app.cli.add_command(seed_sales)
    app.cli.add_command(subscribe_webhook)
    app.cli.add_command(init_db)
    app.cli.add_command(seed_users)
    app.cli.add_command(link_taobao)
