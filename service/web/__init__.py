"""The browser UI: server-rendered pages over the same use cases as the JSON API.

`register_web(app)` wires session login (Flask-Login), CSRF protection for every form outside
/api (Flask-WTF), Chinese-first translations (Flask-Babel), cookie and security headers, HTML
error pages (the JSON API keeps its own), and the page blueprints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, request
from flask_babel import Babel
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect

from service.portal import bound_body, is_bounded

from . import access, errors, filters, i18n

TRANSLATIONS = Path(__file__).parent / "translations"
# Same-origin everything, and no inline style: an injected `style` or <style> (CSS reading a page's tokens out
# through attribute selectors and background URLs) is never applied. Scripts may still set styles (CSSOM).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
# The modeler's page alone: bpmn-js's palette icons and the properties panel write inline styles.
MODELER_CSP = CSP.replace("style-src 'self';", "style-src 'self' 'unsafe-inline';")

HSTS = "max-age=31536000"  # a year; sent only on https answers, so `make run` on plain http is unaffected


def register_web(app: Flask) -> None:
    """Add the browser UI to an app that already has the JSON API."""
    settings = app.config["CADREFLOW"]
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=bool(settings.get("SESSION_COOKIE_SECURE", False)),
                      REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
                      WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None,
                      BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS))
    app.session_interface = access.InstanceKeySessions()
    _protect_forms(app, CSRFProtect(app))
    Babel(app, default_locale=i18n.DEFAULT, default_timezone=settings.get("TIMEZONE", "Asia/Shanghai"),
          locale_selector=i18n.select_locale)
    access.init_login(app)
    app.before_request(access.own_password_first)
    filters.register(app)
    errors.register(app)
    app.after_request(_security_headers)
    _register_blueprints(app)


def _protect_forms(app: Flask, csrf: CSRFProtect) -> None:
    """Check the CSRF token of every unsafe request outside /api (the API authenticates by bearer token)."""
    @app.before_request
    def _check_csrf() -> None:
        if app.config.get("WTF_CSRF_ENABLED", True) and not errors.is_api_path(request.path):
            if is_bounded(app):  # the check reads the form: a public one is bounded first (413, not 10 MB parsed)
                bound_body()
            csrf.protect()


def _security_headers(response: Any) -> Any:
    if request.is_secure:  # reached over https (at the trusted proxy too): browsers must never fall back to http
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if not errors.is_api_path(request.path):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # A page another site opened keeps no handle on it (no counting its frames, no navigating it), and no
        # other site may load our pages or files as its own subresources (cross-site leaks through their size,
        # timing or errors): nothing of this service is meant to be used by another origin.
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if not (request.endpoint or "").endswith("static") and current_user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"  # pages of logged-in users are confidential
    return response


def _register_blueprints(app: Flask) -> None:
    from . import (
        absence,
        access_log,
        account_log,
        admin,
        admin_roles,
        auth,
        cadres,
        cases,
        dashboard,
        design_versions,
        designer,
        disclosures,
        inbox,
        notifications,
    )

    for module in (auth, inbox, cases, cadres, dashboard, designer, design_versions, access_log, account_log, admin,
                   admin_roles, notifications, disclosures, absence):
        app.register_blueprint(module.bp)
    app.register_blueprint(disclosures.public)
