"""The API's own description: docs/openapi.yaml as JSON, and a page that lists it (no login: it is not confidential)."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml
from flask import Blueprint, jsonify, render_template

from service.config import PROJECT_ROOT

bp = Blueprint("api_docs", __name__)
OPENAPI = PROJECT_ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")
PAGE_POLICY = "default-src 'self'; script-src 'none'; style-src 'self'; frame-ancestors 'none'"


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api endpoint (docs/openapi.yaml, read once)."""
    document: dict[str, Any] = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return document


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation with its path, method and JSON body fields, in the document's order."""
    return [{"path": path, "method": method.upper(), "fields": body_fields(document, operation),
             "answers": answers(document, operation), **operation}
            for path, item in document["paths"].items() for method, operation in item.items() if method in METHODS]


def answers(document: dict[str, Any], operation: dict[str, Any]) -> list[tuple[str, str]]:
    """(status, description) of each response, shared responses looked up."""
    shared = document["components"]["responses"]
    return [(status, (shared[answer["$ref"].rsplit("/", 1)[-1]] if "$ref" in answer else answer)["description"])
            for status, answer in operation["responses"].items()]


def body_fields(document: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    """The fields of an operation's JSON body, required ones marked with *."""
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    required = set(schema.get("required", []))
    return [name + ("*" if name in required else "") for name in schema.get("properties", {})]


def by_tag(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations grouped under the document's tags, for the page."""
    every = operations(document)
    return [{**tag, "operations": [op for op in every if tag["name"] in op.get("tags", [])]}
            for tag in document.get("tags", [])]


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


@bp.get("/docs")
def page() -> Any:
    document = openapi_document()
    html = render_template("api_docs.html", info=document["info"], groups=by_tag(document))
    return html, {"Content-Security-Policy": PAGE_POLICY}
