"""Use cases of the designer's pages: the process catalogue, a new process's first diagram, and deploying a diagram
edited in the browser."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from service.db.models import Case, ProcessVersion
from service.errors import Conflict, DeploymentRejected, Invalid
from workflows.engine import (
    MAX_ELEMENT_NAME,
    DeploymentError,
    check_process_id,
    decision_ids,
    new_diagram,
    read_form_schema,
    referenced_decisions,
    renamed_diagram,
)

from . import policy, processes, queries, views
from .context import Actor, Services


def process_catalog(services: Services, actor: Actor) -> list[dict[str, Any]]:
    """Every process with all its versions (newest first) and how many cases are open on it."""
    policy.require(actor, "process.read")  # the counts cover every case: aggregates, which designers may read
    with services.db.unit_of_work(write=False) as session:
        rows = list(session.scalars(select(ProcessVersion).order_by(ProcessVersion.process_key,
                                                                    ProcessVersion.version.desc())))
        open_counts = dict(session.execute(select(Case.process_key, func.count()).where(Case.status == "open")
                                           .group_by(Case.process_key)).all())
    catalog: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = catalog.setdefault(row.process_key, {**views.version_view(row), "versions": [],
                                                     "open_cases": open_counts.get(row.process_key, 0)})
        entry["versions"].append(views.version_view(row))
    return list(catalog.values())


def deploy_edited(services: Services, actor: Actor, key: str, bpmn: bytes, uploaded_dmns: dict[str, bytes],
                  based_on: int | None = None) -> tuple[dict[str, Any], bool]:
    """Deploy a diagram edited in the modeler from version `based_on` (0: a new process) with the DMN tables it
    calls.

    The tables come from the newest version, replaced or extended by any uploaded with it, and
    only those the diagram references are kept (as `cadreflow deploy` does).
    """
    return processes.deploy_version(services, actor, key, bpmn, _tables(services, key, bpmn, uploaded_dmns),
                                    based_on)


def validate_edited(services: Services, actor: Actor, key: str, bpmn: bytes,
                    uploaded_dmns: dict[str, bytes]) -> dict[str, Any]:
    """Check a diagram edited in the modeler exactly as deploying it would, deploying nothing."""
    return processes.validate_version(services, actor, key, bpmn, _tables(services, key, bpmn, uploaded_dmns))


def _tables(services: Services, key: str, bpmn: bytes, uploaded_dmns: dict[str, bytes]) -> dict[str, bytes]:
    return _referenced(bpmn, {**_newest_dmns(services, key), **uploaded_dmns})


def _newest_dmns(services: Services, key: str) -> dict[str, bytes]:
    with services.db.unit_of_work(write=False) as session:
        newest = queries.newest_version(session, key)
        return {name: text.encode() for name, text in (newest.dmn_files if newest else {}).items()}


def _referenced(bpmn: bytes, dmns: dict[str, bytes]) -> dict[str, bytes]:
    try:
        wanted = referenced_decisions(bpmn)
        return {name: content for name, content in dmns.items() if decision_ids(content) & wanted}
    except DeploymentError:  # unreadable XML: deploy_version reports it with every other problem
        return dmns


def preview_form(services: Services, actor: Actor, text: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A form schema read as deploy reads it, with the problems deploy would report (the form editor's preview)."""
    policy.require(actor, "process.deploy")  # a form is edited to be deployed
    schema, problems = read_form_schema(text, float(services.settings["DEPLOY_LIMITS"]["max_form_check_seconds"]))
    return schema, [problem.as_dict() for problem in problems]


def start_design(services: Services, actor: Actor, key: str, name: str, upload: bytes | None) -> dict[str, Any]:
    """The first diagram of a new process, for the modeler; nothing is stored until the designer deploys it.

    The key is held to deploy's rules (its length, the BPMN schema's rule for an id) and must be free. An uploaded
    file passes deploy's checks on hostile files and is taken over under the key; without one, a template that
    deploys as it is (checked here exactly as deploy would check it).
    """
    policy.require(actor, "process.deploy")
    key, name = key.strip(), " ".join(name.split())
    _check_new_key(services, key)
    if not 0 < len(name) <= MAX_ELEMENT_NAME:
        raise Invalid(f"a process name has 1 to {MAX_ELEMENT_NAME} characters "
                      f"(流程名称应为 1 至 {MAX_ELEMENT_NAME} 个字符)",
                      {"name": f"1 至 {MAX_ELEMENT_NAME} 个字符 (1 to {MAX_ELEMENT_NAME} characters)"})
    try:
        if upload is None:
            xml = new_diagram(key, name, _template_lane(services))
            processes.validate_version(services, actor, key, xml, {})
        else:
            processes.check_size(services, upload, {})
            xml = renamed_diagram(upload, key, name)
    except DeploymentError as exc:
        problems = [problem.as_dict() for problem in exc.problems]
        raise DeploymentRejected("the file cannot be used (无法使用此文件)", problems) from exc
    return {"key": key, "name": name, "version": None, "xml": xml.decode()}


def _check_new_key(services: Services, key: str) -> None:
    processes.check_key(key)
    try:
        check_process_id(key)
    except DeploymentError as exc:
        message = exc.problems[0].message
        raise Invalid(message, {"key": message}) from exc
    if key in processes.deployed_keys(services):
        message = (f"a process {key} already exists: choose another key, or edit that process "
                   f"(流程 {key} 已存在，请换一个标识或编辑该流程)")
        raise Conflict(message, {"key": message})


def _template_lane(services: Services) -> str:
    """The template's one lane: `org_dept`, or the first role that may hold tasks if an admin has none of that name."""
    roles = processes.roles_for_lanes(services)
    return "org_dept" if "org_dept" in roles else roles[0]
