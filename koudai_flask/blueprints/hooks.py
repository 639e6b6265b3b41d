"""Inbound callbacks (payments, logistics, channels): the ``koudai_hooks`` blueprint.

Every endpoint added here verifies the caller's signature before it changes anything.
"""

from __future__ import annotations

import importlib

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

# Modules with a ``register_routes(bp)`` adding their signed callback endpoints.
HOOK_MODULES = (
    "koudai_flask.payments",
    "koudai_flask.connectors.logistics.views",
    "koudai_flask.connectors.erp.webhook_views",
    "koudai_flask.connectors.wechat.oa_views",
)


def create_hooks_blueprint(name: str = "koudai_hooks") -> Blueprint:
    bp = Blueprint(name, __name__)

    @bp.get("/health")
    def health() -> ResponseReturnValue:
        """The database, Redis (RQ jobs) and the outbox's backlog; 503 when a part is down."""
        from koudai_flask.jobs.health import report

        body, ok = report()
        return jsonify(body), 200 if ok else 503

    for module in HOOK_MODULES:
        importlib.import_module(module).register_routes(bp)

    return bp
