"""The tea house "Mingqian" re-skins koudai's shop.

Two things make the brand: ``KOUDAI_SHOP_BASE_TEMPLATE`` points every shop page at
``brand/layout.html`` (the house's own document, fonts and footer), and
``templates/koudai/shop/product.html`` replaces koudai's product page with one that tells
the tea's story first. Every other page is koudai's, drawn inside the brand's layout.

Run it: ``flask --app examples.branded_store.app koudai db upgrade``, then
``flask --app examples.branded_store.app koudai demo seed`` and
``flask --app examples.branded_store.app run``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, redirect

from koudai_flask import Koudai


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.path.join(os.path.dirname(__file__), "instance"))
    app.config.update(
        SECRET_KEY=os.environ.get("BRANDED_STORE_SECRET_KEY", "change-me-in-production"),
        KOUDAI_SHOP_NAME="明前茶舍 Mingqian Tea",
        KOUDAI_PRIMARY_COLOR="#3b6b35",
        KOUDAI_SHOP_BASE_TEMPLATE="brand/layout.html",
        KOUDAI_SHOP_URL_PREFIX="/tea",
    )
    app.config.update(config or {})
    Koudai(app)

    @app.get("/")
    def home() -> Any:
        return redirect("/tea/")

    return app
