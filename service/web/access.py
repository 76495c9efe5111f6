"""Who the browser user is (Flask-Login over server-side web sessions) and which areas the policy opens to them.

The signed session cookie carries a random session id as Flask-Login's user id; the id is looked up
in `web_sessions` on every request (logins.py), so deleting that row logs the browser out for good.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from flask import Flask, Request, abort, current_app, flash, g, redirect, request, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_required, login_url
from itsdangerous import URLSafeTimedSerializer

from service import services_of
from service.api import is_api_path
from service.usecases import logins, policy, roles
from service.usecases.context import Actor, Services

# Which action of the policy table (service/usecases/policy.py) opens each area of the UI: its pages'
# guard and its entry in the navigation. What a page then shows, the use cases decide by the same table.
AREAS: dict[str, str] = {
    "inbox": "task.list",
    "start": "case.start",
    "cases": "case.list",
    "integrity": "case.list",  # the 述职述廉 disclosures of the cases the user may read
    "reports": "report.inbox",
    "cadres": "cadre.list",
    "cadre_new": "cadre.create",
    "dashboard": "report.dashboard",
    "watchlist": "watchlist.read",
    "designer": "process.deploy",
    "access_log": "access_log.read",
    "account_log": "account_log.read",
    "admin": "user.manage",
    "roles": "role.manage",
}


class WebUser(UserMixin):
    """The logged-in person: an actor of the use cases, known by the id of its web session."""

    def __init__(self, actor: Actor, session_id: str, must_change_password: bool = False) -> None:
        self.actor = actor
        self.session_id = session_id
        self.must_change_password = must_change_password

    def get_id(self) -> str:
        return self.session_id

    @property
    def username(self) -> str:
        return self.actor.username

    @property
    def roles(self) -> list[str]:
        return sorted(self.actor.roles)


def services() -> Services:
    return services_of(current_app)


def actor() -> Actor:
    """The current user's actor (only inside views that require login)."""
    return cast(Actor, current_user.actor)


def init_login(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "web_auth.login"
    manager.login_message = _l("请先登录。")
    manager.login_message_category = "info"

    @manager.user_loader
    def _load(session_id: str) -> WebUser | None:
        try:
            found = logins.session_holder(services(), session_id)
        except logins.SessionIdle:
            g.session_idle = True  # the login page says why, not just "please log in"
            return None
        return WebUser(found.actor, session_id, found.must_change_password) if found else None

    @manager.unauthorized_handler
    def _to_login() -> Any:
        idle = g.pop("session_idle", False)
        flash(_("您已长时间未操作，会话已结束，请重新登录。") if idle else str(manager.login_message), "info")
        return redirect(login_url(manager.login_view, next_url=request.url))


# What a user whose password an admin set may still open: the page to choose their own, logging out and in,
# the language (and static files, by their endpoints' names).
OPEN_BEFORE_OWN_PASSWORD = frozenset({"web_auth.password", "web_auth.logout", "web_auth.login",
                                      "web_auth.switch_language"})


def own_password_first() -> Any:
    """Every page of a user whose password an admin set (so someone else knows it) leads to the password page,
    until they choose their own. The JSON API is left alone: its token contract stays as it was."""
    endpoint = request.endpoint or ""
    if is_api_path(request.path) or endpoint in OPEN_BEFORE_OWN_PASSWORD or endpoint.endswith("static"):
        return None
    if current_user.is_authenticated and current_user.must_change_password:
        flash(_("管理员为您设置了密码，请先改为只有您知道的新密码。"), "info")
        return redirect(url_for("web_auth.password"))
    return None


class InstanceKeySessions(SecureCookieSessionInterface):
    """Signed cookie sessions whose key, when SECRET_KEY is unset, is the instance's generated one, and whose
    cookie is Secure whenever the request came over https. JSON requests (the API, the portal's JSON) get none:
    they authenticate by bearer token or not at all, so a session cookie sent with them is never read, signed or
    set (a write to their session fails loudly instead of logging someone in by cookie)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if is_api_path(request.path):
            return self.null_session_class()
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            app.secret_key = app.extensions["cadreflow"].signing_key
        return super().get_signing_serializer(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        # https (directly, or at the trusted proxy: ProxyFix) never hands the cookie to plain http; `make run`
        # on http still works. SESSION_COOKIE_SECURE forces it even when the proxy's scheme is not passed on.
        return super().get_cookie_secure(app) or request.is_secure


def may(action: str, who: Actor | None = None) -> bool:
    """Whether the user's roles allow a policy action (a `$` rule: for any of its keys)."""
    return policy.allows(who or actor(), action, policy_tables())


def role_catalog() -> roles.Catalog:
    """The roles and who may start what, read once per request."""
    if "role_catalog" not in g:
        g.role_catalog = roles.catalog(services())
    return cast(roles.Catalog, g.role_catalog)


def policy_tables() -> dict[str, Any]:
    """Who may start what (roles data) and send which message or signal, for the policy."""
    return role_catalog().policy_tables(current_app.config["CADREFLOW"])


def may_enter(area: str, who: Actor | None = None) -> bool:
    return may(AREAS[area], who)


def action_required(action: str) -> Callable[..., Any]:
    """Require login and roles the policy allows the action; 403 otherwise (the use case checks again)."""
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not may(action):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


def area_required(area: str) -> Callable[..., Any]:
    """Require login and roles that open the area; 403 otherwise."""
    return action_required(AREAS[area])
