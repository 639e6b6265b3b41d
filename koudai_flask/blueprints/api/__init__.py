"""The REST API: the ``koudai_api`` blueprint, built by :func:`create_api_blueprint`.

Views are flask-smorest views (marshmallow in, marshmallow out, documented as they are
declared) over the services. Every endpoint but the API's own description needs an API key
(``access``); its OpenAPI document is at ``<prefix>/openapi.json`` and readable at
``<prefix>/docs``, built for the name the blueprint was registered under, so a host may
mount it twice.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from koudai_flask.blueprints.api import (
    access,
    catalog_endpoints,
    channel_endpoints,
    customer_endpoints,
    order_endpoints,
    report_endpoints,
    review_endpoints,
    segment_endpoints,
    shipping_endpoints,
    stock_endpoints,
    tag_endpoints,
)
from koudai_flask.blueprints.api.access import SCOPES, public
from koudai_flask.blueprints.api.errors import error_response
from koudai_flask.blueprints.api.openapi import document
from koudai_flask.errors import KoudaiError
from koudai_flask.schemas.api_common import ApiRoot

ENDPOINT_MODULES = [
    catalog_endpoints,
    stock_endpoints,
    shipping_endpoints,
    order_endpoints,
    report_endpoints,
    review_endpoints,
    channel_endpoints,
    customer_endpoints,
    tag_endpoints,
    segment_endpoints,
]


def create_api_blueprint(name: str = "koudai_api") -> Blueprint:
    bp = Blueprint(name, __name__, description="koudai_flask open platform")

    @bp.route("/", methods=["GET"])
    @public
    @bp.response(200, ApiRoot)
    def root() -> ResponseReturnValue:
        """The API's name and version, and where its description is."""
        from koudai_flask import __version__

        here = f"{request.script_root}{request.path.rstrip('/')}"
        return {
            "name": "koudai_flask",
            "version": __version__,
            "openapi": f"{here}/openapi.json",
            "docs": f"{here}/docs",
        }

    @public
    def openapi_json() -> ResponseReturnValue:
        """This API's OpenAPI 3 document."""
        return jsonify(_document(bp))

    @public
    def docs() -> ResponseReturnValue:
        """This API's description as a page to read."""
        return render_template("koudai/api/docs.html", spec=_document(bp))

    # Not operations of the API itself: plain Flask rules, left out of the document.
    FlaskBlueprint.add_url_rule(bp, "/openapi.json", view_func=openapi_json)
    FlaskBlueprint.add_url_rule(bp, "/docs", view_func=docs)

    for module in ENDPOINT_MODULES:
        module.register(bp)

    bp.before_request(access.authenticate)
    bp.before_request(access.refuse_nul_characters)

    @bp.after_request
    def etag(response: Response) -> WerkzeugResponse:
        # A weak validator would do as well; ours is the hash of the exact body sent.
        if request.method == "GET" and response.status_code == 200 and response.is_json:
            response.add_etag()
            return response.make_conditional(request)
        return response

    @bp.errorhandler(KoudaiError)
    def koudai_error(exc: KoudaiError) -> ResponseReturnValue:
        return error_response(exc)

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        return error_response(exc)

    return bp


def _document(bp: Blueprint) -> dict[str, Any]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return document(app, bp, request.blueprint or bp.name)


__all__ = ["SCOPES", "create_api_blueprint"]
