"""The portal's JSON under /public (docs/api.md § Public portal): no login, bounded, plain text."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from service.api import parse_json
from service.errors import BadRequest
from service.usecases import portal, public_posts

from . import admission, bound_body, services, signing_key

bp = Blueprint("public_api", __name__)
bp.before_request(bound_body)
POW_HEADER = "X-Proof-Of-Work"  # "<challenge>:<nonce>"; or pow_challenge / pow_nonce in the body
# A report's query key, out of the URL: proxies and their logs keep URLs, query strings included. `?key=` still
# works for old clients; when the header is sent it is the key, so one request is never two guesses.
KEY_HEADER = "X-Query-Key"


def _body() -> dict[str, Any]:
    # The API's parser: stored text must encode (no lone surrogates), and deep nesting is a 400, not a 500.
    body = parse_json(request.get_data()) if request.is_json else None
    if not isinstance(body, dict):
        raise BadRequest("a JSON object is required (请求体须为 JSON 对象)")
    return body


def _admission(body: dict[str, Any]) -> public_posts.Admission:
    header = request.headers.get(POW_HEADER, "")
    challenge, _, nonce = header.rpartition(":") if header else ("", "", "")
    return admission(body.pop("pow_challenge", challenge or None), body.pop("pow_nonce", nonce or None))


@bp.get("/challenge")
def challenge() -> Any:
    return jsonify(public_posts.challenge(services(), signing_key()))


@bp.post("/reports")
def submit_report() -> Any:
    body = _body()
    return jsonify(portal.submit_report(services(), body, _admission(body))), 201


@bp.get("/reports/<code>")
def track(code: str) -> Any:
    key = request.headers.get(KEY_HEADER) if KEY_HEADER in request.headers else request.args.get("key")
    return jsonify(portal.track(services(), code, key))


@bp.get("/notices")
def notices() -> Any:
    return jsonify(portal.notices(services()))


@bp.post("/notices/<int(max=2147483647):case_id>/objections")
def object_to_notice(case_id: int) -> Any:
    body = _body()
    return jsonify(portal.object_to_notice(services(), case_id, body, _admission(body))), 201
