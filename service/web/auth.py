"""Log in and out with a server-side session; change one's password; switch the language; go home."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user

from service.errors import TooManyAttempts, Unauthorized
from service.portal import bounded, signing_key
from service.usecases import devices, logins, users

from . import access, i18n
from .views import run_and_flash

# The labels of the password form (password.html), for the refusals flashed above it.
PASSWORD_LABELS = {"old_password": _l("原密码"), "new_password": _l("新密码（至少 10 位）")}

bp = Blueprint("web_auth", __name__, template_folder="templates", static_folder="static",
               static_url_path="/assets")
HOME_AREAS = [("inbox", "inbox.index"), ("cases", "case_pages.index"), ("designer", "designer.index"),
              ("admin", "admin.index")]
LANG_MAX_AGE = 365 * 24 * 3600


@bp.get("/")
@login_required
def home() -> Any:
    for area, endpoint in HOME_AREAS:
        if access.may_enter(area):
            return redirect(url_for(endpoint))
    return render_template("no_role.html")


@bp.route("/login", methods=["GET", "POST"])
@bounded  # no login yet: bounded like the public portal
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", next=safe_next(request.args.get("next")))
    username, target = request.form.get("username", "").strip(), safe_next(request.form.get("next"))
    device = devices.Device(request.cookies.get(devices.COOKIE, ""), signing_key())
    try:
        opened = logins.open_web_session(access.services(), username, request.form.get("password", ""),
                                         request.remote_addr or "", device)
    except Unauthorized:
        flash(_("用户名或密码错误。"), "error")
        return render_template("login.html", username=username, next=target), 401
    except TooManyAttempts as error:
        flash(_("登录失败次数过多，请 %(minutes)s 分钟后再试。", minutes=math.ceil(error.retry_after / 60)), "error")
        return (render_template("login.html", username=username, next=target), 429,
                {"Retry-After": str(error.retry_after)})
    if current_user.is_authenticated:  # logging in again replaces this browser's session instead of orphaning it
        logins.end_web_session(access.services(), current_user.get_id())
    session.clear()  # a fresh session, and with it a fresh CSRF token: nothing from before the login survives
    login_user(access.WebUser(opened.actor, opened.session_id))
    return _remember_device(redirect(target or url_for("web_auth.home")), opened.device_cookie)


def _remember_device(response: Any, cookie: str) -> Any:
    """Give the browser its device cookie: sent back only to the login form (Strict: no other site's form sends
    it), Secure exactly when the session cookie is."""
    secure = current_app.session_interface.get_cookie_secure(current_app)
    response.set_cookie(devices.COOKIE, cookie, max_age=devices.MAX_AGE, path=url_for("web_auth.login"),
                        httponly=True, samesite="Strict", secure=secure)
    return response


@bp.post("/logout")
@bounded
def logout() -> Any:
    if current_user.is_authenticated:
        logins.end_web_session(access.services(), current_user.get_id())
        logout_user()
        session.clear()
        flash(_("您已安全退出。"), "info")
    response = redirect(url_for("web_auth.login"))
    # The back button then shows no page of the session, from the HTTP cache or the back-forward cache (the pages
    # are no-store already; some browsers still keep them in memory). Cookies stay: the device's is not the session's.
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    """Change my password: this browser stays logged in on a new session id, every other session and token ends."""
    if request.method == "GET":
        return render_template("password.html")
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        flash(_("两次输入的新密码不一致。"), "error")
        return redirect(url_for("web_auth.password"))
    changed = run_and_flash(lambda: _change_password(request.form.get("old_password", ""), new),
                            _("密码已修改，您的其他登录已全部退出。"), PASSWORD_LABELS)
    return redirect(url_for("web_auth.home") if changed else url_for("web_auth.password"))


def _change_password(old: str, new: str) -> None:
    """Change it, then go on under a fresh session id: a copy of this browser's cookie, taken by whoever
    knew the old password, must not outlive the change that was meant to shut them out."""
    me, session_id = access.actor(), current_user.get_id()
    users.change_password(access.services(), me, old, new, keep=session_id, address=request.remote_addr or "")
    fresh = logins.renew_web_session(access.services(), session_id)
    logout_user()
    session.clear()  # a fresh session and CSRF token, like a login
    if fresh:
        login_user(access.WebUser(me, fresh))


@bp.post("/lang")
@bounded
def switch_language() -> Any:
    lang = request.form.get("lang", i18n.DEFAULT)
    response = redirect(safe_next(request.form.get("next")) or url_for("web_auth.home"))
    if lang in i18n.LANGUAGES:  # Secure exactly when the session cookie is (https, or SESSION_COOKIE_SECURE)
        secure = current_app.session_interface.get_cookie_secure(current_app)
        response.set_cookie(i18n.COOKIE, lang, max_age=LANG_MAX_AGE, httponly=True, samesite="Lax", secure=secure)
    return response


def safe_next(target: str | None) -> str | None:
    """A redirect target only if it is a plain path on this site; anything a browser could read as elsewhere is None.

    Browsers drop tabs and newlines inside URLs and read backslashes as slashes, so `/\\t/evil` and
    `/\\evil` become `//evil`: only printable ASCII without backslashes, spaces or `//` passes.
    """
    if not target or not target.startswith("/") or "//" in target:
        return None
    if any(not ("!" <= char <= "~") or char == "\\" for char in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None
