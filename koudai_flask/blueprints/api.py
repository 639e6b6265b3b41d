"""The REST API: the ``koudai_api`` blueprint (the open platform fills it in)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from koudai_flask.errors import KoudaiError


def create_api_blueprint(name: str = "koudai_api") -> Blueprint:
    bp = Blueprint(name, __name__)

    @bp.get("/")
    def root() -> ResponseReturnValue:
        from koudai_flask import __version__

        return jsonify({"name": "koudai_flask", "version": __version__})

    @bp.errorhandler(KoudaiError)
    def koudai_error(exc: KoudaiError) -> ResponseReturnValue:
        body = {
            "code": type(exc).__name__,
            "message": exc.message,
            "errors": getattr(exc, "messages", {}),
        }
        return jsonify(body), exc.http_status

    return bp
