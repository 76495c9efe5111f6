"""The portal's pages (Chinese first, phones first): report, follow a report, public notices."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from service.api import error_headers
from service.errors import Conflict, Invalid, NotFound, TooManyAttempts
from service.usecases import portal, public_posts
from service.usecases.proof import ProofRefused
from service.web.errors import render_error
from service.web.i18n import localize

from . import admission, bound_body, no_store, services, signing_key

bp = Blueprint("portal", __name__, template_folder="templates", static_folder="static",
               static_url_path="/portal-static")
bp.before_request(bound_body)
bp.after_request(no_store)  # the pages show tracking codes, query keys and replies: kept by no browser or proxy


def _form() -> dict[str, str]:
    return {k: v for k, v in request.form.items() if k not in ("csrf_token", "pow_challenge", "pow_nonce")}


def _admission() -> public_posts.Admission:
    return admission(request.form.get("pow_challenge"), request.form.get("pow_nonce"))


Refusal = Invalid | ProofRefused | TooManyAttempts  # what sends the form back filled in, with a fresh challenge


def _refused(error: Refusal) -> tuple[dict[str, str], int, dict[str, str]]:
    """The form's errors, status and headers for a refusal: field problems under their fields; a spent or expired
    challenge (a report written for longer than PUBLIC_POW_TTL) or the address's limit above the button. The
    reporter's text is never thrown away for them."""
    if isinstance(error, TooManyAttempts):
        return {"_form": localize(error.message)}, 429, error_headers(error)
    if isinstance(error, ProofRefused):
        return {"pow": localize(error.message)}, 400, {}
    return {k: localize(v) for k, v in (error.fields or {}).items()}, 422, {}


@bp.get("/report")
def report_form() -> Any:
    return _report_page({}, {})


def _report_page(values: dict[str, str], errors: dict[str, str], status: int = 200) -> Any:
    return render_template("portal/report.html", values=values, errors=errors,
                           challenge=public_posts.challenge(services(), signing_key())), status


@bp.post("/report")
def submit_report() -> Any:
    values = _form()
    try:
        handed = portal.submit_report(services(), dict(values), _admission())
    except (Invalid, ProofRefused, TooManyAttempts) as error:
        errors, status, headers = _refused(error)
        return *_report_page(values, errors, status), headers
    return render_template("portal/handed_out.html", handed=handed, kind="report")


@bp.get("/report/track")
def track() -> Any:
    """The empty form. A code or key in the query (an old link or bookmark) shows nothing of the report: it is
    sent back here without them, so no page with the key in its address is shown, kept in history or sent on
    as a Referer. The form posts them instead."""
    if request.args:
        return redirect(url_for("portal.track"))
    return render_template("portal/track.html", code="", found=None, missing=False)


@bp.post("/report/track")
def track_report() -> Any:
    """The report's status and reply for the code and key in the form's body (the same 404 for either wrong)."""
    code, key = request.form.get("code", ""), request.form.get("key", "")
    try:
        found = portal.track(services(), code, key)
    except NotFound:
        return render_template("portal/track.html", code=code, found=None, missing=True), 404
    return render_template("portal/track.html", code=code, found=found, missing=False)


@bp.get("/notices")
def notices() -> Any:
    return _notices_page({}, {}, None)


def _notices_page(values: dict[str, str], errors: dict[str, str], failed: int | None) -> str:
    """The notices with their objection forms; `failed` names the one sent back with its `values` and `errors`."""
    return render_template("portal/notices.html", notices=portal.notices(services()), values=values,
                           challenge=public_posts.challenge(services(), signing_key()), errors=errors, failed=failed)


@bp.post("/notices/<int(max=2147483647):case_id>/objections")
def object_to_notice(case_id: int) -> Any:
    values = _form()
    try:
        handed = portal.object_to_notice(services(), case_id, dict(values), _admission())
    except (Invalid, ProofRefused, TooManyAttempts) as error:
        errors, status, headers = _refused(error)
        return _notices_page(values, errors, case_id), status, headers
    except Conflict as error:
        return render_error(409, localize(error.message))
    return render_template("portal/handed_out.html", handed=handed, kind="objection")
