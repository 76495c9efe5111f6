"""The JSON API under /api: blueprints and the one place errors become statuses."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from service.errors import (
    BadRequest,
    CaseIncident,
    Conflict,
    DeploymentRejected,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Unauthorized,
)

STATUS = {BadRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409, Invalid: 422}


def status_of(error: ServiceError) -> int:
    """The HTTP status of a use-case error (the most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(error: ServiceError) -> dict:
    body = {"code": error.code, "message": error.message}
    if error.fields:
        body["fields"] = error.fields
    if isinstance(error, DeploymentRejected):
        body["errors"] = error.errors
    if isinstance(error, CaseIncident):
        body.update(element_id=error.element_id, line=error.line)
    return {"error": body}


def register_api(app: Flask) -> None:
    from . import auth, cadres, cases, cycle, processes, tasks

    for module in (auth, cadres, cases, cycle, processes, tasks):
        app.register_blueprint(module.bp, url_prefix="/api")

    @app.errorhandler(ServiceError)
    def _service_error(error: ServiceError):  # noqa: ANN202 - Flask handler
        return jsonify(error_body(error)), status_of(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):  # noqa: ANN202 - Flask handler
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": error.description}}), error.code
