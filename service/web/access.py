"""Who the browser user is (Flask-Login over the users use cases) and which pages their roles open."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, abort, current_app
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_required

from service.usecases import users
from service.usecases.context import Actor, Services

TASK_ROLES = ("org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head")
OVERSIGHT_ROLES = ("discipline", "discipline_head", "org_dept", "org_head", "committee", "audit_head")
# The one table of which roles open which area of the UI (admin opens every area).
AREAS: dict[str, tuple[str, ...]] = {
    "inbox": TASK_ROLES,
    "cases": OVERSIGHT_ROLES,
    "cadres": OVERSIGHT_ROLES,
    "dashboard": ("discipline", "discipline_head", "org_head"),
    "designer": ("designer",),
    "admin": ("admin",),
}


class WebUser(UserMixin):
    """The logged-in person: an actor of the use cases."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    def get_id(self) -> str:
        return self.actor.username

    @property
    def username(self) -> str:
        return self.actor.username

    @property
    def roles(self) -> list[str]:
        return sorted(self.actor.roles)


def services() -> Services:
    return current_app.extensions["cadreflow"]


def actor() -> Actor:
    """The current user's actor (only inside views that require login)."""
    return current_user.actor


def init_login(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "web_auth.login"
    manager.login_message = _l("请先登录。")
    manager.login_message_category = "info"

    @manager.user_loader
    def _load(username: str) -> WebUser | None:
        found = users.actor_for_username(services(), username)
        return WebUser(found) if found else None


def start_roles() -> tuple[str, ...]:
    """Roles that may start at least one process (from the START_ROLES setting)."""
    table = current_app.config["CADREFLOW"].get("START_ROLES", {})
    return tuple(sorted({role for roles in table.values() for role in roles}))


def may_enter(area: str, who: Actor | None = None) -> bool:
    who = who or actor()
    roles = start_roles() if area == "start" else AREAS[area]
    return who.has_any(*roles)


def area_required(area: str) -> Callable:
    """Require login and a role of the area; 403 otherwise."""
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not may_enter(area):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorate
