"""HTTP views for cases and messages: parse, call one use case, render."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import cases, messages

from .auth import json_body, requires, services
from .params import choice_arg, flag_arg, int_arg, text_arg

bp = Blueprint("cases", __name__)


@bp.post("/cases")
@requires()
def start() -> Any:
    body = json_body({"process", "cadre_id", "data"})
    case = cases.start_case(services(), g.actor, body.get("process"), body.get("cadre_id"), body.get("data", {}))
    return jsonify(case), 201


@bp.get("/cases")
@requires()
def index() -> Any:
    filters = {"process": text_arg("process"), "status": choice_arg("status", cases.CASE_STATUSES),
               "cadre_id": text_arg("cadre_id"), "outcome": text_arg("outcome"), "overdue": flag_arg("overdue"),
               "page": int_arg("page", 1), "per_page": int_arg("per_page", 50, maximum=500)}
    return jsonify(cases.list_cases(services(), g.actor, filters))


@bp.get("/cases/<int:case_id>")
@requires()
def show(case_id: int) -> Any:
    return jsonify(cases.get_case(services(), g.actor, case_id))


@bp.get("/cases/<int:case_id>/history")
@requires()
def history(case_id: int) -> Any:
    return jsonify(cases.case_history(services(), g.actor, case_id))


@bp.get("/cases/<int:case_id>/diagram")
@requires()
def diagram(case_id: int) -> Any:
    return jsonify(cases.case_diagram(services(), g.actor, case_id))


@bp.post("/cases/<int:case_id>/cancel")
@requires("admin")
def cancel(case_id: int) -> Any:
    return jsonify(cases.cancel_case(services(), g.actor, case_id, json_body({"reason"}).get("reason")))


@bp.post("/messages")
@requires()
def message() -> Any:
    body = json_body({"name", "case_id", "data"})
    messages.deliver_message(services(), g.actor, body.get("name"), body.get("case_id"), body.get("data"))
    return jsonify({"accepted": True}), 202
