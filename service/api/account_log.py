"""HTTP view of the account log: who changed which account, role or process's starters, and when."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from service.usecases import account_log

from .auth import requires, services
from .params import api_page, int_arg, text_arg

bp = Blueprint("account_log", __name__)


@bp.get("/account-log")
@requires()
def index() -> Any:
    filters = {"username": text_arg("username"), "page": int_arg("page", 1),
               "per_page": int_arg("per_page", account_log.PER_PAGE, maximum=500)}
    return jsonify(api_page(account_log.read_log(services(), g.actor, filters)))
