"""The JSON API under /api: blueprints and the one place errors become statuses."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
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
    TooLarge,
    TooManyAttempts,
    Unauthorized,
    Unavailable,
)
from service.inputs import refuse_nul_in_json

UNAVAILABLE_RETRY_SECONDS = 2  # a restarting database or store: worth one more try a moment later
STATUS = {BadRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409, Invalid: 422,
          TooLarge: 413, TooManyAttempts: 429, Unavailable: 503}


def status_of(error: ServiceError) -> int:
    """The HTTP status of a use-case error (the most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(error: ServiceError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields:
        body["fields"] = error.fields
    if isinstance(error, DeploymentRejected):
        body["errors"] = error.errors
    if isinstance(error, CaseIncident):
        body.update(element_id=error.element_id, line=error.line)
    return {"error": body}


def error_headers(error: ServiceError) -> dict[str, str]:
    """Headers an error answer needs: when to try again after a 429, or a 503 (something down for a moment)."""
    if isinstance(error, TooManyAttempts):
        return {"Retry-After": str(error.retry_after)}
    return {"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)} if isinstance(error, Unavailable) else {}


def parse_json(raw: bytes) -> Any:
    """Decode a request body as JSON that is safe to store and echo (not too deep, no NaN, no lone
    surrogates); 400 otherwise, and 422 naming the field for a NUL character (service/inputs.py). Both the
    API and the public portal read their bodies so."""
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
        text = json.dumps(body, ensure_ascii=False)
        text.encode("utf-8")
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON (请求体不是有效的 JSON)") from None
    except UnicodeEncodeError:
        raise BadRequest("the body contains invalid Unicode (请求体含有无效的 Unicode 字符)") from None
    if "\\u0000" in text:  # cheap, and rarely true: only then is the body walked
        refuse_nul_in_json(body)
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def is_api_path(path: str) -> bool:
    """JSON answers: the API, and the public portal's JSON under /public (no cookies, so no CSRF)."""
    return path in ("/api", "/public") or path.startswith(("/api/", "/public/"))


def _api_headers(response: Response) -> Response:
    """JSON answers are never sniffed as something else, nor kept by browsers or proxies (they are confidential)."""
    if is_api_path(request.path):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
    return response


def register_api(app: Flask) -> None:
    from . import (
        absence,
        access_log,
        account_log,
        auth,
        cadres,
        cases,
        casework,
        cycle,
        disclosures,
        docs,
        health,
        notifications,
        processes,
        roles,
        tasks,
        users,
    )

    for module in (absence, access_log, account_log, auth, cadres, cases, casework, cycle, processes, tasks, users,
                   roles, notifications, disclosures, docs, health):
        app.register_blueprint(module.bp, url_prefix="/api")
    app.register_blueprint(disclosures.public, url_prefix="/public")
    app.after_request(_api_headers)

    @app.errorhandler(ServiceError)
    def _service_error(error: ServiceError) -> ResponseReturnValue:
        return jsonify(error_body(error)), status_of(error), error_headers(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> ResponseReturnValue:
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": error.description}}), error.code or 500
