"""HTTP views for cases and messages: parse, call one use case, render."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from service.printing import pdf_response
from service.usecases import cases, documents, messages, versions

from .auth import json_body, requires, services
from .params import api_page, choice_arg, date_arg, flag_arg, int_arg, int_field, text_arg

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
               "created_from": date_arg("created_from"), "created_to": date_arg("created_to"),
               "q": text_arg("q"), "page": int_arg("page", 1), "per_page": int_arg("per_page", 50, maximum=500)}
    return jsonify(api_page(cases.list_cases(services(), g.actor, filters, what="case_list")))


@bp.get("/cases/<int(max=2147483647):case_id>")
@requires()
def show(case_id: int) -> Any:
    return jsonify(cases.get_case(services(), g.actor, case_id))


@bp.get("/cases/<int(max=2147483647):case_id>/history")
@requires()
def history(case_id: int) -> Any:
    return jsonify(cases.case_history(services(), g.actor, case_id))


@bp.get("/cases/<int(max=2147483647):case_id>/diagram")
@requires()
def diagram(case_id: int) -> Any:
    return jsonify(cases.case_diagram(services(), g.actor, case_id))


@bp.get("/cases/<int(max=2147483647):case_id>/documents")
@requires()
def documents_index(case_id: int) -> Any:
    return jsonify(documents.list_documents(services(), g.actor, case_id))


@bp.get("/cases/<int(max=2147483647):case_id>/documents/<kind>.pdf")
@requires()
def document(case_id: int, kind: str) -> Any:
    return pdf_response(documents.document(services(), g.actor, case_id, kind))


@bp.post("/cases/<int(max=2147483647):case_id>/cancel")
@requires()
def cancel(case_id: int) -> Any:
    return jsonify(cases.cancel_case(services(), g.actor, case_id, json_body({"reason"}).get("reason")))


@bp.post("/cases/<int(max=2147483647):case_id>/migrate")
@requires()
def migrate(case_id: int) -> Any:
    body = json_body({"to_version"}) if request.get_data() else {}
    report = versions.migrate_case(services(), g.actor, case_id, int_field(body, "to_version"), flag_arg("dry_run"))
    return jsonify(report)


@bp.post("/cases/<int(max=2147483647):case_id>/retry")
@requires()
def retry(case_id: int) -> Any:
    return jsonify(versions.retry_case(services(), g.actor, case_id))


@bp.post("/messages")
@requires()
def message() -> Any:
    body = json_body({"name", "case_id", "data"})
    if body.get("case_id") is None:  # a message start event: the message opens a case
        opened = messages.start_by_message(services(), g.actor, body.get("name"), body.get("data"))
        return jsonify({"case_id": opened[0], "case_ids": opened}), 201
    messages.deliver_message(services(), g.actor, body.get("name"), body.get("case_id"), body.get("data"))
    return jsonify({"accepted": True}), 202


@bp.post("/signals")
@requires()
def signal() -> Any:
    body = json_body({"name", "data"})
    return jsonify({"delivered": messages.send_signal(services(), g.actor, body.get("name"), body.get("data"))}), 202
