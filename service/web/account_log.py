"""The account log page (discipline_head, admin): who changed which account, role or process's starters."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l

from service.usecases import account_log

from .access import actor, area_required, services
from .views import arg, int_arg, query_without

bp = Blueprint("account_log_pages", __name__)

ACTIONS = {"user.create": _l("创建账号"), "user.roles": _l("变更角色"), "user.deactivate": _l("停用账号"),
           "user.activate": _l("启用账号"), "user.password_reset": _l("管理员重置密码"),
           "user.password_change": _l("本人修改密码"), "user.mail": _l("变更邮件设置"), "role.create": _l("创建角色"),
           "role.update": _l("修改角色"), "process.starters": _l("变更发起权限"),
           "user.backfill": _l("启用记录前已有账号"), "user.password_backfill": _l("启用密码记录前已设密码"),
           "user.mail_backfill": _l("启用邮件设置记录前已有设置")}


@bp.get("/account-log")
@area_required("account_log")
def index() -> Any:
    filters = {"username": arg("username"), "page": int_arg("page", 1)}
    page = account_log.read_log(services(), actor(), filters)
    return render_template("account_log.html", page=page, filters=filters, actions=ACTIONS,
                           changes=[_changes(e["detail"]) for e in page["items"]], query=query_without("page"))


def _changes(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """Each field of an entry's detail as (field, `before → after` or its value), lists joined by commas; a password's
    digest is left out (it is for `check`, and tells a reader nothing)."""
    return [(key, f"{_text(value['before'])} → {_text(value['after'])}" if _is_change(value) else _text(value))
            for key, value in sorted(detail.items()) if key != account_log.PASSWORD_KEY]


def _is_change(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"before", "after"}


def _text(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "—"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
