"""``flask koudai sandbox ...``: serve a protocol-faithful local gateway on 127.0.0.1.

Each command prints the settings a shop app needs to talk to its sandbox; secrets go to
files under the instance folder (mode 0600), never to the terminal.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from koudai_flask.cli_support import fail

sandbox_cli = AppGroup("sandbox", help="Local stand-ins for remote gateways (loopback only).")


def _write_secret(path: Path, text: str) -> None:
    # Created 0600 from the start, so the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _kept_keys(name: str, keys_class: Any) -> tuple[Path, Any]:
    """The sandbox's folder in the instance, and its test keys: kept across restarts."""
    from dataclasses import asdict

    folder = Path(current_app.instance_path) / "koudai-sandbox" / name
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "sandbox_keys.json"
    if stored.exists():
        return folder, keys_class(**json.loads(stored.read_text(encoding="utf-8")))
    keys = keys_class.generate()
    _write_secret(stored, json.dumps(asdict(keys), indent=2))
    return folder, keys


# -- alipay ----------------------------------------------------------------------------------


@sandbox_cli.command("alipay")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
def alipay_sandbox(port: int) -> None:
    """Serve an Alipay gateway: wap/page pay cashier, notify, query, close, refund.

    Its keys are kept in the instance folder across restarts (delete the folder for new
    ones); the KOUDAI_ALIPAY settings are written next to them.
    """
    from koudai_flask.connectors.sandbox.alipay import AlipaySandbox, SandboxKeys

    folder, keys = _kept_keys("alipay", SandboxKeys)
    try:
        sandbox = AlipaySandbox(keys).start(port, quiet=False)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port")
    settings: dict[str, Any] = keys.settings_for_client(sandbox.url)
    _write_secret(folder / "app_private_key.pem", keys.app_private_key)
    (folder / "alipay_public_key.pem").write_text(keys.alipay_public_key, encoding="utf-8")
    settings_file = folder / "koudai_alipay.json"
    _write_secret(settings_file, json.dumps(settings, indent=2))
    click.echo(f"Alipay sandbox gateway on {sandbox.url}")
    click.echo(f"  app_id     {keys.app_id}")
    click.echo(f"  seller_id  {keys.seller_id}")
    click.echo(f"  app private key     {folder / 'app_private_key.pem'}")
    click.echo(f"  alipay public key   {folder / 'alipay_public_key.pem'}")
    click.echo(f"Settings for the shop app (the private key included) are in {settings_file}:")
    click.echo(f'  KOUDAI_ALIPAY = json.load(open("{settings_file}"))')
    click.echo("Press Ctrl+C to stop.")
    serve_until_stopped(sandbox, "Alipay sandbox")


# -- wechatpay -------------------------------------------------------------------------------


def _wait_for_ctrl_c() -> None:
    # Short sleeps rather than one wait on a lock: Python runs the SIGINT handler on the main
    # thread when it next runs bytecode, so Ctrl+C is answered within 0.2 s whichever of the
    # server's threads the signal lands on.
    while True:
        time.sleep(0.2)


def serve_until_stopped(sandbox: Any, label: str) -> None:
    """Keep a started sandbox serving until Ctrl+C, then stop it and say so."""
    try:
        _wait_for_ctrl_c()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    click.echo(f"{label} stopped.")


@sandbox_cli.command("wechatpay")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
def wechatpay_sandbox(port: int) -> None:
    """Serve a WeChat Pay API v3 gateway: JSAPI/H5 orders, cashier, notify, query, close, refund.

    Its keys are kept in the instance folder across restarts (delete the folder for new
    ones); the KOUDAI_WECHATPAY settings are written next to them.
    """
    from koudai_flask.connectors.sandbox.wechatpay import SandboxKeys, WechatPaySandbox

    folder, keys = _kept_keys("wechatpay", SandboxKeys)
    try:
        sandbox = WechatPaySandbox(keys, port=port)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port")
    _write_secret(folder / "apiclient_key.pem", keys.merchant_private_key_pem)
    (folder / "pub_key.pem").write_text(keys.platform_public_key_pem, encoding="utf-8")
    settings_file = folder / "koudai_wechatpay.json"
    _write_secret(settings_file, json.dumps(sandbox.settings_for_client(), indent=2))
    click.echo(f"WeChat Pay sandbox gateway on {sandbox.url}")
    click.echo(f"  mchid               {keys.mchid}")
    click.echo(f"  appid               {keys.appid}")
    click.echo(f"  merchant_serial_no  {keys.merchant_serial_no}")
    click.echo(f"  merchant private key      {folder / 'apiclient_key.pem'}")
    click.echo(f"  {keys.platform_serial}  {folder / 'pub_key.pem'}")
    click.echo(f"Settings for the shop app (the secrets included) are in {settings_file}:")
    click.echo(f'  KOUDAI_WECHATPAY = json.load(open("{settings_file}"))')
    click.echo("Press Ctrl+C to stop.")
    serve_until_stopped(sandbox, "WeChat Pay sandbox")


# -- kuaidi100 -------------------------------------------------------------------------------


@sandbox_cli.command("kuaidi100")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--callback-url", required=True, help="The shop's <hooks prefix>/kuaidi100/callback.")
@click.option(
    "--journey-interval",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between the tracking steps pushed for every subscribed parcel.",
)
def kuaidi100_sandbox(port: int, callback_url: str, journey_interval: float) -> None:
    """Serve Kuaidi100 (query, subscribe) and push each parcel's journey to the shop.

    The KOUDAI_KUAIDI100 settings (with a salt kept across restarts) are written to the
    instance folder.
    """
    import secrets

    from koudai_flask.connectors.sandbox.kuaidi100 import Kuaidi100Sandbox

    folder = Path(current_app.instance_path) / "koudai-sandbox" / "kuaidi100"
    folder.mkdir(parents=True, exist_ok=True)
    salt_file = folder / "salt"
    if not salt_file.exists():
        _write_secret(salt_file, secrets.token_hex(16))
    salt = salt_file.read_text(encoding="utf-8").strip()
    sandbox = Kuaidi100Sandbox(journey_interval=journey_interval)
    try:
        sandbox.start(port)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port")
    settings_file = folder / "koudai_kuaidi100.json"
    _write_secret(
        settings_file,
        json.dumps(sandbox.settings(callback_url=callback_url, salt=salt), indent=2),
    )
    click.echo(
        f"Kuaidi100 sandbox on {sandbox.url}; parcels travel one step every {journey_interval:g} s"
    )
    click.echo(f"Settings for the shop app are in {settings_file}")
    click.echo("Press Ctrl+C to stop.")
    serve_until_stopped(sandbox, "Kuaidi100 sandbox")


# -- taobao ----------------------------------------------------------------------------------


@sandbox_cli.command("taobao")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--seed", is_flag=True, help="Start with a few demo items (with SKUs and stock).")
@click.option(
    "--mirror-shop",
    is_flag=True,
    help="Start with one item per product of this shop, its SKU codes as outer ids (stock 0).",
)
def taobao_sandbox(port: int, seed: bool, mirror_shop: bool) -> None:
    """Serve a Taobao TOP gateway: items, stock, trades, TMC, offline shipping, OAuth.

    The app key and secret are kept in the instance folder across restarts; the settings
    (the secret and a fresh seller session included) are written next to them, mode 0600.
    """
    from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox

    folder = Path(current_app.instance_path) / "koudai-sandbox" / "taobao"
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "sandbox_app.json"
    if stored.exists():
        app = json.loads(stored.read_text(encoding="utf-8"))
    else:
        import secrets

        app_key = str(23000000 + secrets.randbelow(999999))
        app = {"app_key": app_key, "secret": secrets.token_hex(16)}
        _write_secret(stored, json.dumps(app, indent=2))
    try:
        sandbox = TaobaoSandbox(port=port, app_key=app["app_key"], app_secret=app["secret"])
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port")
    if seed:
        sandbox.seed_demo()
    if mirror_shop:
        click.echo(f"mirrored {_mirror_shop(sandbox)} product(s) of this shop as Taobao items")
    grant = sandbox.issue_session()
    settings_file = folder / "koudai_taobao.json"
    _write_secret(
        settings_file, json.dumps(sandbox.settings_for_client(grant.access_token), indent=2)
    )
    click.echo(f"Taobao TOP sandbox gateway on {sandbox.gateway_url}")
    click.echo(f"  app_key     {sandbox.app_key}")
    click.echo(f"  OAuth       {sandbox.oauth_base}/authorize  and  {sandbox.oauth_base}/token")
    click.echo(f"  stock page  {sandbox.url}/")
    click.echo("Settings for the shop app (the secret and a session included) are in")
    click.echo(f"  {settings_file}")
    click.echo("Press Ctrl+C to stop.")
    serve_until_stopped(sandbox, "Taobao sandbox")


def _mirror_shop(sandbox: Any) -> int:
    """One Taobao item per active product: a SKU per variant, our SKU code as its outer id.

    TOP's ``properties_name`` needs numeric property and value ids; the sandbox numbers
    each option name and value in the order it meets them.
    """
    from sqlalchemy import select

    from koudai_flask.extension import get_state
    from koudai_flask.models import Product

    ids: dict[str, int] = {}

    def number(key: str, base: int) -> int:
        return ids.setdefault(key, base + len(ids))

    session = get_state().session
    products = session.scalars(select(Product).where(Product.status == "active")).all()
    for product in products:
        skus = [sku for sku in product.skus if sku.active]
        if not skus:
            continue
        price = f"{min(sku.price for sku in skus) / 100:.2f}"
        if len(skus) == 1 and not skus[0].attributes:
            sandbox.add_item(product.title, price, 0, outer_id=skus[0].code)
            continue
        sandbox.add_item(
            product.title,
            price,
            outer_id=product.slug,
            skus=[
                {
                    "properties_name": ";".join(
                        f"{number(name, 20000)}:{number(name + '=' + str(value), 30000)}:"
                        f"{name}:{value}"
                        for name, value in sku.attributes.items()
                    ),
                    "quantity": 0,
                    "outer_id": sku.code,
                    "price": f"{sku.price / 100:.2f}",
                }
                for sku in skus
            ],
        )
    session.rollback()
    return len(products)


# -- jushuitan -------------------------------------------------------------------------------


@sandbox_cli.command("jushuitan")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--seed", is_flag=True, help="Start with a few demo SKUs in stock.")
def jushuitan_sandbox(port: int, seed: bool) -> None:
    """Serve a Jushuitan (聚水潭) open platform v2: inventory, order upload, logistics, tokens.

    The app key and secret are kept in the instance folder across restarts; the settings
    (the secret and a fresh token pair included) are written next to them, mode 0600.
    """
    import secrets

    from koudai_flask.connectors.sandbox.jushuitan import JushuitanSandbox

    folder = Path(current_app.instance_path) / "koudai-sandbox" / "jushuitan"
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "sandbox_app.json"
    if stored.exists():
        app = json.loads(stored.read_text(encoding="utf-8"))
    else:
        app = {"app_key": secrets.token_hex(16), "secret": secrets.token_hex(16)}
        _write_secret(stored, json.dumps(app, indent=2))
    try:
        sandbox = JushuitanSandbox(port=port, app_key=app["app_key"], app_secret=app["secret"])
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port")
    if seed:
        sandbox.seed_demo()
    settings_file = folder / "koudai_jushuitan.json"
    _write_secret(settings_file, json.dumps(sandbox.settings_for_client(), indent=2))
    click.echo(f"Jushuitan open platform sandbox on {sandbox.url}")
    click.echo(f"  app_key     {sandbox.app_key}")
    click.echo(f"  shop_id     {sandbox.shop_id}")
    click.echo(f"  stock page  {sandbox.url}/")
    click.echo("Settings for the shop app (the secret and a token pair included) are in")
    click.echo(f"  {settings_file}")
    click.echo("Press Ctrl+C to stop.")
    serve_until_stopped(sandbox, "Jushuitan sandbox")


# -- webhook-erp -----------------------------------------------------------------------------


@sandbox_cli.command("webhook-erp")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--shop-hooks", required=True, help="The shop's hooks URL, e.g. .../shop-hooks.")
@click.option("--channel", default="erp", show_default=True, help="The webhook_erp channel.")
@click.option("--ship-after", type=float, help="Ship each received order after N seconds.")
def webhook_erp_sandbox(port: int, shop_hooks: str, channel: str, ship_after: float | None) -> None:
    """Serve an in-house ERP: it takes signed order events and sends stock and parcels back.

    The shared secret is kept in the instance folder across restarts; the channel settings
    (order_url and the secret) are written next to it, mode 0600.
    """
    import secrets
    from urllib.parse import urlsplit

    from koudai_flask.connectors.sandbox.webhook_erp import LOOPBACK_HOSTS, WebhookErpSandbox

    if urlsplit(shop_hooks).hostname not in LOOPBACK_HOSTS:
        fail("--shop-hooks must be a loopback URL (127.0.0.1, ::1 or localhost)")
    folder = Path(current_app.instance_path) / "koudai-sandbox" / "webhook_erp"
    folder.mkdir(parents=True, exist_ok=True)
    secret_file = folder / "secret"
    if not secret_file.exists():
        _write_secret(secret_file, secrets.token_hex(24))
    hook_url = f"{shop_hooks.rstrip('/')}/erp/{channel}"
    try:
        sandbox = WebhookErpSandbox(
            secret=secret_file.read_text(encoding="utf-8").strip(),
            port=port,
            hook_url=hook_url,
            ship_after=ship_after,
        )
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port")
    settings_file = folder / "channel_settings.json"
    _write_secret(settings_file, json.dumps(sandbox.settings_for_client(), indent=2))
    click.echo(f"In-house ERP sandbox on {sandbox.url}: orders arrive at {sandbox.url}/orders")
    click.echo(f"  it sends stock and shipments to {hook_url}/stock and .../shipment")
    click.echo(f"Settings of the {channel!r} channel (the secret included) are in {settings_file}:")
    click.echo(f'  channels.create("webhook_erp", "{channel}", settings=json.load(open(...)))')
    click.echo(f"Send counts: curl -d '{{\"counts\": [...]}}' {sandbox.url}/control/stock")
    click.echo("Press Ctrl+C to stop.")
    serve_until_stopped(sandbox, "Webhook ERP sandbox")


# The social sandboxes (wechat, weibo) register their commands on sandbox_cli.
from koudai_flask.connectors.sandbox import cli_social  # noqa: E402, F401
