"""The app factory: the site's own pages and accounts, plus koudai mounted at /shop.

Settings come from ``create_app(config)``, else from the environment:
``HOST_SITE_DATABASE_URL`` (default: SQLite ``instance/demo.db``), ``HOST_SITE_SECRET_KEY``
(default: a random key kept in the instance folder) and ``HOST_SITE_INSTANCE_PATH``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError

from examples.host_site import commands
from examples.host_site.blueprints import auth, main
from examples.host_site.extensions import csrf, db, login_manager
from examples.host_site.models import User
from koudai_flask import Koudai

SHOP_NAME = "山茶小铺 Camellia Store"
SITE_FOLDER = os.path.dirname(os.path.abspath(__file__))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    # Flask would put the instance folder beside the top-level package (the repository
    # root); the site keeps its own, beside this file.
    instance_path = os.environ.get("HOST_SITE_INSTANCE_PATH") or os.path.join(
        SITE_FOLDER, "instance"
    )
    app = Flask(__name__, instance_path=os.path.abspath(instance_path))
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=os.environ.get("HOST_SITE_DATABASE_URL"),
        SECRET_KEY=os.environ.get("HOST_SITE_SECRET_KEY"),
        SITE_NAME=SHOP_NAME,
        # koudai: our shop name, and every koudai page drawn inside this site's layout.
        KOUDAI_SHOP_NAME=SHOP_NAME,
        KOUDAI_SHOP_BASE_TEMPLATE="shop_frame.html",
        KOUDAI_ADMIN_BASE_TEMPLATE="shop_frame.html",
        # Webhooks on, and allowed to reach receivers on this machine (a demo, not production).
        KOUDAI_WEBHOOKS=True,
        KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True,
    )
    if os.environ.get("HOST_SITE_PAYMENT_SANDBOXES") == "1":
        app.config.update(_sandbox_payment_settings(app.instance_path))
        # Buyers are told by text message; the demo's provider only logs (phone masked).
        app.config["KOUDAI_SMS"] = {"provider": "log"}
        # Back-in-stock alerts go by the WeChat sandbox's template, checked every 5 seconds.
        from examples.host_site.demo_crm import DEMO_STOCK_TEMPLATE_ID

        app.config["KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE"] = DEMO_STOCK_TEMPLATE_ID
        app.config["KOUDAI_STOCK_ALERT_INTERVAL"] = 5
        # The linked Taobao sandbox's messages are pulled every second, without Redis.
        app.config["KOUDAI_INLINE_SCHEDULE"] = "thread"
        app.config["KOUDAI_SYNC_INTERVAL"] = 1
    if config:
        app.config.update(config)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        os.makedirs(app.instance_path, exist_ok=True)
        path = os.path.join(app.instance_path, "demo.db")
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret_key(app)

    db.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录。 Please sign in first."
    csrf.init_app(app)

    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    Koudai(app, db=db)
    # Payment and logistics callbacks are signed by their senders, and API calls carry an
    # API key: neither comes from our forms, so neither can carry our CSRF token.
    csrf.exempt(app.blueprints["koudai_hooks"])
    csrf.exempt(app.blueprints["koudai_api"])

    app.register_error_handler(CSRFError, _csrf_failed)
    commands.register(app)
    return app


def _sandbox_payment_settings(instance_path: str) -> dict[str, Any]:
    """Payment, tracking and WeChat settings written by the demo's sandboxes."""
    found: dict[str, Any] = {}
    for key, name in (
        ("KOUDAI_WECHATPAY", "wechatpay/koudai_wechatpay.json"),
        ("KOUDAI_ALIPAY", "alipay/koudai_alipay.json"),
        ("KOUDAI_KUAIDI100", "kuaidi100/koudai_kuaidi100.json"),
        # The WeChat Official Account sandbox: campaigns' template messages go there.
        ("KOUDAI_WECHAT", "wechat/koudai_wechat.json"),
    ):
        path = os.path.join(instance_path, "koudai-sandbox", name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                found[key] = json.load(handle)
    return found


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except ValueError:
        return None


def _csrf_failed(error: CSRFError) -> ResponseReturnValue:
    return render_template("csrf_error.html", reason=error.description), 400


def _instance_secret_key(app: Flask) -> str:
    """A random key made on first start and kept, so sessions survive a restart."""
    path = os.path.join(app.instance_path, "secret_key")
    os.makedirs(app.instance_path, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made by an earlier start (or by a process started at the same moment)
    else:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32))
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()
