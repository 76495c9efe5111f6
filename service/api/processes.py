"""HTTP views for process definitions and their versions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from service.errors import BadRequest
from service.usecases import processes, versions

from .auth import json_body, requires, services
from .params import MAX_ID, flag_arg, int_arg, int_field

bp = Blueprint("processes", __name__)


@bp.get("/processes")
@requires()
def index() -> Any:
    return jsonify(processes.list_processes(services(), g.actor))


@bp.get("/processes/<key>")
@requires()
def show(key: str) -> Any:
    return jsonify(processes.get_process(services(), g.actor, key))


@bp.get("/processes/<key>/bpmn")
@requires()
def bpmn(key: str) -> Any:
    xml = processes.get_bpmn(services(), g.actor, key, int_arg("version", maximum=MAX_ID))
    return Response(xml, mimetype="application/xml")


@bp.post("/processes/<key>/versions")
@requires()
def deploy(key: str) -> Any:
    bpmn_file, dmns = _uploaded_files()
    version, created = processes.deploy_version(services(), g.actor, key, bpmn_file, dmns,
                                                int_arg("base_version", minimum=0, maximum=MAX_ID))
    # API.md promises 201 {key, version}; `created` false says the content equals the newest version.
    return jsonify({**version, "created": created}), 201


@bp.post("/processes/<key>/validate")
@requires()
def validate(key: str) -> Any:
    bpmn_file, dmns = _uploaded_files()
    return jsonify(processes.validate_version(services(), g.actor, key, bpmn_file, dmns))


@bp.post("/processes/<key>/migrate")
@requires()
def migrate(key: str) -> Any:
    body = json_body({"to_version", "from_version"}) if request.get_data() else {}
    return jsonify(versions.migrate_open_cases(services(), g.actor, key, int_field(body, "to_version"),
                                               int_field(body, "from_version"), flag_arg("dry_run")))


@bp.get("/processes/<key>/versions/<int(max=2147483647):version>/diff")
@requires()
def diff(key: str, version: int) -> Any:
    against = int_arg("against", version - 1 if version > 1 else None, maximum=MAX_ID)
    if against is None:
        raise BadRequest("give ?against=<version> (请指定对比版本)")
    return jsonify(versions.version_diff(services(), g.actor, key, version, against))


@bp.get("/processes/<key>/versions/<int(max=2147483647):version>/export")
@requires()
def export(key: str, version: int) -> Any:
    name, content = versions.export_version(services(), g.actor, key, version)
    return Response(content, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _uploaded_files() -> tuple[bytes, dict[str, bytes]]:
    if request.mimetype == "multipart/form-data":
        files = [f for f in request.files.values()]
        bpmns = [f for f in files if (f.filename or "").endswith(".bpmn")]
        if len(bpmns) != 1:
            raise BadRequest("upload exactly one .bpmn file (请上传且仅上传一个 .bpmn 文件)")
        dmns = {f.filename: f.read() for f in files if f.filename and f.filename.endswith(".dmn")}
        return bpmns[0].read(), dmns
    body = request.get_data()
    if not body:
        raise BadRequest("send the BPMN XML as the body (请求体应为 BPMN XML)")
    return body, {}
