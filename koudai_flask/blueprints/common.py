"""What every koudai page needs: the base template name, money formatting, error pages."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app


def format_fen(amount: int | None) -> str:
    """Integer fen to a price for people: 1999 -> ¥19.99."""
    if amount is None:
        return ""
    sign = "-" if amount < 0 else ""
    yuan, fen = divmod(abs(int(amount)), 100)
    return f"{sign}¥{yuan:,}.{fen:02d}"


def install_template_globals(app: Flask) -> None:
    from flask_wtf.csrf import generate_csrf

    app.add_template_filter(format_fen, "fen")
    # Our forms carry a CSRF token whether or not the host enabled CSRFProtect.
    app.add_template_global(generate_csrf, "koudai_csrf_token")

    @app.context_processor
    def koudai_context() -> dict[str, Any]:
        return {
            "koudai_shop_base_template": current_app.config["KOUDAI_SHOP_BASE_TEMPLATE"],
            "koudai_admin_base_template": current_app.config["KOUDAI_ADMIN_BASE_TEMPLATE"],
            "koudai_shop_name": current_app.config["KOUDAI_SHOP_NAME"],
        }
