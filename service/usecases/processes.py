"""Use cases on process definitions: deploy a version, list, read."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import workflows.glue as glue
from service.db.models import ProcessVersion, utcnow
from service.errors import CaseIncident, Conflict, DeploymentRejected, Invalid, NotFound
from workflows.engine import (
    DeployLimits,
    DeploymentError,
    Problem,
    ProcessDefinition,
    called_processes,
    compile_process,
    decision_ids,
    element_names,
    lane_roles,
    layout_digest,
    meaning_digest,
    process_ids,
    referenced_decisions,
)

from . import policy, queries, schedules, views
from .context import Actor, Services
from .roles import known_codes

_SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
KEY_LENGTH = 100  # ProcessVersion.process_key


def deploy_version(services: Services, actor: Actor, key: str, bpmn: bytes, dmns: dict[str, bytes],
                   based_on: int | None = None) -> tuple[dict[str, Any], bool]:
    """Deploy a new version of a process, unless one of its versions already is this diagram.

    Versions are deduplicated, and "the same" means the same process drawn the same way, not the same
    bytes (documents.py): a diagram saved again by another modeler, or by the same one untouched, is no
    change. A new layout of the same process is a new version marked `change: "layout"`; running cases
    need no migration for it. A release deploying bpmn/ thus never undoes what a designer deployed since.
    `based_on` is the version the diagram was edited from (0: a new process); when another version was
    deployed since, the deploy is refused rather than silently replacing that designer's work.
    """
    definition, dmns = _compiled(services, actor, key, bpmn, dmns)
    upload = (definition.content_hash, meaning_digest(bpmn, dmns), layout_digest(bpmn))
    with services.db.unit_of_work() as session:
        versions = _versions_of(session, key)
        change, compared = _compare(versions, *upload)
        if change == "none" and compared is not None:
            return {**views.version_view(compared), "change": change, "newest": versions[-1].version}, False
        _require_newest(key, versions[-1].version if versions else 0, based_on)
        version = ProcessVersion(
            process_key=key, version=versions[-1].version + 1 if versions else 1, name=definition.name,
            bpmn_xml=bpmn.decode(), dmn_files={name: content.decode() for name, content in dmns.items()},
            content_hash=definition.content_hash, deployed_by=actor.username, deployed_at=utcnow())
        session.add(version)
        _flush_new(session)
        policy.store_lanes(session, version.id, lane_roles(bpmn, key))
        _plan_timer_start(services, session, version)
        return {**views.version_view(version), "change": change, "newest": version.version,
                "warnings": _problem_views(definition.warnings, bpmn)}, True


def _require_newest(key: str, newest: int, based_on: int | None) -> None:
    """Refuse a deploy edited from an older version than the newest (another designer deployed meanwhile); two
    deploys at the same moment are told apart by the versions' unique number instead (a WrittenMeanwhile)."""
    if based_on is None or based_on == newest:
        return
    if based_on == 0:
        raise Conflict(f"process {key} was created by someone else meanwhile (version {newest}); choose another "
                       f"key, or open it in the designer (流程标识 {key} 已被他人占用，现有第 {newest} 版；"
                       "请换一个标识，或在设计器中打开该流程)")
    raise Conflict(f"version {newest} of {key} was deployed after version {based_on}, which this diagram was "
                   "edited from; open the newest version and make the change there, or compare the two first "
                   f"(本图基于第 {based_on} 版编辑，此后他人已部署第 {newest} 版；"
                   "请打开最新版本重新修改，或先对比两版)")


def validate_version(services: Services, actor: Actor, key: str, bpmn: bytes,
                     dmns: dict[str, bytes]) -> dict[str, Any]:
    """Check a diagram exactly as deploy would, and say what deploying it would change; deploy nothing.

    `change` is new | none | layout | process; `version` is the version it equals (none) or the newest.
    """
    definition, dmns = _compiled(services, actor, key, bpmn, dmns)
    upload = (definition.content_hash, meaning_digest(bpmn, dmns), layout_digest(bpmn))
    with services.db.unit_of_work(write=False) as session:
        versions = _versions_of(session, key)
        change, compared = _compare(versions, *upload)
        return {"key": key, "name": definition.name, "valid": True, "change": change,
                "version": compared.version if compared else None,
                "newest": versions[-1].version if versions else None,
                "warnings": _problem_views(definition.warnings, bpmn)}


def _compiled(services: Services, actor: Actor, key: str, bpmn: bytes,
              dmns: dict[str, bytes]) -> tuple[ProcessDefinition, dict[str, bytes]]:
    """The checked definition and its DMN files under safe names; every problem at once otherwise."""
    policy.require(actor, "process.deploy")
    check_key(key)
    dmns = _dmn_files(dmns)
    check_size(services, bpmn, dmns)
    try:
        definition = compile_process(key, bpmn, dmns, roles_for_lanes(services), operations=glue.SIGNATURES,
                                     limits=DeployLimits(**services.settings["DEPLOY_LIMITS"]),
                                     processes=deployed_keys(services))
    except DeploymentError as exc:
        raise DeploymentRejected("the process does not validate (流程定义校验未通过)",
                                 _problem_views(exc.problems, bpmn)) from exc
    return definition, dmns


def _compare(versions: list[ProcessVersion], content_hash: str, meaning: str,
             drawing: str) -> tuple[str, ProcessVersion | None]:
    """What deploying changes (new | none | layout | process), and the version it equals or else the newest."""
    if not versions:
        return "new", None
    for version in reversed(versions):
        if version.content_hash == content_hash or _fingerprint(version) == (meaning, drawing):
            return "none", version
    newest = versions[-1]
    return ("layout" if _fingerprint(newest)[0] == meaning else "process"), newest


def _fingerprint(version: ProcessVersion) -> tuple[str, str]:
    """What a stored version means and how it is drawn (read from its files: no schema change needed)."""
    return _digests(version.bpmn_xml, tuple(sorted(version.dmn_files.items())))


@lru_cache(maxsize=1024)  # versions never change: each is parsed once per process, not once per deploy
def _digests(bpmn: str, dmns: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    tables = {name: text.encode() for name, text in dmns}
    return meaning_digest(bpmn.encode(), tables), layout_digest(bpmn.encode())


def _flush_new(session: Session) -> None:
    """Insert the new version; a deploy of the same process at the same moment makes it a 409, not a 500."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("another version of this process was deployed at the same moment; try again "
                       "(同时有其他版本部署，请重试)") from exc


def _problem_views(problems: Iterable[Problem], bpmn: bytes) -> list[dict[str, Any]]:
    """Problems as the API gives them, each with the name of its element (designers know elements by name)."""
    try:
        names = element_names(bpmn)
    except DeploymentError:  # unreadable XML: its problem says so, and there are no elements to name
        names = {}
    views_ = []
    for problem in problems:
        view = problem.as_dict()
        if problem.element_id in names:
            view["element_name"] = names[problem.element_id]
        views_.append(view)
    return views_


def _plan_timer_start(services: Services, session: Session, version: ProcessVersion) -> None:
    """A timer start event that cannot be scheduled is the designer's problem, reported like any other."""
    try:
        schedules.plan(services, session, version)
    except CaseIncident as exc:
        raise DeploymentRejected("the process does not validate (流程定义校验未通过)",
                                 [{"message": exc.message, "severity": "error"}]) from exc


def roles_for_lanes(services: Services) -> list[str]:
    """The roles a lane may name: every role whose holders may hold tasks (a designer's role may not, or a
    designer could draw themselves into a lane and read that process's cases)."""
    return [code for code in known_codes(services) if code not in policy.NOT_APPROVERS]


def deployed_keys(services: Services) -> set[str]:
    """The keys of every deployed process (what call activities may call)."""
    with services.db.unit_of_work(write=False) as session:
        return set(session.scalars(select(ProcessVersion.process_key).distinct()))


def safe_file_name(name: Any, suffix: str) -> str | None:
    """A file's base name if it is letters, digits, `_ . -` ending in `suffix` (no folders, no dot first), else None."""
    base = re.split(r"[\\/]", name if isinstance(name, str) else "")[-1]
    return base if _SAFE_FILE_NAME.fullmatch(base) and base.endswith(suffix) and len(base) > len(suffix) else None


def _dmn_files(dmns: dict[str, bytes]) -> dict[str, bytes]:
    """The uploaded DMN files under their safe base names; any other name is refused (422)."""
    safe = {name: safe_file_name(name, ".dmn") for name in dmns}
    bad = sorted(name for name, base in safe.items() if base is None)
    if bad or len(set(safe.values())) < len(safe):
        raise Invalid("DMN file names must be letters, digits, _ . - ending in .dmn, each once "
                      "(DMN 文件名须由字母、数字或 _ . - 组成并以 .dmn 结尾，且不重复)",
                      {"dmn": ", ".join(bad) or "重复的文件名 (duplicate names)"})
    return {base: dmns[name] for name, base in safe.items() if base is not None}


def check_key(key: str) -> None:
    """A process key's length, as its column holds it (the BPMN schema's rule for an id is deploy's XSD check)."""
    if not 0 < len(key) <= KEY_LENGTH:
        raise Invalid(f"a process key has 1 to {KEY_LENGTH} characters (流程标识长度应为 1 至 {KEY_LENGTH})",
                      {"key": f"1..{KEY_LENGTH}"})


def check_size(services: Services, bpmn: bytes, dmns: dict[str, bytes]) -> None:
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
    bpmn_files = [(p, p.read_bytes()) for p in paths if p.suffix == ".bpmn"]
    for name, content in dmn_files.items():
        _readable(name, content, decision_ids)
    for path, content in bpmn_files:
        _readable(path.name, content, process_ids)
    results = []
    for _path, bpmn in _callees_first(bpmn_files):
        wanted = referenced_decisions(bpmn)
        dmns = {name: content for name, content in dmn_files.items() if decision_ids(content) & wanted}
        for key in process_ids(bpmn):
            results.append(deploy_version(services, actor, key, bpmn, dmns))
    return results


def _readable(name: str, content: bytes, read: Callable[[bytes], Any]) -> None:
    """Refuse, naming the file, one that cannot be read at all (its encoding, a DOCTYPE, broken XML), before any
    file is deployed."""
    try:
        read(content)
    except DeploymentError as exc:
        problems = _problem_views(exc.problems, content)
        raise DeploymentRejected(f"{name}: the file cannot be read (文件无法读取)", problems) from exc


def _callees_first(files: list[tuple[Path, bytes]]) -> list[tuple[Path, bytes]]:
    """The files in their order, except that a file comes after the files defining processes it calls
    (a call activity may only call a deployed process); a cycle keeps the given order."""
    defines = {key: path for path, bpmn in files for key in process_ids(bpmn)}
    needs = {path: {defines[key] for key in called_processes(bpmn) if key in defines} - {path} for path, bpmn in files}
    ordered: list[tuple[Path, bytes]] = []
    waiting = list(files)
    while waiting:
        done = {path for path, _ in ordered}
        ready = [item for item in waiting if needs[item[0]] <= done] or waiting[:1]
        ordered.append(ready[0])
        waiting.remove(ready[0])
    return ordered


def list_processes(services: Services, actor: Actor) -> list[dict[str, Any]]:
    """The newest version of each process."""
    policy.require(actor, "process.read")
    with services.db.unit_of_work(write=False) as session:
        return [views.version_view(v) for v in session.scalars(queries.newest_versions())]


def get_process(services: Services, actor: Actor, key: str) -> dict[str, Any]:
    """The newest version of a process, with the list of all its versions and its forms."""
    policy.require(actor, "process.read")
    with services.db.unit_of_work(write=False) as session:
        versions = _versions(session, key)
        newest = versions[-1]
        definition = services.definitions.get(newest)
        return {**views.version_view(newest), "versions": [views.version_view(v) for v in versions],
                "start_form": definition.start_form, "forms": definition.forms}


def get_bpmn(services: Services, actor: Actor, key: str, version: int | None) -> str:
    """The BPMN XML of a version (the newest by default)."""
    policy.require(actor, "process.read")
    with services.db.unit_of_work(write=False) as session:
        versions = _versions(session, key)
        if version is None:
            return versions[-1].bpmn_xml
        for row in versions:
            if row.version == version:
                return row.bpmn_xml
        raise NotFound(f"process {key} has no version {version} (版本不存在)")


def _versions_of(session: Session, key: str) -> list[ProcessVersion]:
    """Every version of a process, oldest first (none for a process not deployed yet)."""
    return list(session.scalars(select(ProcessVersion).where(ProcessVersion.process_key == key)
                                .order_by(ProcessVersion.version)))


def _versions(session: Session, key: str) -> list[ProcessVersion]:
    versions = _versions_of(session, key)
    if not versions:
        raise NotFound(f"process {key} not found (流程不存在)")
    return versions
