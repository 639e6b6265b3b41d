"""What every koudai page needs: the base template name, money formatting, error pages."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, request, url_for


def format_fen(amount: int | None) -> str:
    """Integer fen to a price for people: 1999 -> ¥19.99."""
    if amount is None:
        return ""
    sign = "-" if amount < 0 else ""
    yuan, fen = divmod(abs(int(amount)), 100)
    return f"{sign}¥{yuan:,}.{fen:02d}"


def url_prefix(endpoint: str, argument: str) -> str:
    """``url_for(endpoint, **{argument: ""})`` once per request: a grid builds 100 links."""
    key = (request.blueprint, endpoint, argument)
    cache = g.setdefault("koudai_url_prefixes", {})
    if key not in cache:
        values: dict[str, Any] = {argument: "~"}
        cache[key] = url_for(endpoint, **values)[:-1]
    return cache[key]


def current_path() -> str:
    """This request's path and query, to come back to after a login ("/shop/cart", not
    Flask's "/shop/cart?" when there is no query)."""
    return request.full_path if request.query_string else request.path


def page_number() -> int:
    """``?page=N`` of this request, 1 when missing or not a number."""
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


SECRET_KEY_MISSING = (
    "koudai: this app has no SECRET_KEY. The shop and the back office sign their forms (CSRF)\n"
    "and their sessions with it, so no page of theirs can work without one.\n"
    "Set app.config['SECRET_KEY'] to a long random value kept out of the code, for example\n"
    "from an environment variable filled with: python -c 'import secrets; "
    "print(secrets.token_hex(32))'\n"
)


def secret_key_gate() -> Response | None:
    """Answer 500 saying what to set when the app has no SECRET_KEY, instead of failing deep
    inside the first form (a host may set the key after ``init_app``, so it is looked at
    per request, not at start)."""
    if current_app.secret_key:
        return None
    current_app.logger.error(SECRET_KEY_MISSING.splitlines()[0])
    return Response(SECRET_KEY_MISSING, status=500, mimetype="text/plain")


def install_template_globals(app: Flask) -> None:
    from flask_wtf.csrf import generate_csrf

    app.add_template_filter(format_fen, "fen")
    # Our forms carry a CSRF token whether or not the host enabled CSRFProtect.
    app.add_template_global(generate_csrf, "koudai_csrf_token")

    app.add_template_global(url_prefix, "koudai_url_prefix")

    @app.context_processor
    def koudai_context() -> dict[str, Any]:
        return {
            "koudai_shop_base_template": current_app.config["KOUDAI_SHOP_BASE_TEMPLATE"],
            "koudai_admin_base_template": current_app.config["KOUDAI_ADMIN_BASE_TEMPLATE"],
            "koudai_shop_name": current_app.config["KOUDAI_SHOP_NAME"],
        }
