"""CadreFlow's web service. `create_app(overrides)` builds it; nothing happens at import."""

from __future__ import annotations

import logging
from typing import Any, cast

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import load_settings, secret_key
from .converters import BoundedInteger
from .db.instance_key import KEY_IN_DATABASE, existing_key, keeps_key_in_database
from .usecases.context import Services, build_services


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app from config/, CADREFLOW_CONFIG, CADREFLOW_* and `overrides`."""
    settings = load_settings(overrides)
    app = Flask(__name__, instance_relative_config=False)
    app.url_map.converters["int"] = BoundedInteger  # before any route: an id past its max is a plain 404
    # No SECRET_KEY: the instance's generated key (service/db/instance_key.py), read now if its file is there (a
    # broken one refuses the start), else made on first use.
    app.config.update(SECRET_KEY=secret_key(settings) or existing_key(settings["DATABASE_URL"]), JSON_SORT_KEYS=False,
                      MAX_CONTENT_LENGTH=_max_body(settings))
    app.config["CADREFLOW"] = settings
    if not secret_key(settings) and keeps_key_in_database(settings["DATABASE_URL"]):
        logging.getLogger(__name__).warning(KEY_IN_DATABASE)
    app.extensions["cadreflow"] = build_services(settings)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # the default provider has it
    _trust_proxies(app, int(settings.get("TRUSTED_PROXIES") or 0))

    from .api import register_api
    from .api.auth import bound_strangers
    from .cli import register_commands
    from .inputs import register_input_checks
    from .portal import register_portal
    from .web import register_web

    app.before_request(bound_strangers)  # first: before any other check reads a body
    register_api(app)
    register_web(app)
    register_portal(app)
    register_input_checks(app)
    register_commands(app)
    return app


def _max_body(settings: dict[str, Any]) -> int:
    """The largest request body: twice a process upload, or an attachment with room for its form fields."""
    return max(int(settings["MAX_UPLOAD_BYTES"]) * 2, int(settings["MAX_ATTACHMENT_BYTES"]) + 64_000)


def _trust_proxies(app: Flask, count: int) -> None:
    """Take the client address and scheme from X-Forwarded-* only as set by `count` trusted proxies."""
    if count > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]


def services_of(app: Flask) -> Services:
    """The use-case collaborators wired into an app."""
    return cast(Services, app.extensions["cadreflow"])
