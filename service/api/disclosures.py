"""HTTP views for 述职述廉 (docs/processes.md §8): opening the year's reports, staff reads of the disclosures
with their tallies, and the public disclosure and rating under /public (no login)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from service.portal import bound_body, signing_key
from service.usecases import disclosures

from .auth import json_body, requires, services
from .params import int_arg

bp = Blueprint("integrity_api", __name__)
public = Blueprint("disclosures_public_api", __name__)
public.before_request(bound_body)  # no login: bodies bounded like the portal's (413)


@bp.post("/integrity-reports")
@requires()
def open_reports() -> Any:
    body = json_body({"year"})
    return jsonify(disclosures.open_reports(services(), g.actor, body.get("year")))


@bp.get("/disclosures")
@requires()
def staff_list() -> Any:
    year = int_arg("year", minimum=2000, maximum=2100)
    return jsonify({"items": disclosures.staff_list(services(), g.actor, year)})


@bp.get("/disclosures/<int(max=2147483647):disclosure_id>")
@requires()
def staff_get(disclosure_id: int) -> Any:
    return jsonify(disclosures.staff_get(services(), g.actor, disclosure_id))


@public.get("/disclosures")
def public_list() -> Any:
    return jsonify(disclosures.public_list(services()))


@public.get("/disclosures/<int(max=2147483647):disclosure_id>")
def public_get(disclosure_id: int) -> Any:
    return jsonify(disclosures.public_get(services(), disclosure_id))


@public.post("/disclosures/<int(max=2147483647):disclosure_id>/ratings")
def rate(disclosure_id: int) -> Any:
    body = json_body()
    # signing_key: this JSON request opens no session, so nothing may have loaded the instance's key yet.
    rated = disclosures.rate(services(), disclosure_id, body, request.remote_addr or "", signing_key())
    return jsonify(rated), 201
