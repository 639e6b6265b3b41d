"""The shop's chrome (bar, footer, tab bar): its links and words, made once, read per page.

Every shop page shows the same dozen links and words. Building a link with ``url_for`` or
translating a word in a template (a call Jinja makes slowly) costs more than the rest of
the chrome; the links depend only on the site and the blueprint, the words only on the
language, so both are made once and kept (the product page's words too). Shop templates
also get a ``url_for`` that remembers what it built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from flask import url_for
from flask.globals import request_ctx

_URLS = "koudai_shop_urls"  # app.extensions key of the URLs shop templates built
_MAX_URLS = 4096


def _site(ctx: Any) -> tuple[Any, ...] | None:
    """What a URL built in this request depends on besides its endpoint and values.

    The blueprint (for relative endpoints) and what the request says of the site: host,
    port, scheme and script root. None when the app has URL defaults or build-error
    handlers: either may read anything, so nothing built there is remembered.
    """
    app = ctx.app
    if any(app.url_default_functions.values()) or app.url_build_error_handlers:
        return None
    environ = ctx.request.environ
    return (
        ctx.request.blueprint,
        environ.get("HTTP_HOST"),
        environ.get("SERVER_NAME"),
        environ.get("SERVER_PORT"),
        environ.get("SCRIPT_NAME"),
        environ.get("wsgi.url_scheme"),
    )


def _remembered(app: Any) -> dict[Any, Any]:
    urls: dict[Any, Any] = app.extensions.setdefault(_URLS, {})
    if len(urls) >= _MAX_URLS:
        urls.clear()
    return urls


def cached_url_for(endpoint: str, **values: Any) -> str:
    """``url_for`` for the shop's templates, remembering every URL it built for the site.

    A shop page builds links that are the same on every request; the key is the endpoint,
    its values and the request's site (see ``_site``). Special arguments (``_external``,
    ``_anchor``...) and unhashable values go to ``url_for`` every time.
    """
    ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
    site = _site(ctx)
    if site is None or any(name[:1] == "_" for name in values):
        return url_for(endpoint, **values)
    key = (site, endpoint, tuple(values.items()))
    urls = _remembered(ctx.app)
    try:
        return str(urls[key])
    except KeyError:
        pass
    except TypeError:  # an unhashable value, such as a list of query values
        return url_for(endpoint, **values)
    built = urls[key] = url_for(endpoint, **values)
    return built


class ShopLinks(NamedTuple):
    """Where the shop's chrome and buy form link to, in this request's blueprint and site."""

    home: str  # .index
    search: str
    all_products: str
    cart_page: str
    my_orders: str
    cart_add: str
    login: str
    register_account: str
    logout: str
    stylesheet: str
    script: str
    product_prefix: str  # + a quoted slug: a product page
    media_prefix: str  # + a quoted media path: an image


_LINKS: list[tuple[str, dict[str, Any]]] = [
    (".index", {}),
    (".search", {}),
    (".all_products", {}),
    (".cart_page", {}),
    (".my_orders", {}),
    (".cart_add", {}),
    (".login", {}),
    (".register_account", {}),
    (".logout", {}),
    ("koudai.static", {"filename": "koudai.css"}),
    ("koudai.static", {"filename": "koudai.js"}),
    (".product", {"slug": "~"}),  # prefixes: built with a placeholder, which is cut off
    (".media", {"filename": "~"}),
]
_PREFIXES = 2  # the last links of _LINKS are prefixes


def _build_links() -> ShopLinks:
    built = [url_for(endpoint, **values) for endpoint, values in _LINKS]
    prefixes = [url[:-1] for url in built[-_PREFIXES:]]
    return ShopLinks(*built[:-_PREFIXES], *prefixes)


def shop_links() -> ShopLinks:
    """The chrome's links, built once per blueprint and site: a page reads them, not builds."""
    ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
    site = _site(ctx)
    if site is None:
        return _build_links()
    urls = _remembered(ctx.app)
    links: ShopLinks | None = urls.get(site)
    if links is None:
        links = urls[site] = _build_links()
    return links


class ShopText(NamedTuple):
    """The words of the chrome and of the product page (the busiest) in one language."""

    search_products: str
    log_out: str
    log_in: str
    register: str
    shop: str
    home: str
    all_products: str
    cart: str
    my_orders: str
    colour: str
    size: str
    choose: str
    sold_out: str
    only_n_left: str  # with %(n)d
    in_stock: str
    quantity: str
    add_to_cart: str
    details: str


def _translate(_k: Callable[[str], str]) -> ShopText:
    # Written as _k("...") calls so that the message extraction finds every word.
    return ShopText(
        search_products=_k("Search products"),
        log_out=_k("Log out"),
        log_in=_k("Log in"),
        register=_k("Register"),
        shop=_k("Shop"),
        home=_k("Home"),
        all_products=_k("All products"),
        cart=_k("Cart"),
        my_orders=_k("My orders"),
        colour=_k("Colour"),
        size=_k("Size"),
        choose=_k("Choose"),
        sold_out=_k("Sold out"),
        only_n_left=_k("Only %(n)d left"),
        in_stock=_k("In stock"),
        quantity=_k("Quantity"),
        add_to_cart=_k("Add to cart"),
        details=_k("Details"),
    )


_TEXTS: dict[int, tuple[Any, ShopText]] = {}  # id(catalog) -> (catalog, its words)


def shop_text(translations: Any, gettext: Callable[[str], str]) -> ShopText:
    """The shop's words from ``translations`` (a catalog Flask-Babel keeps for good)."""
    known = _TEXTS.get(id(translations))
    if known is None or known[0] is not translations:
        known = _TEXTS[id(translations)] = (translations, _translate(gettext))
    return known[1]
