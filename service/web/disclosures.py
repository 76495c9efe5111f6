"""述职述廉 pages (docs/processes.md §8): the public disclosure and rating (no login, mobile first), and the
staff pages listing every disclosure with its tallies and comments."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from service.api import error_headers
from service.errors import Conflict, Invalid, TooManyAttempts
from service.portal import bound_body, no_store, signing_key
from service.usecases import disclosures

from .access import action_required, actor, area_required, services
from .deliberate import deliberate_read
from .errors import flash_error

public = Blueprint("public_disclosures", __name__)
public.before_request(bound_body)  # no login: bodies bounded like the portal's (413)
public.after_request(no_store)  # a portal page: a rater's comment and thanks stay on no shared PC or proxy
bp = Blueprint("integrity_pages", __name__)
RATINGS = {"satisfied": _l("满意"), "basically_satisfied": _l("基本满意"), "dissatisfied": _l("不满意")}


@public.get("/disclosures")
def index() -> Any:
    return render_template("disclosures/public_list.html", items=disclosures.public_list(services()))


@public.get("/disclosures/<int(max=2147483647):disclosure_id>")
def show(disclosure_id: int) -> Any:
    return _public_page(disclosure_id)


@public.post("/disclosures/<int(max=2147483647):disclosure_id>")
def rate(disclosure_id: int) -> Any:
    body = {"rating": request.form.get("rating", ""), "comment": request.form.get("comment", "")}
    try:
        disclosures.rate(services(), disclosure_id, body, request.remote_addr or "", signing_key())
    except Invalid as error:
        return _public_page(disclosure_id, body, error.fields), 422
    except TooManyAttempts as error:
        return _public_page(disclosure_id, body, {"_form": error.message}), 429, error_headers(error)
    except Conflict as error:
        return _public_page(disclosure_id, body, {"_form": error.message}), 409
    flash(_("感谢您的评议。"), "success")
    return redirect(url_for("public_disclosures.show", disclosure_id=disclosure_id))


def _public_page(disclosure_id: int, values: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None) -> str:
    return render_template("disclosures/public_show.html", item=disclosures.public_get(services(), disclosure_id),
                           ratings=RATINGS, values=values or {}, errors=errors or {})


@bp.get("/integrity-reports")
@area_required("cases")
def staff_index() -> Any:
    year = request.args.get("year", type=int)
    year = year if year is not None and 0 < year <= 9999 else None  # like a year that is no number: every year
    return render_template("disclosures/staff_list.html", items=disclosures.staff_list(services(), actor(), year),
                           year=year, ratings=RATINGS)


@bp.get("/integrity-reports/<int(max=2147483647):disclosure_id>")
@deliberate_read
@area_required("cases")
def staff_show(disclosure_id: int) -> Any:
    item = disclosures.staff_get(services(), actor(), disclosure_id)
    return render_template("disclosures/staff_show.html", item=item, ratings=RATINGS)


@bp.post("/integrity-reports/open")
@action_required("integrity.open")
def open_year() -> Any:
    try:
        result = disclosures.open_reports(services(), actor(), request.form.get("year", type=int))
    except Invalid as error:
        flash_error(error, {"year": _l("年度")})
        return redirect(url_for("integrity_pages.staff_index")), 303
    flash(_("已启动 %(n)d 件述职述廉，%(m)d 名干部本年度已有。", n=len(result["opened"]), m=result["skipped"]),
          "success")
    return redirect(url_for("integrity_pages.staff_index")), 303
