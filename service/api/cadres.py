"""HTTP views for cadres."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request
from flask_babel import force_locale

from service.labels import label
from service.printing import pdf_response
from service.usecases import cadres, ledgers
from service.web.i18n import DEFAULT

from .auth import json_body, requires, services
from .params import date_arg, list_arg

bp = Blueprint("cadres", __name__)


@bp.post("/cadres")
@requires()
def create() -> Any:
    return jsonify(cadres.create_cadre(services(), g.actor, json_body())), 201


@bp.get("/cadres")
@requires()
def index() -> Any:
    return jsonify(cadres.list_cadres(services(), g.actor, request.args.get("q")))


@bp.get("/cadres/<cadre_id>")
@requires()
def show(cadre_id: str) -> Any:
    return jsonify(cadres.get_cadre(services(), g.actor, cadre_id))


@bp.patch("/cadres/<cadre_id>")
@requires()
def update(cadre_id: str) -> Any:
    return jsonify(cadres.update_cadre(services(), g.actor, cadre_id, json_body()))


@bp.get("/cadres/<cadre_id>/ledger")
@requires()
def ledger(cadre_id: str) -> Any:
    return jsonify(ledgers.ledger(services(), g.actor, cadre_id, request.args.get("kind"),
                                  date_arg("from"), date_arg("to"), label, list_arg("type")))


@bp.get("/cadres/<cadre_id>/ledger.pdf")
@requires()
def ledger_pdf(cadre_id: str) -> Any:
    with force_locale(DEFAULT):  # a printed ledger is a Chinese document, whatever the client's language
        document = ledgers.ledger_document(services(), g.actor, cadre_id, request.args.get("kind"),
                                           date_arg("from"), date_arg("to"), label, list_arg("type"))
    return pdf_response(document, f"ledger-{cadre_id}-{document['ledger_kind']}.pdf")
