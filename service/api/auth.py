"""Token authentication and role checks for the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user

from service import services_of
from service.api import is_api_path, parse_json
from service.errors import BadRequest, Forbidden, Invalid, Unauthorized
from service.portal import bound_body, bounded, signing_key
from service.usecases import devices, logins, users
from service.usecases.context import Actor, Services

from . import idempotency

bp = Blueprint("auth", __name__)


def services() -> Services:
    return services_of(current_app)


def json_body(allowed: set[str] | None = None) -> dict[str, Any]:
    """The request's JSON object (400 for anything else); with `allowed`, unknown keys are a 422."""
    if not request.is_json:
        raise BadRequest("send JSON with Content-Type: application/json (请以 JSON 格式提交)")
    body = parse_json(request.get_data())
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object (请求体必须是 JSON 对象)")
    unknown = sorted(set(body) - allowed) if allowed is not None else []
    if unknown:
        raise Invalid("unknown fields (未知字段)", {name: "未知字段 (unknown field)" for name in unknown})
    return body


def current_actor() -> Actor:
    """The caller of the bearer token (kept in `g.token`), or 401."""
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        raise Unauthorized("log in first: Authorization: Bearer <token> (请先登录)")
    actor = token_holder()
    if actor is None:
        raise Unauthorized("the token is invalid or expired (令牌无效或已过期)")
    return actor


def token_holder() -> Actor | None:
    """Who holds the request's bearer token (None: no token, or one that is invalid or expired), asked once per
    request: the check that bounds strangers' bodies asks before the view does."""
    if "token_holder" not in g:
        header = request.headers.get("Authorization", "")
        g.token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else ""
        g.token_holder = logins.actor_for_token(services(), g.token) if g.token else None
    holder: Actor | None = g.token_holder
    return holder


def bound_strangers() -> None:
    """Before anything reads a body (the pages' CSRF check, the NUL check, a view): a request from nobody
    logged in may send no more than the public portal's PUBLIC_MAX_BODY (413), whatever route it names; only a
    signed-in caller may send an attachment's or a process's size."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    signed_in = token_holder() is not None if is_api_path(request.path) else current_user.is_authenticated
    if not signed_in:
        bound_body()


def client_address() -> str:
    """The caller's address (from X-Forwarded-For only behind TRUSTED_PROXIES proxies)."""
    return request.remote_addr or ""


def requires(*roles: str) -> Callable[..., Any]:
    """Authenticate the caller; with roles, also require one of them (admin always passes)."""
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.actor = current_actor()
            if roles and not g.actor.has_any(*roles):
                raise Forbidden(f"needs one of the roles {', '.join(roles)} (需要角色 {', '.join(roles)})")
            if not g.actor.roles and not reads_a_record():
                raise Forbidden("your account has no role (账户没有任何角色)")
            if idempotency.wanted():  # a POST with an Idempotency-Key: carried out once, its answer replayed
                return idempotency.run_once(view, *args, **kwargs)
            return view(*args, **kwargs)
        return wrapper
    return decorate


RECORD_ARGS = frozenset({"case_id", "task_id", "cadre_id", "attachment_id"})


def reads_a_record() -> bool:
    """Whether the request reads a case, task, cadre or file named in its path: for an account with no role the
    read policy answers it, a 404 like an unknown id's, since a 403 there would tell a record from a guess."""
    return request.method in ("GET", "HEAD") and not RECORD_ARGS.isdisjoint(request.view_args or {})


@bp.post("/auth/token")
@bounded  # no login yet: bounded like the public portal
def token() -> Any:
    body = json_body({"username", "password", "device"})
    device = devices.Device(body.get("device"), signing_key())
    return jsonify(logins.issue_token(services(), body.get("username"), body.get("password"), client_address(),
                                      device))


@bp.delete("/auth/token")
def logout() -> Any:
    """Log out: the calling token ends at once (no role needed, so an account without one can end its token)."""
    current_actor()
    logins.end_token(services(), g.token)
    return "", 204


@bp.post("/auth/password")
def password() -> Any:
    """Change one's own password: the token of this call stays valid, every other token and session ends."""
    actor = current_actor()  # no role needed to change one's own password
    body = json_body({"old_password", "new_password"})
    users.change_password(services(), actor, body.get("old_password"), body.get("new_password"),
                          keep=g.token, address=client_address())
    return "", 204


@bp.get("/auth/me")
@requires()
def me() -> Any:
    return jsonify({"username": g.actor.username, "roles": sorted(g.actor.roles)})
