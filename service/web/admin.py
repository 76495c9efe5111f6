"""The admins' page: users, their roles, whether they may log in, and resetting a password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from service.usecases import users
from service.usecases.roles import known_codes

from .access import actor, area_required, services
from .views import run_and_flash

# The labels of the users page's forms (admin/users.html), for the refusals flashed above them.
USER_LABELS = {"username": _l("用户名"), "password": _l("初始密码（至少 10 位）"), "roles": _l("角色"),
               "active": _l("状态")}
RESET_LABELS = {"password": _l("重置密码")}
MAIL_LABELS = {"email": _l("邮件提醒"), "mail_digest": _l("每日汇总")}

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/users")
@area_required("admin")
def index() -> Any:
    return render_template("admin/users.html", users=users.list_users(services(), actor()),
                           roles=known_codes(services()))


@bp.post("/users")
@area_required("admin")
def create() -> Any:
    username = request.form.get("username", "").strip()
    run_and_flash(lambda: users.add_user(services(), actor(), username, request.form.get("password", ""),
                                         request.form.getlist("roles")),
                  _("已创建用户 %(name)s。", name=username), USER_LABELS)
    return redirect(url_for("admin.index"))


@bp.post("/users/<username>/roles")
@area_required("admin")
def roles(username: str) -> Any:
    run_and_flash(lambda: users.update_user(services(), actor(), username, roles=request.form.getlist("roles")),
                  _("已更新 %(name)s 的角色。", name=username), USER_LABELS)
    return redirect(url_for("admin.index"))


@bp.post("/users/<username>/active")
@area_required("admin")
def active(username: str) -> Any:
    enable = request.form.get("active") == "1"
    message = _("已启用 %(name)s。", name=username) if enable else _("已停用 %(name)s。", name=username)
    run_and_flash(lambda: users.update_user(services(), actor(), username, active=enable), message, USER_LABELS)
    return redirect(url_for("admin.index"))


@bp.post("/users/<username>/password")
@area_required("admin")
def password(username: str) -> Any:
    run_and_flash(lambda: users.update_user(services(), actor(), username, password=request.form.get("password", "")),
                  _("已重置 %(name)s 的密码，其所有登录已退出。", name=username), RESET_LABELS)
    return redirect(url_for("admin.index"))


@bp.post("/users/<username>/mail")
@area_required("admin")
def mail(username: str) -> Any:
    run_and_flash(lambda: users.update_user(services(), actor(), username, email=request.form.get("email", "").strip(),
                                            mail_digest=request.form.get("mail_digest") == "1"),
                  _("已更新 %(name)s 的邮件设置。", name=username), MAIL_LABELS)
    return redirect(url_for("admin.index"))
