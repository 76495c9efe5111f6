"""CadreFlow's web service. `create_app(overrides)` builds it; nothing happens at import."""

from __future__ import annotations

from typing import Any

from flask import Flask

from .config import load_settings
from .usecases.context import Services, build_services


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app from config/, CADREFLOW_CONFIG, CADREFLOW_* and `overrides`."""
    settings = load_settings(overrides)
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(SECRET_KEY=settings["SECRET_KEY"], MAX_CONTENT_LENGTH=int(settings["MAX_UPLOAD_BYTES"]) * 2,
                      JSON_SORT_KEYS=False)
    app.config["CADREFLOW"] = settings
    app.extensions["cadreflow"] = build_services(settings)
    app.json.ensure_ascii = False

    from .api import register_api
    from .cli import register_commands
    from .web import register_web

    register_api(app)
    register_web(app)
    register_commands(app)
    return app


def services_of(app: Flask) -> Services:
    """The use-case collaborators wired into an app."""
    return app.extensions["cadreflow"]
