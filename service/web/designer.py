"""The designers' pages: the process catalogue, the bpmn-js modeler with validate and deploy, read-only versions.

The modeler's script posts the diagram here and gets JSON back; every problem comes in the page's one
language, with the name and id of its element (never an XML line: the designer never sees the XML).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from flask_babel import gettext as _

from service.api import error_body, status_of
from service.api.casework import content_disposition
from service.api.params import MAX_ID, int_arg
from service.errors import BadRequest, ServiceError
from service.labels import label
from service.usecases import designs, processes

from . import MODELER_CSP
from .access import actor, area_required, services
from .forms import fields_of
from .i18n import current_language, localize

bp = Blueprint("designer", __name__, url_prefix="/designer")


@bp.get("")
@area_required("designer")
def index() -> Any:
    return render_template("designer/index.html", catalog=designs.process_catalog(services(), actor()))


@bp.route("/new", methods=["GET", "POST"])
@area_required("designer")
def new() -> Any:
    """The new-process form; submitted, the modeler on the new process's first diagram (nothing stored yet)."""
    if request.method == "GET":
        return render_template("designer/new.html", values={}, messages=[], fields={})
    upload = request.files.get("bpmn")
    try:
        draft = designs.start_design(services(), actor(), request.form.get("key", ""), request.form.get("name", ""),
                                     upload.read() if upload is not None and upload.filename else None)
    except ServiceError as error:
        return _new_form_refused(error)
    return _modeler(draft, draft["xml"])


def _new_form_refused(error: ServiceError) -> tuple[str, int]:
    """The form again with what was typed, the refusal in the page's language beside its field or above."""
    body = error_body(error)["error"]
    fields = {name: localize(text) for name, text in body.get("fields", {}).items()}
    messages = [] if fields else [localize(body["message"])]
    messages += [problem_view(problem)["message"] for problem in body.get("errors", [])]
    values = {name: request.form.get(name, "") for name in ("key", "name")}
    return render_template("designer/new.html", values=values, messages=messages, fields=fields), status_of(error)


@bp.get("/<key>/edit")
@area_required("designer")
def edit(key: str) -> Any:
    process = processes.get_process(services(), actor(), key)
    # The diagram of the version the page names: a deploy in between must not slip in under the older number.
    xml = processes.get_bpmn(services(), actor(), key, process["version"])
    return _modeler(process, xml)


def _modeler(process: dict[str, Any], xml: str) -> tuple[str, dict[str, str]]:
    """The modeler's page, the one page whose policy allows the inline styles bpmn-js writes."""
    return render_template("designer/modeler.html", process=process, xml=xml), {"Content-Security-Policy": MODELER_CSP}


@bp.get("/<key>/versions/<int(max=2147483647):version>")
@area_required("designer")
def version(key: str, version: int) -> Any:
    process = processes.get_process(services(), actor(), key)
    xml = processes.get_bpmn(services(), actor(), key, version)
    return render_template("designer/version.html", process=process, version=version, xml=xml)


@bp.get("/<key>/versions/<int(max=2147483647):version>.bpmn")
@area_required("designer")
def download(key: str, version: int) -> Any:
    xml = processes.get_bpmn(services(), actor(), key, version)
    return Response(xml, mimetype="application/xml",
                    headers={"Content-Disposition": content_disposition(f"{key}-v{version}.bpmn")})


@bp.post("/<key>/deploy")
@area_required("designer")
def deploy(key: str) -> Any:
    """Validate and deploy the modeler's XML; an unchanged diagram creates nothing."""
    try:
        deployed, created = designs.deploy_edited(services(), actor(), key, *_submitted(),
                                                  int_arg("base_version", minimum=0, maximum=MAX_ID))
    except ServiceError as error:
        return _refused(error)
    return jsonify({"ok": True, "created": created, **_localized(deployed)}), 201


@bp.post("/<key>/validate")
@area_required("designer")
def validate(key: str) -> Any:
    """Check the modeler's XML exactly as deploy would; deploy nothing."""
    try:
        checked = designs.validate_edited(services(), actor(), key, *_submitted())
    except ServiceError as error:
        return _refused(error)
    return jsonify({"ok": True, **_localized(checked)})


@bp.post("/form-preview")
@area_required("designer")
def form_preview() -> Any:
    """A form schema rendered as the task page renders it, or deploy's problems with it."""
    schema, problems = designs.preview_form(services(), actor(), request.form.get("schema", ""))
    if schema is None or problems:  # a form deploy would refuse previews as refused, not as fine
        return jsonify({"ok": False, "errors": [problem_view(p) for p in problems]})
    placeholders = {name: [_("（%(role)s的用户）", role=label("role", str(prop["x-user-role"])))]
                    for name, prop in schema.get("properties", {}).items()
                    if isinstance(prop, dict) and prop.get("x-user-role")}  # the task page lists real users
    html = render_template("designer/_form_preview.html", schema=schema,
                           fields=fields_of(schema, user_choices=placeholders))
    return jsonify({"ok": True, "html": html})


def problem_view(problem: dict[str, Any]) -> dict[str, Any]:
    """A deploy problem in the page's language, by element name and id, without its XML line."""
    text = problem.get(f"message_{current_language()}") or localize(problem.get("message"))
    found = {"message": text, "element_id": problem.get("element_id"),
             "element_name": problem.get("element_name"), "severity": problem.get("severity", "error")}
    return {k: v for k, v in found.items() if v is not None}


def _localized(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "warnings": [problem_view(p) for p in result.get("warnings", [])]}


def _refused(error: ServiceError) -> tuple[Response, int]:
    body = error_body(error)["error"]
    body["message"] = localize(body["message"])
    body["errors"] = [problem_view(p) for p in body.get("errors", [])]
    if "fields" in body:
        body["fields"] = {name: localize(text) for name, text in body["fields"].items()}
    return jsonify({"ok": False, **body}), status_of(error)


def _submitted() -> tuple[bytes, dict[str, bytes]]:
    xml = request.form.get("bpmn", "")
    if not xml.strip():
        raise BadRequest("the diagram is empty (图为空)")
    dmns = {f.filename: f.read() for f in request.files.getlist("dmn") if f.filename}
    return xml.encode(), dmns
