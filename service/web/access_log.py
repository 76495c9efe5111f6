"""The access log page (discipline_head, admin): who read which case or cadre record, newest first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from service.usecases import access_log
from service.usecases.views import MAX_ID

from .access import actor, area_required, services
from .views import arg, int_arg, plain_int, query_without

bp = Blueprint("access_log_pages", __name__)


@bp.get("/access-log")
@area_required("access_log")
def index() -> Any:
    case_id = plain_int(arg("case_id") or "")
    known = case_id is not None and case_id <= MAX_ID  # else no filter, as before
    filters = {"case_id": case_id if known else None,
               "cadre_id": arg("cadre_id"), "username": arg("username"), "page": int_arg("page", 1)}
    page = access_log.read_log(services(), actor(), filters)
    return render_template("access_log.html", page=page, filters=filters, query=query_without("page"))
