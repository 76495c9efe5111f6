"""HTTP views for cadres."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import cadres

from .auth import json_body, requires, services

bp = Blueprint("cadres", __name__)


@bp.post("/cadres")
@requires("org_dept")
def create() -> Any:
    return jsonify(cadres.create_cadre(services(), g.actor, json_body())), 201


@bp.get("/cadres")
@requires()
def index() -> Any:
    return jsonify(cadres.list_cadres(services(), g.actor))


@bp.get("/cadres/<cadre_id>")
@requires()
def show(cadre_id: str) -> Any:
    return jsonify(cadres.get_cadre(services(), g.actor, cadre_id))


@bp.patch("/cadres/<cadre_id>")
@requires("org_dept")
def update(cadre_id: str) -> Any:
    return jsonify(cadres.update_cadre(services(), g.actor, cadre_id, json_body()))
