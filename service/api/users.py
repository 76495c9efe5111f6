"""HTTP views for user accounts (admin): list, create, change roles, activity or password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import users

from .auth import json_body, requires, services

bp = Blueprint("users", __name__)


@bp.get("/users")
@requires("admin")
def index() -> Any:
    return jsonify(users.list_users(services(), g.actor))


@bp.post("/users")
@requires("admin")
def create() -> Any:
    body = json_body({"username", "password", "roles"})
    return jsonify(users.add_user(services(), g.actor, body.get("username"), body.get("password"),
                                  body.get("roles"))), 201


@bp.patch("/users/<username>")
@requires("admin")
def update(username: str) -> Any:
    body = json_body({"roles", "active", "password", "email", "mail_digest"})
    return jsonify(users.update_user(services(), g.actor, username, **body))
