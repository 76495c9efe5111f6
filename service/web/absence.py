"""My absence (out of office): who stands in for me, from when until when."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from service.usecases import absence, users

from .access import action_required, actor, services
from .views import run_and_flash

# The labels of the absence form (absence.html), for the refusals flashed above it.
ABSENCE_LABELS = {"username": _l("代理人"), "from": _l("开始日期（留空为现在）"), "until": _l("结束日期（当日 24 时）")}

bp = Blueprint("absence_pages", __name__)


@bp.get("/account/absence")
@action_required("absence.set")
def show() -> Any:
    return render_template("absence.html", absence=absence.my_absence(services(), actor()),
                           people=[name for name in users.active_usernames(services()) if name != actor().username])


@bp.post("/account/absence")
@action_required("absence.set")
def set_absence() -> Any:
    form = request.form
    run_and_flash(lambda: absence.set_substitute(services(), actor(), form.get("username", "").strip(),
                                                 form.get("from", "").strip() or None, form.get("until", "").strip()),
                  _("已设置外出代理。"), ABSENCE_LABELS)
    return redirect(url_for("absence_pages.show"))


@bp.post("/account/absence/end")
@action_required("absence.set")
def end() -> Any:
    run_and_flash(lambda: absence.end_absence(services(), actor()), _("已结束外出，任务将重新分配给您。"))
    return redirect(url_for("absence_pages.show"))
