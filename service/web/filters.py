"""Jinja filters and globals of the UI: dates in the county's time zone, labels, navigation."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import Flask, request, url_for
from flask_babel import format_date, format_datetime
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from service import labels

from . import access, i18n, views

STATIC = Path(__file__).parent / "static"
# (area, endpoint, label) in the order of the navigation bar.
NAV = [
    ("inbox", "inbox.index", _l("我的待办")),
    ("start", "case_pages.new", _l("发起案件")),
    ("cases", "case_pages.index", _l("案件跟踪")),
    ("reports", "portal_staff.index", _l("信访举报")),
    ("cadres", "cadre_pages.index", _l("干部")),
    ("integrity", "integrity_pages.staff_index", _l("述职述廉")),
    ("dashboard", "dashboard.index", _l("统计")),
    ("watchlist", "dashboard.watchlist", _l("预警名单")),
    ("designer", "designer.index", _l("流程设计")),
    ("access_log", "access_log_pages.index", _l("访问记录")),
    ("account_log", "account_log_pages.index", _l("账号变更记录")),
    ("admin", "admin.index", _l("用户与角色")),
    ("roles", "admin_roles.index", _l("角色与发起权限")),
]

# The case diagram's zoom buttons (the viewer script reads them from the page).
DIAGRAM_TEXTS = {"toolbar": _l("缩放流程图"), "in": _l("放大"), "out": _l("缩小"), "fit": _l("适应窗口"),
                 "fit_label": _l("适应"), "reset": _l("原始大小")}


def register(app: Flask) -> None:
    app.jinja_env.filters.update(dt=format_when, day=format_day, msg=i18n.localize, yesno=yes_no)
    for table in labels.TABLES:
        app.jinja_env.filters[f"{table}_label"] = lambda code, t=table: labels.label(t, code)
    app.jinja_env.filters["role_label"] = role_label
    app.context_processor(_globals)


def _globals() -> dict[str, Any]:
    return {"nav_items": nav_items(), "lang": i18n.current_language(), "role_labels": labels.ROLES,
            "role_names": {code: str(name) for code, name in labels.ROLES.items()},
            "diagram_texts": {key: str(text) for key, text in DIAGRAM_TEXTS.items()},
            "current_path": request.full_path.rstrip("?"), "asset": asset, "may": may, "may_enter": may_enter,
            "submission_id": views.submission_id}


def role_label(code: str | None) -> str:
    """A role's name: the shipped roles' translated names, else the names an admin gave it."""
    if not code or code in labels.ROLES:
        return labels.label("role", code)
    found = access.role_catalog().roles.get(code)
    if found is None:
        return code
    return found.name_en if i18n.current_language() == "en" else found.name_zh


def may(action: str) -> bool:
    """Whether the current user's roles allow a policy action (to show a button; the use case decides)."""
    return current_user.is_authenticated and access.may(action, current_user.actor)


def may_enter(area: str) -> bool:
    """Whether the current user may open an area (to show a link to it)."""
    return current_user.is_authenticated and access.may_enter(area, current_user.actor)


def asset(filename: str) -> str:
    """The URL of a static file with its modification time, so browsers fetch a new build."""
    path = STATIC / filename
    version = int(path.stat().st_mtime) if path.exists() else 0
    return url_for("web_auth.static", filename=filename, v=version)


def nav_items() -> list[dict[str, Any]]:
    """The navigation entries the current user's roles open."""
    if not current_user.is_authenticated:
        return []
    items = [{"endpoint": endpoint, "label": text, "area": area}
             for area, endpoint, text in NAV if access.may_enter(area, current_user.actor)]
    exact = any(item["endpoint"] == request.endpoint for item in items)
    for item in items:
        index_of_blueprint = item["endpoint"] == f"{request.blueprint}.index"
        item["current"] = item["endpoint"] == request.endpoint or (not exact and index_of_blueprint)
    return items


def format_when(value: str | datetime | None) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return str(format_datetime(moment, "yyyy-MM-dd HH:mm"))


def format_day(value: str | date | None) -> str:
    if not value:
        return ""
    return str(format_date(date.fromisoformat(value) if isinstance(value, str) else value, "yyyy-MM-dd"))


def yes_no(value: Any) -> Any:
    if isinstance(value, bool):
        return _l("是") if value else _l("否")
    return value
