"""The admins' roles page: roles (names, head role), new roles, and who may start each process."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from service.usecases import roles

from .access import actor, area_required, services
from .views import run_and_flash

# The labels of the roles page's forms (admin/roles.html), for the refusals flashed above them.
ROLE_LABELS = {"code": _l("代码（泳道名称）"), "name_zh": _l("中文名称"), "name_en": _l("英文名称"),
               "head_role": _l("上级角色")}
STARTER_LABELS = {"roles": _l("可发起的角色")}

bp = Blueprint("admin_roles", __name__, url_prefix="/admin")


@bp.get("/roles")
@area_required("roles")
def index() -> Any:
    return render_template("admin/roles.html", **roles.roles_page(services(), actor()))


@bp.post("/roles")
@area_required("roles")
def create() -> Any:
    form = request.form
    code = form.get("code", "").strip()
    run_and_flash(lambda: roles.create_role(services(), actor(), code, form.get("name_zh", ""),
                                            form.get("name_en", ""), form.get("head_role") or None),
                  _("已新建角色 %(code)s。", code=code), ROLE_LABELS)
    return redirect(url_for("admin_roles.index"))


@bp.post("/roles/<code>")
@area_required("roles")
def update(code: str) -> Any:
    form = request.form
    run_and_flash(lambda: roles.update_role(services(), actor(), code, form.get("name_zh", ""), form.get("name_en", ""),
                                            form.get("head_role") or None),
                  _("已更新角色 %(code)s。", code=code), ROLE_LABELS)
    return redirect(url_for("admin_roles.index"))


@bp.post("/processes/<key>/starters")
@area_required("roles")
def starters(key: str) -> Any:
    run_and_flash(lambda: roles.set_starters(services(), actor(), key, request.form.getlist("roles")),
                  _("已更新可发起 %(key)s 的角色。", key=key), STARTER_LABELS)
    return redirect(url_for("admin_roles.index"))
