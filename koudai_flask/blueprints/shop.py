"""The mobile shop: the ``koudai_shop`` blueprint."""

from __future__ import annotations

import os

from flask import Blueprint, abort, current_app, render_template, send_from_directory
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from koudai_flask.errors import NotFound
from koudai_flask.models import Category, StockLevel
from koudai_flask.services import catalog
from koudai_flask.services.transaction import current_session


def media_folder() -> str:
    folder = current_app.config["KOUDAI_MEDIA_FOLDER"]
    return folder or os.path.join(current_app.instance_path, "koudai-media")


def create_shop_blueprint(name: str = "koudai_shop") -> Blueprint:
    bp = Blueprint(name, __name__)

    @bp.get("/")
    def index() -> ResponseReturnValue:
        session = current_session()
        categories = session.scalars(select(Category).order_by(Category.position)).all()
        featured = catalog.active_products(featured=True, limit=6)
        newest = catalog.active_products(limit=current_app.config["KOUDAI_PAGE_SIZE"])
        return render_template(
            "koudai/shop/index.html", categories=categories, featured=featured, newest=newest
        )

    @bp.get("/products/<slug>")
    def product(slug: str) -> ResponseReturnValue:
        try:
            row = catalog.get_product(current_session(), slug)
        except NotFound:
            abort(404)
        if row.status != "active":
            abort(404)
        stock = {
            level.sku_id: level.available
            for level in current_session().scalars(
                select(StockLevel).where(StockLevel.sku_id.in_([s.id for s in row.skus]))
            )
        }
        return render_template("koudai/shop/product.html", product=row, stock=stock)

    @bp.get("/media/<path:filename>")
    def media(filename: str) -> ResponseReturnValue:
        return send_from_directory(media_folder(), filename, max_age=86400)

    return bp
