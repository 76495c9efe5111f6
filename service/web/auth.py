"""Log in and out with a session cookie; switch the language; send each user to their first page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from service.usecases import users

from . import access, i18n

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
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", next=safe_next(request.args.get("next")))
    username = request.form.get("username", "").strip()
    found = users.check_password(access.services(), username, request.form.get("password", ""))
    if found is None:
        flash(_("用户名或密码错误。"), "error")
        return render_template("login.html", username=username, next=safe_next(request.form.get("next"))), 401
    login_user(access.WebUser(found))
    return redirect(safe_next(request.form.get("next")) or url_for("web_auth.home"))


@bp.post("/logout")
def logout() -> Any:
    if current_user.is_authenticated:
        logout_user()
        flash(_("您已安全退出。"), "info")
    return redirect(url_for("web_auth.login"))


@bp.post("/lang")
def switch_language() -> Any:
    lang = request.form.get("lang", i18n.DEFAULT)
    response = redirect(safe_next(request.form.get("next")) or url_for("web_auth.home"))
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=LANG_MAX_AGE, httponly=True, samesite="Lax")
    return response


def safe_next(target: str | None) -> str | None:
    """A redirect target only if it stays on this site (a path, never //host or a scheme)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    return target
