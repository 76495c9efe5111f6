"""Cadre pages: the register, one cadre's record (post, sanctions, ban, audits, cases), registering one."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from service.errors import Invalid
from service.usecases import cadres, tracker

from .access import actor, area_required, services
from .forms import fields_of, form_errors, parse_submission

bp = Blueprint("cadre_pages", __name__)


@bp.get("/cadres")
@area_required("cadres")
def index() -> Any:
    return render_template("cadres.html", cadres=cadres.list_cadres(services(), actor()))


@bp.get("/cadres/<cadre_id>")
@area_required("cadres")
def show(cadre_id: str) -> Any:
    return render_template("cadre.html", cadre=tracker.cadre_file(services(), actor(), cadre_id))


@bp.route("/cadres/new", methods=["GET", "POST"])
@area_required("cadres")
def new() -> Any:
    if request.method == "GET":
        return _form_page()
    try:
        cadre = cadres.create_cadre(services(), actor(), parse_submission(cadres.CADRE_FORM, request.form))
    except Invalid as error:
        return _form_page(request.form, error.fields or {"_form": error.message}), 422
    flash(_("已登记干部 %(name)s。", name=cadre["name"]), "success")
    return redirect(url_for("cadre_pages.show", cadre_id=cadre["id"]))


def _form_page(values: Any = None, errors: dict[str, str] | None = None) -> str:
    return render_template("cadre_new.html", fields=fields_of(cadres.CADRE_FORM, values, errors),
                           form_errors=form_errors(errors, cadres.CADRE_FORM))
