"""``flask koudai sandbox wechat`` and ``... weibo``: the social sandboxes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app

from koudai_flask.cli_support import fail
from koudai_flask.connectors.sandbox.cli import _write_secret, sandbox_cli, serve_until_stopped


def _sandbox_secret(name: str, filename: str, length: int = 16) -> tuple[Path, str]:
    """A secret kept in the sandbox's instance folder across restarts (mode 0600)."""
    import secrets

    folder = Path(current_app.instance_path) / "koudai-sandbox" / name
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / filename
    if not stored.exists():
        _write_secret(stored, secrets.token_hex(length))
    return folder, stored.read_text(encoding="utf-8").strip()


@sandbox_cli.command("wechat")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
def wechat_sandbox(port: int) -> None:
    """Serve the WeChat Official Account API: tokens, template and customer-service messages.

    The app secret and the server token are kept in the instance folder; the KOUDAI_WECHAT
    settings are written next to them, mode 0600. Push messages to the shop's
    <hooks prefix>/wechat/oa with connectors.sandbox.wechat_push.OAPusher.
    """
    from koudai_flask.connectors.sandbox.wechat import WechatSandbox

    folder, secret = _sandbox_secret("wechat", "secret")
    _, token = _sandbox_secret("wechat", "token", 12)
    try:
        sandbox = WechatSandbox(secret=secret, port=port)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port")
    settings_file = folder / "koudai_wechat.json"
    _write_secret(settings_file, json.dumps(sandbox.settings_for_client(token=token), indent=2))
    click.echo(f"WeChat Official Account sandbox API on {sandbox.url}")
    click.echo(f"Settings for the shop app (the secret and token included) are in {settings_file}:")
    click.echo(f'  KOUDAI_WECHAT = json.load(open("{settings_file}"))')
    click.echo("Press Ctrl+C to stop.")
    serve_until_stopped(sandbox, "WeChat sandbox")


@sandbox_cli.command("weibo")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--search", is_flag=True, help="Also serve the commercial keyword search.")
def weibo_sandbox(port: int, search: bool) -> None:
    """Serve the Weibo API of a brand account: mentions, comments (and keyword search).

    Its page lets you post a mention. The access token is kept in the instance folder; the
    KOUDAI_WEIBO settings are written next to it, mode 0600.
    """
    from koudai_flask.connectors.sandbox.weibo import WeiboSandbox

    folder, token = _sandbox_secret("weibo", "access_token")
    try:
        sandbox = WeiboSandbox(access_token=token, port=port, search=search)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port")
    settings_file = folder / "koudai_weibo.json"
    _write_secret(settings_file, json.dumps(sandbox.settings_for_client(), indent=2))
    click.echo(f"Weibo sandbox on {sandbox.url} (post mentions from its page)")
    click.echo(f"Settings for the shop app (the token included) are in {settings_file}:")
    click.echo(f'  KOUDAI_WEIBO = json.load(open("{settings_file}"))')
    click.echo("Press Ctrl+C to stop.")
    serve_until_stopped(sandbox, "Weibo sandbox")
