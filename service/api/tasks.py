"""HTTP views for tasks: the inbox, claim, unclaim, complete, reassign, extend, return."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import tasks, taskwork

from .auth import json_body, requires, services
from .params import MAX_ID, flag_arg, int_arg, text_arg

bp = Blueprint("tasks", __name__)


@bp.get("/tasks")
@requires()
def inbox() -> Any:
    filters = {"case_id": int_arg("case_id", maximum=MAX_ID), "process": text_arg("process"),
               "overdue": flag_arg("overdue"), "held": flag_arg("held"),
               "page": int_arg("page", 1), "per_page": int_arg("per_page", maximum=500)}
    return jsonify(tasks.list_tasks(services(), g.actor, filters))


@bp.get("/tasks/<task_id>")
@requires()
def show(task_id: str) -> Any:
    return jsonify(tasks.get_task(services(), g.actor, task_id))


@bp.post("/tasks/<task_id>/claim")
@requires()
def claim(task_id: str) -> Any:
    return jsonify(tasks.claim_task(services(), g.actor, task_id))


@bp.post("/tasks/<task_id>/unclaim")
@requires()
def unclaim(task_id: str) -> Any:
    return jsonify(tasks.unclaim_task(services(), g.actor, task_id))


@bp.post("/tasks/<task_id>/complete")
@requires()
def complete(task_id: str) -> Any:
    return jsonify(tasks.complete_task(services(), g.actor, task_id, json_body({"data"}).get("data", {})))


@bp.post("/tasks/<task_id>/assign")
@requires()
def assign(task_id: str) -> Any:
    return jsonify(taskwork.assign_task(services(), g.actor, task_id, json_body({"username"}).get("username")))


@bp.post("/tasks/<task_id>/extend")
@requires()
def extend(task_id: str) -> Any:
    body = json_body({"until", "reason"})
    return jsonify(taskwork.extend_task(services(), g.actor, task_id, body.get("until"), body.get("reason")))


@bp.post("/tasks/<task_id>/return")
@requires()
def send_back(task_id: str) -> Any:
    return jsonify(taskwork.return_task(services(), g.actor, task_id, json_body({"reason"}).get("reason")))
