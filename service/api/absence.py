"""HTTP views for the caller's own absence (out of office) and who stands in meanwhile."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import absence

from .auth import json_body, requires, services

bp = Blueprint("absence", __name__)


@bp.get("/me/substitute")
@requires()
def show() -> Any:
    return jsonify(absence.my_absence(services(), g.actor))


@bp.put("/me/substitute")
@requires()
def set_substitute() -> Any:
    body = json_body({"username", "from", "until"})
    return jsonify(absence.set_substitute(services(), g.actor, body.get("username"), body.get("from"),
                                          body.get("until")))


@bp.delete("/me/substitute")
@requires()
def end() -> Any:
    absence.end_absence(services(), g.actor)
    return "", 204
