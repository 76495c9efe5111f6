"""The discipline roles' pages for public reports: the triage inbox and a report's file."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from service.usecases import portal
from service.web.access import actor, area_required
from service.web.deliberate import deliberate_read
from service.web.views import int_arg

from . import no_store, services

bp = Blueprint("portal_staff", __name__, template_folder="templates")
bp.after_request(no_store)  # reporters' names and contacts, whoever asks and whatever the answer


@bp.get("/reports")
@area_required("reports")
def index() -> Any:
    return render_template("portal/staff_inbox.html", **portal.triage_inbox(services(), actor(), int_arg("page", 1)))


@bp.get("/reports/<int(max=2147483647):case_id>")
@deliberate_read
@area_required("reports")
def show(case_id: int) -> Any:
    return render_template("portal/staff_report.html", report=portal.report_file(services(), actor(), case_id))
