"""Inbound callbacks (payments, logistics, channels): the ``koudai_hooks`` blueprint.

Every endpoint added here verifies the caller's signature before it changes anything.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue


def create_hooks_blueprint(name: str = "koudai_hooks") -> Blueprint:
    bp = Blueprint(name, __name__)

    @bp.get("/health")
    def health() -> ResponseReturnValue:
        return jsonify({"ok": True})

    from koudai_flask import payments

    payments.register_routes(bp)

    return bp
