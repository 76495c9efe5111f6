"""HTTP views for the management cycle: the rotation scan, learning records, personal-matters reports."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from service.errors import BadRequest
from service.usecases import bulk, early_warning, learning, personal_reports, rotation

from .auth import json_body, requires, services
from .params import MAX_ID, date_arg, int_arg, parse_date, text_arg

bp = Blueprint("cycle", __name__)


@bp.post("/rotation-scan")
@requires()
def rotation_scan() -> Any:
    body = json_body({"on"}) if request.get_data() else {}
    opened = rotation.rotation_scan(services(), g.actor, parse_date("on", body.get("on")))
    return jsonify({"opened": opened}), 201 if opened else 200


@bp.post("/early-warning-scan")
@requires()
def early_warning_scan() -> Any:
    body = json_body({"on"}) if request.get_data() else {}
    result = early_warning.scan(services(), g.actor, parse_date("on", body.get("on")))
    return jsonify(result), 201 if result["opened"] else 200


@bp.get("/watchlist")
@requires()
def watchlist() -> Any:
    return jsonify(early_warning.watchlist(services(), g.actor))


@bp.get("/watchlist/history")
@requires()
def watch_history() -> Any:
    return jsonify(early_warning.watch_history(services(), g.actor, date_arg("from"), date_arg("to"),
                                               text_arg("unit")))


@bp.post("/bulk-starts")
@requires()
def bulk_start() -> Any:
    body = json_body({"process", "data", "filter", "dedupe"})
    job = bulk.create_job(services(), g.actor, body.get("process"), body.get("data"), body.get("filter"),
                          body.get("dedupe", bulk.OPEN))
    return jsonify(job), 202


@bp.get("/bulk-starts/<int(max=2147483647):job_id>")
@requires()
def bulk_start_progress(job_id: int) -> Any:
    return jsonify(bulk.get_job(services(), g.actor, job_id))


@bp.post("/bulk-starts/<int(max=2147483647):job_id>/cancel")
@requires()
def bulk_start_cancel(job_id: int) -> Any:
    return jsonify(bulk.cancel_job(services(), g.actor, job_id))


@bp.post("/cadres/<cadre_id>/learning")
@requires()
def add_learning(cadre_id: str) -> Any:
    return jsonify(learning.add_record(services(), g.actor, cadre_id, json_body())), 201


@bp.post("/cadres/<cadre_id>/reports")
@requires()
def add_personal_report(cadre_id: str) -> Any:
    return jsonify(personal_reports.add_report(services(), g.actor, cadre_id, json_body())), 201


@bp.patch("/cadres/<cadre_id>/reports/<int(max=2147483647):report_id>")
@requires()
def correct_personal_report(cadre_id: str, report_id: int) -> Any:
    base = int_arg("base_revision", minimum=0, maximum=MAX_ID)  # the report's revision it was corrected from
    return jsonify(personal_reports.correct_report(services(), g.actor, cadre_id, report_id, json_body(), base))


@bp.get("/cadres/<cadre_id>/learning")
@requires()
def list_learning(cadre_id: str) -> Any:
    return jsonify(learning.list_records(services(), g.actor, cadre_id, int_arg("year", minimum=1900, maximum=2200)))


@bp.post("/learning/import")
@requires()
def import_learning() -> Any:
    upload = next(iter(request.files.values()), None) if request.files else None
    raw = upload.read() if upload is not None else request.get_data()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the CSV must be UTF-8 (CSV 文件须为 UTF-8 编码)") from None
    return jsonify(learning.import_csv(services(), g.actor, text))
