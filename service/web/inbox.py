"""The approvers' pages: the inbox, and a task with its case's context and its form."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from service.errors import CaseIncident, Conflict, Invalid
from service.usecases import inbox, tasks, taskwork

from .access import actor, area_required, services
from .deliberate import deliberate_read
from .disclosures import RATINGS
from .errors import TASK_TAKEN, render_error
from .forms import fields_of, form_errors, parse_submission
from .i18n import localize
from .views import arg, flag, int_arg, query_without, run_and_flash

# The labels of the task page's forms (task.html), for the refusals flashed above them.
ASSIGN_LABELS = {"username": _l("转交给")}
EXTEND_LABELS = {"until": _l("延长至（当日 24 时）"), "reason": _l("延期理由")}
RETURN_LABELS = {"reason": _l("退回理由")}

bp = Blueprint("inbox", __name__)


@bp.get("/inbox")
@area_required("inbox")
def index() -> Any:
    filters = {"process": arg("process"), "cadre_id": arg("cadre"), "due": arg("due", inbox.DUE_FILTERS),
               "mine": flag("mine"), "held": flag("held"), "sort": arg("sort", inbox.SORTS), "page": int_arg("page", 1)}
    return render_template("inbox.html", result=inbox.inbox(services(), actor(), filters), filters=filters,
                           query=query_without("page"))


@bp.get("/tasks/<task_id>")
@deliberate_read
@login_required
def show(task_id: str) -> Any:
    return _task_page(task_id)


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> Any:
    run_and_flash(lambda: tasks.claim_task(services(), actor(), task_id), _("已认领，其他人将不能办理此任务。"))
    return redirect(url_for("inbox.show", task_id=task_id))


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> Any:
    run_and_flash(lambda: tasks.unclaim_task(services(), actor(), task_id), _("已退回，任务回到角色待办中。"))
    return redirect(url_for("inbox.show", task_id=task_id))


@bp.post("/tasks/<task_id>/assign")
@login_required
def assign(task_id: str) -> Any:
    username = request.form.get("username", "").strip()
    run_and_flash(lambda: taskwork.assign_task(services(), actor(), task_id, username),
                  _("已转交给 %(name)s。", name=username), ASSIGN_LABELS)
    return redirect(url_for("inbox.show", task_id=task_id))


@bp.post("/tasks/<task_id>/extend")
@login_required
def extend(task_id: str) -> Any:
    form = request.form
    run_and_flash(lambda: taskwork.extend_task(services(), actor(), task_id, form.get("until", "").strip(),
                                               form.get("reason", "")), _("办理期限已延长。"), EXTEND_LABELS)
    return redirect(url_for("inbox.show", task_id=task_id))


@bp.post("/tasks/<task_id>/return")
@login_required
def send_back(task_id: str) -> Any:
    done = run_and_flash(lambda: taskwork.return_task(services(), actor(), task_id, request.form.get("reason", "")),
                         _("已退回上一步。"), RETURN_LABELS)
    return redirect(url_for("inbox.index") if done else url_for("inbox.show", task_id=task_id))


@bp.post("/tasks/<task_id>/complete")
@login_required
def complete(task_id: str) -> Any:
    task, _cadre = tasks.read_task(services(), actor(), task_id)
    try:
        tasks.complete_task(services(), actor(), task_id, parse_submission(task["form"], request.form))
    except Invalid as error:
        return _task_page(task_id, request.form, error.fields or {"_form": error.message}, status=422)
    except CaseIncident as error:  # a form rule failed to run: nothing saved, the task still open for a retry
        return _task_page(task_id, request.form, {"_form": error.message}, status=409)
    except Conflict as error:
        return _refused(task_id, error)
    flash(_("已办理：%(name)s（案件 #%(case)s）", name=task["name"], case=task["case_id"]), "success")
    return redirect(url_for("inbox.index"))


def _refused(task_id: str, error: Conflict) -> Any:
    """A refused completion, said as what happened to the task. Completed by the current user: a repeat of their
    own form (a double click, a resend), done once; the page saying that someone else just completed it would have
    them believe their decision was lost. A stale form must not claim a colleague decided a task that was withdrawn
    (returned, its case cancelled) or whose case is held."""
    task, _cadre = tasks.read_task(services(), actor(), task_id)
    if task["status"] == "completed" and task["completed_by"] == actor().username:
        flash(_("此任务您已办理，本次提交未重复保存。"), "info")
        return redirect(url_for("inbox.index"), 303)
    # Only a completion by another is "taken"; a withdrawn task or a held case keeps 409's own title and says why.
    return render_error(409, localize(error.message), TASK_TAKEN if task["status"] == "completed" else None)


def _task_page(task_id: str, values: Any = None, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    page = inbox.task_page(services(), actor(), task_id, values)
    form = page["task"]["form"]
    fields = fields_of(form, values, errors, page["user_choices"])
    return render_template("task.html", page=page, fields=fields, form_errors=form_errors(errors, form),
                           disclosure_ratings=RATINGS), status
