"""HTTP views for one's own notifications and e-mail settings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import mailing, notifications

from .auth import json_body, requires, services
from .params import api_page, flag_arg, int_arg

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
@requires()
def index() -> Any:
    return jsonify(api_page(notifications.list_notifications(
        services(), g.actor, flag_arg("unread"), int_arg("page", 1), int_arg("per_page", 20, maximum=100))))


@bp.post("/notifications/<int(max=2147483647):notification_id>/read")
@requires()
def read(notification_id: int) -> Any:
    return jsonify(notifications.mark_read(services(), g.actor, notification_id))


@bp.post("/notifications/read-all")
@requires()
def read_all() -> Any:
    return jsonify({"marked": notifications.mark_all_read(services(), g.actor)})


@bp.get("/me/mail")
@requires()
def my_mail() -> Any:
    return jsonify(mailing.my_mail_settings(services(), g.actor))


@bp.patch("/me/mail")
@requires()
def change_my_mail() -> Any:
    body = json_body({"email", "mail_digest"})
    return jsonify(mailing.set_my_mail_settings(services(), g.actor, body.get("email"), body.get("mail_digest")))
