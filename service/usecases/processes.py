"""Use cases on process definitions: deploy a version, list, read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import ProcessVersion, utcnow
from service.errors import DeploymentRejected, Forbidden, NotFound
from workflows.engine import (
    DeploymentError,
    compile_process,
    decision_ids,
    process_ids,
    referenced_decisions,
)

from . import views
from .context import Actor, Services


def deploy_version(services: Services, actor: Actor, key: str, bpmn: bytes,
                   dmns: dict[str, bytes]) -> tuple[dict[str, Any], bool]:
    """Deploy a new version of a process; identical content is not deployed twice."""
    if not actor.has_any("designer"):
        raise Forbidden("only designers may deploy processes (仅流程设计员可部署流程)")
    _check_size(services, bpmn, dmns)
    try:
        definition = compile_process(key, bpmn, dmns, services.roles)
    except DeploymentError as exc:
        raise DeploymentRejected("the process does not validate (流程定义校验未通过)",
                                 [p.as_dict() for p in exc.problems]) from exc
    with services.db.unit_of_work() as session:
        existing = session.scalar(select(ProcessVersion).where(
            ProcessVersion.process_key == key, ProcessVersion.content_hash == definition.content_hash))
        if existing is not None:
            return views.version_view(existing), False
        newest = session.scalar(select(func.max(ProcessVersion.version)).where(ProcessVersion.process_key == key))
        version = ProcessVersion(
            process_key=key, version=(newest or 0) + 1, name=definition.name, bpmn_xml=bpmn.decode(),
            dmn_files={name: content.decode() for name, content in dmns.items()},
            content_hash=definition.content_hash, deployed_by=actor.username, deployed_at=utcnow())
        session.add(version)
        session.flush()
        view = views.version_view(version)
        view["warnings"] = [p.as_dict() for p in definition.warnings]
        return view, True


def _check_size(services: Services, bpmn: bytes, dmns: dict[str, bytes]) -> None:
    limit = int(services.settings["MAX_UPLOAD_BYTES"])
    if len(bpmn) + sum(map(len, dmns.values())) > limit:
        raise DeploymentRejected("upload too large (文件过大)",
                                 [{"message": f"files exceed {limit} bytes (超过 {limit} 字节)"}])


def deploy_directory(services: Services, actor: Actor, folder: Path) -> list[tuple[dict[str, Any], bool]]:
    """Deploy every BPMN file of a folder, each with the DMN files it calls."""
    return deploy_files(services, actor, sorted(folder.iterdir()))


def deploy_files(services: Services, actor: Actor, paths: list[Path]) -> list[tuple[dict[str, Any], bool]]:
    """Deploy every .bpmn among the paths, each with the .dmn files among them that it calls."""
    dmn_files = {p.name: p.read_bytes() for p in paths if p.suffix == ".dmn"}
    results = []
    for path in (p for p in paths if p.suffix == ".bpmn"):
        bpmn = path.read_bytes()
        wanted = referenced_decisions(bpmn)
        dmns = {name: content for name, content in dmn_files.items() if decision_ids(content) & wanted}
        for key in process_ids(bpmn):
            results.append(deploy_version(services, actor, key, bpmn, dmns))
    return results


def list_processes(services: Services, actor: Actor) -> list[dict[str, Any]]:
    """The newest version of each process."""
    with services.db.unit_of_work(write=False) as session:
        newest = select(ProcessVersion.process_key, func.max(ProcessVersion.version).label("v")).group_by(
            ProcessVersion.process_key).subquery()
        rows = session.scalars(select(ProcessVersion).join(newest, (ProcessVersion.process_key == newest.c.process_key)
                                                           & (ProcessVersion.version == newest.c.v))
                               .order_by(ProcessVersion.process_key))
        return [views.version_view(v) for v in rows]


def get_process(services: Services, actor: Actor, key: str) -> dict[str, Any]:
    """The newest version of a process, with the list of all its versions and its forms."""
    with services.db.unit_of_work(write=False) as session:
        versions = _versions(session, key)
        newest = versions[-1]
        definition = services.definitions.get(newest)
        return {**views.version_view(newest), "versions": [views.version_view(v) for v in versions],
                "start_form": definition.start_form, "forms": definition.forms}


def get_bpmn(services: Services, actor: Actor, key: str, version: int | None) -> str:
    """The BPMN XML of a version (the newest by default)."""
    with services.db.unit_of_work(write=False) as session:
        versions = _versions(session, key)
        if version is None:
            return versions[-1].bpmn_xml
        for row in versions:
            if row.version == version:
                return row.bpmn_xml
        raise NotFound(f"process {key} has no version {version} (版本不存在)")


def _versions(session: Session, key: str) -> list[ProcessVersion]:
    versions = list(session.scalars(select(ProcessVersion).where(ProcessVersion.process_key == key)
                                    .order_by(ProcessVersion.version)))
    if not versions:
        raise NotFound(f"process {key} not found (流程不存在)")
    return versions
