"""The designers' pages: the process catalogue, the bpmn-js modeler with deploy, read-only versions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from service.api import error_body, status_of
from service.errors import BadRequest, ServiceError
from service.usecases import designs, processes

from .access import actor, area_required, services
from .i18n import localize

bp = Blueprint("designer", __name__, url_prefix="/designer")


@bp.get("")
@area_required("designer")
def index() -> Any:
    return render_template("designer/index.html", catalog=designs.process_catalog(services(), actor()))


@bp.get("/<key>/edit")
@area_required("designer")
def edit(key: str) -> Any:
    process = processes.get_process(services(), actor(), key)
    xml = processes.get_bpmn(services(), actor(), key, None)
    return render_template("designer/modeler.html", process=process, xml=xml)


@bp.get("/<key>/versions/<int:version>")
@area_required("designer")
def version(key: str, version: int) -> Any:
    process = processes.get_process(services(), actor(), key)
    xml = processes.get_bpmn(services(), actor(), key, version)
    return render_template("designer/version.html", process=process, version=version, xml=xml)


@bp.get("/<key>/versions/<int:version>.bpmn")
@area_required("designer")
def download(key: str, version: int) -> Any:
    xml = processes.get_bpmn(services(), actor(), key, version)
    return Response(xml, mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{key}-v{version}.bpmn"'})


@bp.post("/<key>/deploy")
@area_required("designer")
def deploy(key: str) -> Any:
    """Validate and deploy the modeler's XML; answers JSON for the page's script."""
    try:
        bpmn, dmns = _submitted()
        deployed, created = designs.deploy_edited(services(), actor(), key, bpmn, dmns)
    except ServiceError as error:
        body = error_body(error)["error"]
        body["message"] = localize(body["message"])
        return jsonify({"ok": False, **body}), status_of(error)
    return jsonify({"ok": True, "created": created, **deployed}), 201 if created else 200


def _submitted() -> tuple[bytes, dict[str, bytes]]:
    xml = request.form.get("bpmn", "")
    if not xml.strip():
        raise BadRequest("the diagram is empty (图为空)")
    dmns = {f.filename: f.read() for f in request.files.getlist("dmn") if f.filename}
    return xml.encode(), dmns
