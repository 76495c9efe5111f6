"""HTTP views for the management cycle: the rotation scan and learning records."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from service.errors import BadRequest
from service.usecases import learning, rotation

from .auth import json_body, requires, services
from .params import int_arg, parse_date

bp = Blueprint("cycle", __name__)


@bp.post("/rotation-scan")
@requires("org_dept")
def rotation_scan() -> Any:
    body = json_body({"on"}) if request.get_data() else {}
    opened = rotation.rotation_scan(services(), g.actor, parse_date("on", body.get("on")))
    return jsonify({"opened": opened}), 201 if opened else 200


@bp.post("/cadres/<cadre_id>/learning")
@requires("org_dept")
def add_learning(cadre_id: str) -> Any:
    return jsonify(learning.add_record(services(), g.actor, cadre_id, json_body())), 201


@bp.get("/cadres/<cadre_id>/learning")
@requires()
def list_learning(cadre_id: str) -> Any:
    return jsonify(learning.list_records(services(), g.actor, cadre_id, int_arg("year", minimum=1900, maximum=2200)))


@bp.post("/learning/import")
@requires("org_dept")
def import_learning() -> Any:
    upload = next(iter(request.files.values()), None) if request.files else None
    raw = upload.read() if upload is not None else request.get_data()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the CSV must be UTF-8 (CSV 文件须为 UTF-8 编码)") from None
    return jsonify(learning.import_csv(services(), g.actor, text))
