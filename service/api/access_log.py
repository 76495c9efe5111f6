"""HTTP view of the access log: who read which case or cadre record, and when."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import access_log

from .auth import requires, services
from .params import MAX_ID, api_page, int_arg, text_arg

bp = Blueprint("access_log", __name__)


@bp.get("/access-log")
@requires()
def index() -> Any:
    filters = {"case_id": int_arg("case_id", maximum=MAX_ID), "cadre_id": text_arg("cadre_id"),
               "username": text_arg("username"), "page": int_arg("page", 1),
               "per_page": int_arg("per_page", access_log.PER_PAGE, maximum=500)}
    return jsonify(api_page(access_log.read_log(services(), g.actor, filters)))
