"""HTTP views for roles and who may start each process (admin): roles are data, not settings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import roles

from .auth import json_body, requires, services

bp = Blueprint("roles", __name__)


@bp.get("/roles")
@requires("admin")
def index() -> Any:
    return jsonify(roles.list_roles(services(), g.actor))


@bp.post("/roles")
@requires("admin")
def create() -> Any:
    body = json_body({"code", "name_zh", "name_en", "head_role"})
    return jsonify(roles.create_role(services(), g.actor, body.get("code"), body.get("name_zh"), body.get("name_en"),
                                     body.get("head_role"))), 201


@bp.put("/roles/<code>")
@requires("admin")
def update(code: str) -> Any:
    return jsonify(roles.update_role(services(), g.actor, code, **json_body({"name_zh", "name_en", "head_role"})))


@bp.get("/processes/<key>/starters")
@requires("admin")
def starters(key: str) -> Any:
    return jsonify(roles.get_starters(services(), g.actor, key))


@bp.put("/processes/<key>/starters")
@requires("admin")
def set_starters(key: str) -> Any:
    return jsonify(roles.set_starters(services(), g.actor, key, json_body({"roles"}).get("roles")))
