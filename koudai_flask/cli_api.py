"""``flask koudai api-key create|list|revoke``: the open platform's keys from the shell.

``create`` prints the key once, on its own line, so a script can capture it; only its
prefix and a hash are stored. Keys made here are audited as made by the system.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from koudai_flask.cli_support import one_line_errors

api_key_cli = AppGroup("api-key", help="API keys of the REST API.")


@api_key_cli.command("create")
@click.option("--owner", required=True, help="The staff member's user id the key acts as.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="A permission codename the key may use, e.g. orders.view (repeat).",
)
@click.option("--channel", "channels", multiple=True, help="Limit to this channel (repeat).")
@click.option("--name", default="cli", show_default=True, help="What the key is for.")
@one_line_errors
def api_key_create(
    owner: str, scopes: tuple[str, ...], channels: tuple[str, ...], name: str
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    from koudai_flask.services import api_keys

    created = api_keys.create(owner, name, list(scopes), channels=list(channels) or None)
    click.echo(created.token)
    click.echo(
        f"key {created.key.prefix} for staff {owner}: {', '.join(created.key.scopes)}"
        " (store it now: it is not shown again)",
        err=True,
    )


@api_key_cli.command("list")
@one_line_errors
def api_key_list() -> None:
    """Every key: prefix, owner, scopes, channels, last use, revoked."""
    from koudai_flask.services import api_keys

    for key in api_keys.all_keys():
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        channels = ",".join(key.channels) if key.channels is not None else "*"
        click.echo(
            f"{key.prefix}  {key.name}  owner={key.owner.user_id}  "
            f"scopes={','.join(key.scopes)}  channels={channels}  used={used}  {state}"
        )


@api_key_cli.command("revoke")
@click.argument("prefix")
@one_line_errors
def api_key_revoke(prefix: str) -> None:
    """Revoke the key with PREFIX (the part after ``kd_``); its next call is 401."""
    from koudai_flask.services import api_keys

    api_keys.revoke(prefix)
    click.echo(f"key {prefix} is revoked")


def register(koudai_cli: AppGroup) -> None:
    koudai_cli.add_command(api_key_cli)
