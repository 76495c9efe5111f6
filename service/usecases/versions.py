"""Use cases of process designers and admins on versions: diff, export, migrate, retry."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, ProcessVersion
from service.errors import Conflict, Forbidden, NotFound
from workflows.engine import MigrationRefused, TaskNotReady, diff_versions

from . import views
from .cases import child_starter
from .context import Actor, Services
from .steps import Effects, apply_step, definition_of, lock_case, record, run_engine, service_handler


def version_diff(services: Services, actor: Actor, key: str, version: int, against: int) -> dict[str, Any]:
    """Elements added, removed and changed from version `against` to version `version`."""
    with services.db.unit_of_work(write=False) as session:
        new, old = _version(session, key, version), _version(session, key, against)
        diff = diff_versions(services.definitions.get(old), services.definitions.get(new))
        return {"key": key, "version": version, "against": against, "added": list(diff.added),
                "removed": list(diff.removed), "changed": {k: list(v) for k, v in diff.changed.items()}}


def export_version(services: Services, actor: Actor, key: str, version: int) -> tuple[str, bytes]:
    """A zip of a version's BPMN and DMN files, and its file name."""
    with services.db.unit_of_work(write=False) as session:
        row = _version(session, key, version)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{key}.bpmn", row.bpmn_xml)
            for name, content in row.dmn_files.items():
                archive.writestr(name, content)
        return f"{key}-v{version}.zip", buffer.getvalue()


def migrate_case(services: Services, actor: Actor, case_id: int, to_version: int | None,
                 dry_run: bool) -> dict[str, Any]:
    """Move an open case to another (by default the newest) version of its process (admin)."""
    if not actor.has_any("admin"):
        raise Forbidden("only an admin may migrate cases (仅管理员可迁移案件)")
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        if case.status not in ("open", "incident"):
            raise Conflict(f"case {case_id} is {case.status} (案件已结束)")
        target = _target(session, case, to_version)
        try:
            migration = services.runner.migrate(definition_of(services, case), case.state,
                                                 services.definitions.get(target), dry_run)
        except MigrationRefused as exc:
            raise Conflict(str(exc)) from exc
        report = {"case_id": case_id, "from_version": case.process_version.version, "to_version": target.version,
                  "removed": list(migration.removed), "changed": list(migration.changed), "dry_run": dry_run}
        if dry_run:
            return report
        record(session, case, actor.username, "migrate", None, report)
        case.process_version_id, case.process_version = target.id, target
        apply_step(session, case, migration.step, Effects(session, services.today()), child_starter(services, session))
        return {**report, "case": views.case_view(services, session, case)}


def retry_case(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """Run a case's failed element again, typically after a fix was deployed and the case migrated."""
    if not actor.has_any("admin", "designer"):
        raise Forbidden("only an admin or designer may retry a case (仅管理员或流程设计员可重试)")
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        if case.status != "incident":
            raise Conflict(f"case {case_id} has no incident (案件没有故障)")
        effects = Effects(session, services.today())
        handler = service_handler(case.process_key, effects)
        try:
            step = run_engine(lambda: services.runner.retry(definition_of(services, case), case.state, handler))
        except TaskNotReady as exc:
            raise Conflict(str(exc)) from exc
        record(session, case, actor.username, "retry", (case.incident or {}).get("element_id"), {})
        apply_step(session, case, step, effects, child_starter(services, session))
        return views.case_view(services, session, case)


def _target(session: Session, case: Case, to_version: int | None) -> ProcessVersion:
    query = select(ProcessVersion).where(ProcessVersion.process_key == case.process_key)
    if to_version is None:
        target = session.scalar(query.order_by(ProcessVersion.version.desc()).limit(1))
    else:
        target = session.scalar(query.where(ProcessVersion.version == to_version))
    if target is None:
        raise NotFound(f"process {case.process_key} has no version {to_version} (版本不存在)")
    if target.id == case.process_version_id:
        raise Conflict(f"case {case.id} already runs on version {target.version} (案件已在该版本上)")
    return target


def _version(session: Session, key: str, version: int) -> ProcessVersion:
    row = session.scalar(select(ProcessVersion).where(ProcessVersion.process_key == key,
                                                      ProcessVersion.version == version))
    if row is None:
        raise NotFound(f"process {key} has no version {version} (版本不存在)")
    return row
