"""Blueprint factories. Hosts with ``KOUDAI_REGISTER_BLUEPRINTS = False`` register them:

app.register_blueprint(create_shop_blueprint(), url_prefix="/store")
app.register_blueprint(create_shop_blueprint(), url_prefix="/m", name="mobile_shop")
"""

from __future__ import annotations

from flask import Blueprint

from koudai_flask.blueprints.admin import create_admin_blueprint
from koudai_flask.blueprints.api import create_api_blueprint
from koudai_flask.blueprints.hooks import create_hooks_blueprint
from koudai_flask.blueprints.shop import create_shop_blueprint


def assets_blueprint() -> Blueprint:
    """Carries our templates and static files; always registered, has no other routes.

    The app's own template folder is searched before any blueprint's, so a host template
    named ``koudai/...`` wins over ours.
    """
    return Blueprint(
        "koudai",
        __name__,
        template_folder="../templates",
        static_folder="../static/koudai",
    )


__all__ = [
    "assets_blueprint",
    "create_admin_blueprint",
    "create_api_blueprint",
    "create_hooks_blueprint",
    "create_shop_blueprint",
]
