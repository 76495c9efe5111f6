"""Cadre pages: the register, one cadre's record (post, sanctions, ban, audits, cases, personal-matters
reports), registering one, recording a report and correcting one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from service.api.params import date_arg, list_arg
from service.errors import BadRequest, Conflict, Invalid
from service.labels import label
from service.printing import pdf_response
from service.usecases import cadres, ledgers, personal_reports, queries, search, tracker

from .access import action_required, actor, area_required, services
from .deliberate import deliberate_read
from .forms import Field, fields_of, form_errors, parse_submission
from .i18n import DEFAULT, localize
from .views import first_sending, plain_int, sending_refused_gives_back

bp = Blueprint("cadre_pages", __name__)


@bp.get("/cadres")
@area_required("cadres")
def index() -> Any:
    query = search.clean_query(request.args.get("q"))
    # The register shows a line per cadre, like the case tracker; opening one (cadre_page) is the logged read.
    return render_template("cadres.html", cadres=cadres.list_cadres(services(), actor(), query, what=None),
                           query=query)


@bp.get("/search/cadres")
@area_required("cadres")
def picker() -> Any:
    """The typeahead picker's choices: readable cadres whose name, unit or id has `q` (JSON)."""
    return jsonify(search.find_cadres(services(), actor(), request.args.get("q")))


@bp.get("/cadres/<cadre_id>")
@deliberate_read
@login_required
def show(cadre_id: str) -> Any:
    """The cadre's record; its ledgers filtered by the ledger form's period and entry types (a GET form, so
    the filter is a link; a bad filter shows the page unfiltered with the problem beside the form)."""
    try:
        return _cadre_page(cadre_id, ledger_filter=_ledger_filter())
    except BadRequest as error:
        return _cadre_page(cadre_id, ledger_error=localize(error.message)), 400


def _ledger_filter() -> dict[str, Any]:
    """The ledger form's filter, checked before anything is read (so a refused one reads nothing twice)."""
    since = date_arg("from")
    until = date_arg("to")
    queries.check_period(since, until)
    types = list_arg("type")
    ledgers.check_types(types, ledgers.ENTRY_TYPES)
    return {"since": since, "until": until, "types": types}


@bp.post("/cadres/<cadre_id>/reports")
@login_required
def add_report(cadre_id: str) -> Any:
    if not first_sending():  # a double click or a resend: the report's log keeps every entry, and a late one admonishes
        flash(_("此表单已提交过，未重复登记报告。"), "info")
        return redirect(url_for("cadre_pages.show", cadre_id=cadre_id), 303)
    try:
        with sending_refused_gives_back():
            report = personal_reports.add_report(services(), actor(), cadre_id,
                                                 parse_submission(personal_reports.REPORT_FORM, request.form))
    except Invalid as error:
        return _cadre_page(cadre_id, request.form, error.fields or {"_form": error.message}), 422
    if report["case_id"]:
        flash(_("已登记报告；逾期或应报未报，已启动诫勉（案件 #%(case)s）。", case=report["case_id"]), "info")
    else:
        flash(_("已登记个人有关事项报告。"), "success")
    return redirect(url_for("cadre_pages.show", cadre_id=cadre_id))


# The report forms' labels in the reader's language (the schemas' titles are Chinese).
REPORT_LABELS = {"kind": _l("类别"), "event_on": _l("变动发生日期"), "reported_on": _l("报告日期（或发现日期）"),
                 "summary": _l("变动情况"), "found_unreported": _l("应报未报，事后发现"), "reason": _l("更正理由")}
# The new-cadre form's labels, likewise (cadres.CADRE_FORM's titles are Chinese).
CADRE_LABELS = {"id": _l("编号"), "name": _l("姓名"), "unit": _l("单位"), "post": _l("职务"), "post_level": _l("职级"),
                "post_started_on": _l("任现职时间")}


@bp.post("/cadres/<cadre_id>/reports/<int(max=2147483647):report_id>/correct")
@action_required("personal_report.write")
def correct_report(cadre_id: str, report_id: int) -> Any:
    """The 更正 form beside a report: a refusal shows the page again with that report's form open, what was typed
    kept and each problem beside its field, as the add form does."""
    data = parse_submission(personal_reports.CORRECT_FORM, request.form)
    base = plain_int(request.form.get("base_revision", ""))  # the revision the form was filled from (hidden)
    try:
        corrected = personal_reports.correct_report(services(), actor(), cadre_id, report_id, data, base)
    except Invalid as error:  # resubmitted, it is still checked against the revision the clerk started from
        refused = Refused(report_id, request.form, error.fields or {"_form": error.message}, base)
        return _cadre_page(cadre_id, refused=refused), 422
    except Conflict as error:
        # Corrected by someone else meanwhile: the table shows the report as it now stands, the form keeps what
        # was typed and is based on the current revision, so a resubmit made after reading it is taken.
        refused = Refused(report_id, request.form, {"_form": error.message}, conflict=True)
        return _cadre_page(cadre_id, refused=refused), 409
    flash(_("已更正个人有关事项报告。"), "success")
    _flash_admonishment(corrected)
    return redirect(url_for("cadre_pages.show", cadre_id=cadre_id) + "#personal-reports")


@dataclass(frozen=True)
class Refused:
    """A correction refused: the report, what was sent for it and the problems, shown in that report's form."""

    report_id: int
    values: Any
    errors: dict[str, str]
    base: int | None = None  # the revision the form is based on: the report's current one when None
    conflict: bool = False  # refused because another clerk corrected the report meanwhile


def _flash_admonishment(corrected: dict[str, Any]) -> None:
    """What the correction did to the report's admonishment: opened one, or left its running one to review."""
    if corrected["admonishment"] == "opened":
        flash(_("更正后属逾期或应报未报，已启动诫勉（案件 #%(case)s）。", case=corrected["case_id"]), "info")
    elif corrected["admonishment"] == "stays_open":
        flash(_("更正后已不属逾期或应报未报，但关联的诫勉案件不会自动撤销，仍在办理，请纪检人员审查。"), "info")


def _cadre_page(cadre_id: str, values: Any = None, errors: dict[str, str] | None = None,
                ledger_filter: dict[str, Any] | None = None, ledger_error: str | None = None,
                refused: Refused | None = None) -> str:
    form, chosen = personal_reports.REPORT_FORM, ledger_filter or {}
    cadre = tracker.cadre_file(services(), actor(), cadre_id, label, chosen)
    correct_forms = {r["id"]: _correct_form(r, refused) for r in cadre["personal_reports"]}
    if refused is not None and refused.report_id not in correct_forms:  # nowhere to show its problems
        raise personal_reports.unknown_report(refused.report_id)
    return render_template("cadre.html", cadre=cadre, report_fields=_report_fields(form, values, errors),
                           report_errors=form_errors(errors, form), ledger_filter=chosen,
                           ledger_error=ledger_error or localize(cadre.get("ledger_refused")),
                           correct_forms=correct_forms)


def _correct_form(report: dict[str, Any], refused: Refused | None) -> dict[str, Any]:
    """A report's 更正 form (macros/ui.html `report_correction_form`), prefilled with its stored values, or open
    with what was sent and its problems when this report's correction was refused; `base`: the report's revision
    it is corrected from (sent back as `base_revision`)."""
    form = personal_reports.CORRECT_FORM
    if refused is None or refused.report_id != report["id"]:
        return {"fields": _report_fields(form, report), "errors": [], "open": False, "base": report["revision"],
                "conflict": False}
    base = report["revision"] if refused.base is None else refused.base
    return {"fields": _report_fields(form, refused.values, refused.errors),
            "errors": form_errors(refused.errors, form), "open": True, "base": base,
            "conflict": refused.conflict}


def _report_fields(schema: dict[str, Any], values: Any = None, errors: dict[str, str] | None = None) -> list[Field]:
    """A report form's fields, labelled and its kinds named in the reader's language."""
    return _in_reader_language(fields_of(schema, values, errors), REPORT_LABELS, "kind", "report_kind")


def _in_reader_language(fields: list[Field], labels: dict[str, Any], coded: str, table: str) -> list[Field]:
    """Fields labelled by `labels`, and the options of the field `coded` named by the labels' `table`."""
    for f in fields:
        f.label = str(labels.get(f.name, f.label))
        if f.name == coded:
            f.options = [(code, label(table, code)) for code, _name in f.options]
    return fields


@bp.route("/cadres/new", methods=["GET", "POST"])
@area_required("cadre_new")
def new() -> Any:
    if request.method == "GET":
        return _form_page()
    if not first_sending():  # a double click or a resend: without a typed id, each post would be a new cadre
        flash(_("此表单已提交过，未重复登记干部。"), "info")
        return redirect(url_for("cadre_pages.index"), 303)
    try:
        with sending_refused_gives_back():
            cadre = cadres.create_cadre(services(), actor(), parse_submission(cadres.CADRE_FORM, request.form))
    except Invalid as error:
        return _form_page(request.form, error.fields or {"_form": error.message}), 422
    except Conflict as error:  # the id is taken: keep what was typed and say so beside the id
        return _form_page(request.form, {"id": error.message}), 409
    flash(_("已登记干部 %(name)s。", name=cadre["name"]), "success")
    return redirect(url_for("cadre_pages.show", cadre_id=cadre["id"]))


def _form_page(values: Any = None, errors: dict[str, str] | None = None) -> str:
    return render_template("cadre_new.html", fields=_cadre_fields(values, errors),
                           form_errors=form_errors(errors, cadres.CADRE_FORM))


def _cadre_fields(values: Any, errors: dict[str, str] | None) -> list[Field]:
    """The new-cadre form's fields, labelled and its post levels named in the reader's language."""
    return _in_reader_language(fields_of(cadres.CADRE_FORM, values, errors), CADRE_LABELS, "post_level", "post_level")


@bp.get("/cadres/<cadre_id>/ledger.pdf")
@deliberate_read
@login_required
def ledger_pdf(cadre_id: str) -> Any:
    with force_locale(DEFAULT):  # a printed ledger is a Chinese document, whatever the page's language
        document = ledgers.ledger_document(services(), actor(), cadre_id, request.args.get("kind"),
                                           date_arg("from"), date_arg("to"), label, list_arg("type"))
    return pdf_response(document, f"ledger-{cadre_id}-{document['ledger_kind']}.pdf")
