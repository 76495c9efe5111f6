"""A load balancer's checks: the process answers (`/api/health`), and it can serve (`/api/ready`); no login."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from service.usecases import health

from .auth import services

bp = Blueprint("health", __name__)


@bp.get("/health")
def alive() -> Any:
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready() -> Any:
    can_serve, body = health.readiness(services())
    return jsonify(body), 200 if can_serve else 503
