"""The three apps the storefront benchmark serves under gunicorn.

``koudai_app()`` is a minimal host site embedding koudai's shop; ``bare_app()`` serves the
same two pages with one raw SQL query each (psycopg, one connection per worker) and a
minimal Jinja template; ``hello_app()`` answers ``hello``. The benchmark starts each with
``gunicorn 'bench.storefront_apps:koudai_app()'`` and passes the database through the
environment: ``KOUDAI_BENCH_DATABASE_URL`` (a PostgreSQL URL), ``KOUDAI_BENCH_SCHEMA``
(the run's schema, put first on the search path) and ``KOUDAI_BENCH_SECRET_KEY``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg
from flask import Flask, abort, render_template
from flask.typing import ResponseReturnValue
from jinja2 import DictLoader
from sqlalchemy import make_url
from sqlalchemy.engine import URL

from koudai_flask import Koudai

ENV_URL = "KOUDAI_BENCH_DATABASE_URL"
ENV_SCHEMA = "KOUDAI_BENCH_SCHEMA"
ENV_SECRET = "KOUDAI_BENCH_SECRET_KEY"
PAGE_SIZE = 100  # one category page shows every product of the run
SHOP_PREFIX = "/shop"  # koudai's default KOUDAI_SHOP_URL_PREFIX; the bare app copies it


def _environ(name: str) -> str:
    try:
        return os.environ[name]
    except KeyError:
        raise RuntimeError(f"set {name} (bench/storefront.py sets it for the servers)") from None


def schema_url() -> URL:
    """The benchmark database with the run's schema first on the search path."""
    url = make_url(_environ(ENV_URL))
    return url.update_query_dict({"options": f"-csearch_path={_environ(ENV_SCHEMA)}"})


# -- koudai ----------------------------------------------------------------------------------


def koudai_app() -> Flask:
    """A host site whose only extension is koudai, on its own small engine."""
    app = Flask("koudai_storefront_bench")
    app.config.update(
        SECRET_KEY=_environ(ENV_SECRET),
        KOUDAI_DATABASE_URI=schema_url().render_as_string(hide_password=False),
        # A sync worker serves one request at a time: two connections are plenty.
        KOUDAI_ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 0},
        KOUDAI_PAGE_SIZE=PAGE_SIZE,
    )
    Koudai(app)
    return app


# -- bare ------------------------------------------------------------------------------------

CATEGORY_SQL = """
SELECT p.slug, p.title,
       (SELECT min(s.price) FROM koudai_sku s
         WHERE s.product_id = p.id AND s.active) AS price,
       (SELECT i.path FROM koudai_product_image i
         WHERE i.product_id = p.id ORDER BY i.position LIMIT 1) AS image
  FROM koudai_product p JOIN koudai_category c ON c.id = p.category_id
 WHERE c.slug = %s AND p.status = 'active'
 ORDER BY p.created_at DESC, p.id DESC
 LIMIT %s
"""

PRODUCT_SQL = """
SELECT p.title, p.description,
       ARRAY(SELECT i.path FROM koudai_product_image i
              WHERE i.product_id = p.id ORDER BY i.position) AS images,
       s.code, s.attributes, s.price, COALESCE(l.on_hand - l.reserved, 0) AS available
  FROM koudai_product p
  JOIN koudai_sku s ON s.product_id = p.id AND s.active
  LEFT JOIN koudai_stock_level l ON l.sku_id = s.id
   AND l.location_id = (SELECT id FROM koudai_location WHERE code = 'main')
 WHERE p.slug = %s AND p.status = 'active'
 ORDER BY s.id
"""

BARE_TEMPLATES = {
    "layout.html": """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %}</title></head>
<body>{% block body %}{% endblock %}</body></html>
""",
    "category.html": """{% extends "layout.html" %}
{% block title %}{{ slug }}{% endblock %}
{% block body %}<h1>{{ slug }}</h1>
<ul>{% for p in products %}
<li><a href="/shop/products/{{ p.slug }}">
{% if p.image %}<img src="/shop/media/{{ p.image }}" alt="{{ p.title }}" \
width="160" height="160">{% endif %}
<span>{{ p.title }}</span> <span>{{ p.price | fen }}</span></a></li>
{% endfor %}</ul>{% endblock %}
""",
    "product.html": """{% extends "layout.html" %}
{% block title %}{{ product.title }}{% endblock %}
{% block body %}<h1>{{ product.title }}</h1>
{% for path in product.images %}<img src="/shop/media/{{ path }}" alt="{{ product.title }}" \
width="375" height="375">{% endfor %}
<p>{{ product.description }}</p>
<ul>{% for sku in skus %}
<li data-sku="{{ sku.code }}">{{ sku.attributes.values() | join(" / ") }} {{ sku.price | fen }}
{% if sku.available > 0 %}{{ sku.available }} in stock{% else %}sold out{% endif %}</li>
{% endfor %}</ul>{% endblock %}
""",
}


def format_fen(amount: int | None) -> str:
    if amount is None:
        return ""
    yuan, fen = divmod(amount, 100)
    return f"¥{yuan}.{fen:02d}"


class Database:
    """One psycopg connection per worker process, opened on first use, reopened if lost."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.connection: psycopg.Connection[Any] | None = None
        self.lock = threading.Lock()

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self.lock:
            if self.connection is None or self.connection.closed:
                self.connection = psycopg.connect(self.conninfo, autocommit=True)
            return self.connection.execute(sql, params).fetchall()

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                self.connection.close()
                self.connection = None


def bare_app() -> Flask:
    """The floor: the same rows in one query per page, rendered by a minimal template."""
    app = Flask("bare_storefront_bench")
    app.jinja_loader = DictLoader(BARE_TEMPLATES)
    app.add_template_filter(format_fen, "fen")
    conninfo = schema_url().set(drivername="postgresql").render_as_string(hide_password=False)
    database = Database(conninfo)
    app.extensions["bench_database"] = database  # the benchmark times its queries in-process

    @app.get(f"{SHOP_PREFIX}/c/<slug>")
    def category(slug: str) -> ResponseReturnValue:
        rows = database.rows(CATEGORY_SQL, (slug, PAGE_SIZE))
        if not rows:
            abort(404)
        products = [{"slug": r[0], "title": r[1], "price": r[2], "image": r[3]} for r in rows]
        return render_template("category.html", slug=slug, products=products)

    @app.get(f"{SHOP_PREFIX}/products/<slug>")
    def product(slug: str) -> ResponseReturnValue:
        rows = database.rows(PRODUCT_SQL, (slug,))
        if not rows:
            abort(404)
        title, description, images = rows[0][:3]
        skus = [{"code": r[3], "attributes": r[4], "price": r[5], "available": r[6]} for r in rows]
        return render_template(
            "product.html",
            product={"title": title, "description": description, "images": images},
            skus=skus,
        )

    return app


# -- hello -----------------------------------------------------------------------------------


def hello_app() -> Flask:
    """The ceiling of one Flask request under these gunicorn settings."""
    app = Flask("hello_storefront_bench")

    @app.get("/")
    def hello() -> ResponseReturnValue:
        return "hello"

    return app
