"""The inspectors' case pages: the tracker with its CSV export, one case's file, starting a case."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from service.api.casework import download_response
from service.errors import Conflict, Invalid
from service.labels import OUTCOMES, label
from service.printing import pdf_response
from service.usecases import attachments, cases, comments, documents, lookups, tracker

from .access import action_required, actor, area_required, services
from .deliberate import deliberate_read, deliberate_search
from .forms import fields_of, form_errors, parse_submission
from .views import (
    arg,
    date_arg,
    first_sending,
    flag,
    int_arg,
    query_without,
    run_and_flash,
    run_and_flash_once,
    sending_refused_gives_back,
)

# The labels of the case page's forms (case.html), for the refusals flashed above them.
CANCEL_LABELS = {"reason": _l("撤销理由")}
ATTACH_LABELS = {"file": _l("上传附件（PDF、图片、Office 文档或文本）")}
COMMENT_LABELS = {"text": _l("发表意见")}

bp = Blueprint("case_pages", __name__)
PER_PAGE = 20


def _filters() -> dict[str, Any]:
    return {"process": arg("process"), "status": arg("status", cases.CASE_STATUSES), "outcome": arg("outcome"),
            "cadre_id": arg("cadre"), "overdue": flag("overdue"), "created_from": date_arg("from"),
            "created_to": date_arg("to"), "q": arg("q"), "page": int_arg("page", 1), "per_page": PER_PAGE}


@bp.get("/cases")
@deliberate_search
@area_required("cases")
def index() -> Any:
    page = tracker.tracker_page(services(), actor(), _filters())
    return render_template("tracker.html", page=page, outcomes=OUTCOMES, statuses=cases.CASE_STATUSES,
                           query=query_without("page"))


@bp.get("/cases.csv")
@deliberate_search
@area_required("cases")
def export() -> Any:
    content = tracker.cases_csv(services(), actor(), _filters(), label=label)
    return Response(content, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="cadreflow-cases.csv"'})


@bp.get("/cases/<int(max=2147483647):case_id>")
@deliberate_read
@login_required
def show(case_id: int) -> Any:
    return render_template("case.html", file=tracker.case_file(services(), actor(), case_id))


@bp.get("/cases/<int(max=2147483647):case_id>/documents/<kind>.pdf")
@deliberate_read
@login_required
def document(case_id: int, kind: str) -> Any:
    return pdf_response(documents.document(services(), actor(), case_id, kind))


@bp.post("/cases/<int(max=2147483647):case_id>/cancel")
@action_required("case.cancel")
def cancel(case_id: int) -> Any:
    run_and_flash(lambda: cases.cancel_case(services(), actor(), case_id, request.form.get("reason", "").strip()),
                  _("案件已撤销。"), CANCEL_LABELS)
    return redirect(url_for("case_pages.show", case_id=case_id))


@bp.post("/cases/<int(max=2147483647):case_id>/attachments")
@login_required
def attach(case_id: int) -> Any:
    upload = request.files.get("file")
    content = upload.read(int(services().settings["MAX_ATTACHMENT_BYTES"]) + 1) if upload else None
    run_and_flash_once(lambda: attachments.add_attachment(services(), actor(), case_id, upload and upload.filename,
                                                          content), _("附件已上传。"), ATTACH_LABELS)
    return redirect(url_for("case_pages.show", case_id=case_id) + "#attachments-title")


@bp.get("/attachments/<int(max=2147483647):attachment_id>")
@deliberate_read
@login_required
def download(attachment_id: int) -> Any:
    return download_response(*attachments.read_attachment(services(), actor(), attachment_id))


@bp.post("/cases/<int(max=2147483647):case_id>/comments")
@login_required
def comment(case_id: int) -> Any:
    run_and_flash_once(lambda: comments.add_comment(services(), actor(), case_id, request.form.get("text", "")),
                       _("意见已发表。"), COMMENT_LABELS)
    return redirect(url_for("case_pages.show", case_id=case_id) + "#comments-title")


@bp.route("/cases/new", methods=["GET", "POST"])
@area_required("start")
def new() -> Any:
    chosen = request.values.get("process")
    options = lookups.start_options(services(), actor(), chosen, request.form.get("cadre_id") or None)
    if options["form"] is None and (request.method == "POST" or chosen):  # never a silent reload
        message = _("请选择要发起的流程。") if not chosen else _("没有此流程，或您的角色不能发起它。")
        return _start_page(options, request.form, {"process": message}), 422
    if request.method == "GET":
        return _start_page(options)
    data = parse_submission(options["form"], request.form)
    if not first_sending():  # a double click or a resend: the first post started (or is starting) the case
        flash(_("此表单已提交过，未重复发起案件。"), "info")
        return redirect(url_for("case_pages.new"), 303)
    try:
        with sending_refused_gives_back():  # refused otherwise (403, 404): raised on, nothing started
            case = cases.start_case(services(), actor(), options["process"], request.form.get("cadre_id"), data)
    except Invalid as error:
        return _start_page(options, request.form, error.fields or {"_form": error.message}), 422
    except Conflict as error:  # a start rule's refusal (e.g. a second open review) or a failed first step
        return _start_page(options, request.form, error.fields or {"_form": error.message}), 409
    if not cases.may_read(services(), actor(), case["id"]):  # handed to the roles of its lanes: nothing of its course
        flash(_("已发起案件 #%(id)s，已交由承办部门办理（您不在其办理范围内，无法查看）。", id=case["id"]), "success")
        return redirect(url_for("case_pages.new"))
    if case["status"] == "completed":  # e.g. an ineligible cadre: the case ended at once; say so, and why
        flash(_("案件 #%(id)s 已发起，但随即结束：%(outcome)s。原因见案件页。", id=case["id"],
                outcome=label("outcome", case["outcome"])), "error")
    else:
        flash(_("已发起案件 #%(id)s。", id=case["id"]), "success")
    return redirect(url_for("case_pages.show", case_id=case["id"]))


def _start_page(options: dict[str, Any], values: Any = None, errors: dict[str, str] | None = None) -> str:
    form = options["form"] or {}
    return render_template("case_new.html", options=options, errors=errors or {},
                           fields=fields_of(form, values, errors, skip=("cadre_id",)),
                           form_errors=form_errors({k: v for k, v in (errors or {}).items()
                                                    if k not in ("cadre_id", "process")}, form),
                           cadre_value=(values or {}).get("cadre_id", ""),
                           cadre_chosen=dict(options["cadres"]).get((values or {}).get("cadre_id", ""), ""))
