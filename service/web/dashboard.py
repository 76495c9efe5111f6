"""The inspectors' dashboard: aggregates from the reports use case, drawn by Chart.js in the browser."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from service.usecases import reports

from .access import actor, area_required, services
from .labels import label

bp = Blueprint("dashboard", __name__)


@bp.get("/dashboard")
@area_required("dashboard")
def index() -> Any:
    data = reports.dashboard(services(), actor())
    data["overdue_by_role"] = [{**row, "name": label("role", row["role"])} for row in data["overdue_by_role"]]
    return render_template("dashboard.html", data=data)
