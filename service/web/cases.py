"""The inspectors' case pages: the tracker with its CSV export, one case's file, starting a case."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from service.errors import Invalid
from service.usecases import cases, lookups, tracker

from .access import actor, area_required, services
from .forms import fields_of, form_errors, parse_submission
from .labels import OUTCOMES
from .views import arg, date_arg, flag, int_arg, query_without, run_and_flash

bp = Blueprint("case_pages", __name__)
PER_PAGE = 20


def _filters() -> dict[str, Any]:
    return {"process": arg("process"), "status": arg("status", cases.CASE_STATUSES), "outcome": arg("outcome"),
            "cadre_id": arg("cadre"), "overdue": flag("overdue"), "created_from": date_arg("from"),
            "created_to": date_arg("to"), "page": int_arg("page", 1), "per_page": PER_PAGE}


@bp.get("/cases")
@area_required("cases")
def index() -> Any:
    page = tracker.tracker_page(services(), actor(), _filters())
    return render_template("tracker.html", page=page, outcomes=OUTCOMES, statuses=cases.CASE_STATUSES,
                           query=query_without("page"))


@bp.get("/cases.csv")
@area_required("cases")
def export() -> Any:
    content = tracker.cases_csv(services(), actor(), _filters())
    return Response(content, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="cadreflow-cases.csv"'})


@bp.get("/cases/<int(max=9223372036854775807):case_id>")
@login_required
def show(case_id: int) -> Any:
    return render_template("case.html", file=tracker.case_file(services(), actor(), case_id))


@bp.post("/cases/<int(max=9223372036854775807):case_id>/cancel")
@area_required("admin")
def cancel(case_id: int) -> Any:
    run_and_flash(lambda: cases.cancel_case(services(), actor(), case_id, request.form.get("reason", "").strip()),
                  _("案件已撤销。"))
    return redirect(url_for("case_pages.show", case_id=case_id))


@bp.route("/cases/new", methods=["GET", "POST"])
@area_required("start")
def new() -> Any:
    options = lookups.start_options(services(), actor(), request.values.get("process"))
    if request.method == "GET" or options["form"] is None:
        return _start_page(options)
    data = parse_submission(options["form"], request.form)
    try:
        case = cases.start_case(services(), actor(), options["process"], request.form.get("cadre_id"), data)
    except Invalid as error:
        return _start_page(options, request.form, error.fields or {"_form": error.message}), 422
    flash(_("已发起案件 #%(id)s。", id=case["id"]), "success")
    return redirect(url_for("case_pages.show", case_id=case["id"]))


def _start_page(options: dict[str, Any], values: Any = None, errors: dict[str, str] | None = None) -> str:
    form = options["form"] or {}
    return render_template("case_new.html", options=options, errors=errors or {},
                           fields=fields_of(form, values, errors, skip=("cadre_id",)),
                           form_errors=form_errors({k: v for k, v in (errors or {}).items() if k != "cadre_id"},
                                                   form), cadre_value=(values or {}).get("cadre_id", ""))
