"""The inspectors' dashboard: aggregates from the reports use case, drawn by Chart.js in the browser."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, render_template, request

from service.labels import label
from service.usecases import early_warning, reports

from .access import actor, area_required, services
from .views import arg, date_arg

bp = Blueprint("dashboard", __name__)
HISTORY_DAYS = 91  # the watch list chart's period unless the form asks for another: about three months


@bp.get("/dashboard")
@area_required("dashboard")
def index() -> Any:
    data = reports.dashboard(services(), actor())
    data["overdue_by_role"] = [{**row, "name": label("role", row["role"])} for row in data["overdue_by_role"]]
    return render_template("dashboard.html", data=data)


@bp.get("/watchlist")
@area_required("watchlist")
def watchlist() -> Any:
    """The early-warning watch list (PROCESSES.md §10), by unit, each cadre linking to its ledgers; above it
    the list over time, drawn by Chart.js (all units or one; the last HISTORY_DAYS days unless the form
    names a period: an emptied `from` means since the first scan)."""
    since = date_arg("from") if "from" in request.args else services().today() - timedelta(days=HISTORY_DAYS)
    history = early_warning.watch_history(services(), actor(), since, date_arg("to"), arg("unit"))
    return render_template("watchlist.html", data=early_warning.watchlist(services(), actor()), history=history)
