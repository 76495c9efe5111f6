"""Use cases of process designers and admins on versions: diff, export, migrate, retry."""

from __future__ import annotations

import io
import time
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, ProcessVersion, Task
from service.errors import Conflict, Invalid, NotFound, ServiceError
from workflows.engine import EngineError, MigrationRefused, TaskNotReady, describe_changes, diff_versions

from . import policy, portal, queries, views
from .casehistory import lock_case
from .check import TAMPERED, one_snapshot, require_unaltered
from .context import Actor, Services
from .processes import safe_file_name
from .stepper import Entry, run_step, store_step
from .steps import definition_of


def version_diff(services: Services, actor: Actor, key: str, version: int, against: int) -> dict[str, Any]:
    """Elements added, removed and changed from version `against` to version `version`."""
    policy.require(actor, "process.read")
    with services.db.unit_of_work(write=False) as session:
        new, old = _version(session, key, version), _version(session, key, against)
        diff = diff_versions(services.definitions.get(old), services.definitions.get(new))
        details = describe_changes(*_files(old), *_files(new))
        return {"key": key, "version": version, "against": against, "added": list(diff.added),
                "removed": list(diff.removed), "changed": {k: list(v) for k, v in diff.changed.items()},
                "elements": [asdict(e) for e in details.elements], "forms": [asdict(f) for f in details.forms],
                "decisions": [asdict(d) for d in details.decisions], "process_changed": details.process_changed,
                "layout_changed": details.layout_changed}


def _files(version: ProcessVersion) -> tuple[bytes, dict[str, bytes]]:
    return version.bpmn_xml.encode(), {name: text.encode() for name, text in version.dmn_files.items()}


def export_version(services: Services, actor: Actor, key: str, version: int) -> tuple[str, bytes]:
    """A zip of a version's BPMN and DMN files, and its file name."""
    policy.require(actor, "process.read")
    with services.db.unit_of_work(write=False) as session:
        row = _version(session, key, version)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in _archive_entries(key, row.bpmn_xml, row.dmn_files).items():
                archive.writestr(name, content)
        return safe_file_name(f"{key}-v{version}.zip", ".zip") or f"process-v{version}.zip", buffer.getvalue()


def _archive_entries(key: str, bpmn: str, dmns: dict[str, str]) -> dict[str, str]:
    """The files of a version under safe, distinct names, whatever names older rows were stored under."""
    entries = {safe_file_name(f"{key}.bpmn", ".bpmn") or "process.bpmn": bpmn}
    for index, (name, content) in enumerate(sorted(dmns.items()), start=1):
        safe, number = safe_file_name(name, ".dmn"), index
        while safe is None or safe in entries:
            safe, number = f"decision_{number}.dmn", number + 1
        entries[safe] = content
    return entries


def migrate_case(services: Services, actor: Actor, case_id: int, to_version: int | None,
                 dry_run: bool) -> dict[str, Any]:
    """Move an open case to another (by default the newest) version of its process (admin)."""
    policy.require(actor, "case.migrate")
    return _migrate(services, actor, case_id, to_version, dry_run, check_read=True)


def _migrate(services: Services, actor: Actor, case_id: int, to_version: int | None, dry_run: bool,
             check_read: bool) -> dict[str, Any]:
    # A dry run changes nothing: it reads the case as last committed and locks nothing, so a step on the case does
    # not wait for the engine's trial of it (on SQLite every writer waited, for a whole run over many cases).
    with services.db.unit_of_work(write=not dry_run) as session:
        if dry_run:
            one_snapshot(session)  # the case and the rows its check reads as of one moment (the real run locks it)
        if check_read:
            policy.check_case(session, actor, case_id)
        case = _committed_case(session, case_id) if dry_run else lock_case(session, case_id)
        if case.status not in ("open", "incident"):
            raise Conflict(f"case {case_id} is {case.status} (案件已结束)")
        # The migrate entry vouches for the state, holders and deadlines it finds: a case whose rows an insider
        # changed would come out of it clean to `check`, so it is refused and left as it is for someone to look at.
        require_unaltered(services, session, case)
        target = _target(session, case, to_version)
        try:
            migration = services.runner.migrate(definition_of(services, case), case.state,
                                                 services.definitions.get(target), dry_run)
        except MigrationRefused as exc:
            raise Conflict(str(exc)) from exc
        except EngineError as exc:  # the case fails on the target (a timer value it cannot read): it stays as it was
            raise Conflict(f"案件无法在目标版本上运行 (the case cannot run on that version): {exc}") from exc
        report = {"case_id": case_id, "from_version": case.process_version.version, "to_version": target.version,
                  "removed": list(migration.removed), "changed": list(migration.changed), "dry_run": dry_run}
        if dry_run:
            return report
        if migration.step is None:  # the engine leaves the step out only on a dry run
            raise RuntimeError(f"migrating case {case_id} produced no step")
        case.process_version_id, case.process_version = target.id, target
        store_step(services, session, case, migration.step,
                   (actor.username, "migrate", None, {**report, **_open_task_state(session, case_id)}))
        return {**report, "case": views.case_view(services, session, case, actor)}


def _committed_case(session: Session, case_id: int) -> Case:
    """A case as last committed, its state and the version it runs on read in one statement (the version is
    joined): on PostgreSQL, where each read statement sees its own snapshot, never a state of another version."""
    case = session.scalar(select(Case).where(Case.id == case_id))
    if case is None:
        raise NotFound(f"case {case_id} not found (案件不存在)")
    return case


def _open_task_state(session: Session, case_id: int) -> dict[str, dict[str, str | None]]:
    """Who holds each open task and when it is due as the migration finds them: each keeps its holder, and the
    later of its deadline and the new version's (readmodel._keep_open), which the new diagram alone does not say;
    `check` holds the rows to it."""
    rows = session.execute(select(Task.id, Task.assignee, Task.due_at).where(
        Task.case_id == case_id, Task.status == "open").order_by(Task.id)).all()
    return {"holders": {row.id: row.assignee for row in rows}, "due": {row.id: views.iso(row.due_at) for row in rows}}


@dataclass(frozen=True)
class _Outcome:
    """What migrating one case did (or would do)."""

    case_id: int
    from_version: int
    tasks: tuple[str, ...]  # its open tasks' element ids
    changed: tuple[str, ...]  # those the target version changes
    status: str  # "ok" (a dry run would move it) | "migrated" | "refused"
    reason: str = ""
    public_reason: str = ""  # the reason without case data, for designers

    def view(self) -> dict[str, Any]:
        found = {"case_id": self.case_id, "from_version": self.from_version, "tasks": list(self.tasks),
                 "changed": list(self.changed), "status": self.status}
        return found | ({"reason": self.reason} if self.reason else {})


_CHANGED_MEANWHILE = "the case changed meanwhile or cannot run on that version (案件状态已变化或无法在目标版本上运行)"
_UNTRIED = ("试运行已达时限（MIGRATION_DRY_RUN_SECONDS），其余案件未试 "
            "(not tried: the dry run reached its time limit, MIGRATION_DRY_RUN_SECONDS)")


def migrate_open_cases(services: Services, actor: Actor, key: str, to_version: int | None,
                       from_version: int | None, dry_run: bool) -> dict[str, Any]:
    """Move every open case of a process (or of one of its versions) to a version, each case on its own.

    Each case is migrated in its own transaction, and a refused case does not stop the others. Admins
    run it and see each case. Designers may only dry-run it, and see counts by version and task and the
    refusals' reasons, never a case: they read no case data (need to know).
    """
    policy.require(actor, "case.migrate" if not dry_run else "case.migrate_preview")
    each_case = policy.allows(actor, "case.migrate") and policy.reads_every_case(actor)
    # A dry run steps each case in turn, locking none (2,001 cases: 14 s in one request): bounded for whoever may not
    # run it for real; an admin's is the real run's prelude (the web offers the run after it) and costs the same.
    most = None if policy.allows(actor, "case.migrate") else int(services.settings["MIGRATION_DRY_RUN_MAX_CASES"])
    target, pending, names = _open_cases(services, key, to_version, from_version, most)
    # Nor may its cases take longer, each up to the step limit when the target's timers compute slowly: past the
    # time, the cases left are not tried.
    stop = None if most is None else time.monotonic() + float(services.settings["MIGRATION_DRY_RUN_SECONDS"])
    outcomes = [_Outcome(*case, (), "refused", _UNTRIED, _UNTRIED) if stop is not None and time.monotonic() > stop
                else _migrate_each(services, actor, target, dry_run, *case) for case in pending]
    report = {"key": key, "to_version": target, "from_version": from_version, "dry_run": dry_run,
              **_summary(outcomes, names)}
    return report | ({"cases": [o.view() for o in outcomes]} if each_case else {})


def _open_cases(services: Services, key: str, to_version: int | None, from_version: int | None,
                most: int | None = None) -> tuple[int, list[tuple[int, int, tuple[str, ...]]], dict[str, str]]:
    """The target version; each open case not on it (case id, its version, its open tasks); the tasks' names.
    More than `most` cases are refused (422) before any is stepped."""
    with services.db.unit_of_work(write=False) as session:
        target = _newest(session, key) if to_version is None else _version(session, key, to_version)
        if from_version is not None:
            _version(session, key, from_version)
        wanted = (Case.process_key == key, Case.status.in_(("open", "incident")),
                  Case.process_version_id != target.id,
                  *((ProcessVersion.version == from_version,) if from_version is not None else ()))
        rows = session.execute(select(Case.id, ProcessVersion.version).join(ProcessVersion).where(*wanted)
                               .order_by(Case.id)).all()
        if most is not None and len(rows) > most:
            raise Invalid(f"有 {len(rows)} 件未办结案件待迁移，超过试运行上限 {most} 件："
                          "请按原版本分批试运行，或请管理员运行 "
                          f"(a dry run over {len(rows)} open cases, more than {most}: try one version at a time, "
                          "or ask an admin)", {"from_version": "按原版本分批试运行 (try one version at a time)"})
        tasks: dict[int, list[str]] = {}
        names: dict[str, str] = {}
        for case_id, element_id, name in session.execute(
                select(Task.case_id, Task.element_id, Task.name).join(Case, Task.case_id == Case.id)
                .join(ProcessVersion, Case.process_version_id == ProcessVersion.id)
                .where(*wanted, Task.status == "open").order_by(Task.case_id, Task.element_id)):
            tasks.setdefault(case_id, []).append(element_id)
            names[element_id] = name
        pending = [(case_id, version, tuple(tasks.get(case_id, ()))) for case_id, version in rows]
        return target.version, pending, names


def _migrate_each(services: Services, actor: Actor, target: int, dry_run: bool, case_id: int, version: int,
                  tasks: tuple[str, ...]) -> _Outcome:
    try:
        report = _migrate(services, actor, case_id, target, dry_run, check_read=False)  # authorised as a whole
    except (ServiceError, EngineError) as exc:  # refused: this case stays as it was, the others go on
        reason = getattr(exc, "message", None) or str(exc)
        public = reason if isinstance(exc.__cause__, MigrationRefused) or reason == TAMPERED else _CHANGED_MEANWHILE
        return _Outcome(case_id, version, tasks, (), "refused", reason, public)
    changed = tuple(t for t in tasks if t in report["changed"])
    return _Outcome(case_id, version, tasks, changed, "ok" if dry_run else "migrated")


def _summary(outcomes: list[_Outcome], names: dict[str, str]) -> dict[str, Any]:
    """Counts only (no case ids): by version, by open task, and the refusals by reason."""
    moved = [o for o in outcomes if o.status != "refused"]
    tasks = Counter(t for o in moved for t in o.tasks)
    changed = {t for o in moved for t in o.changed}
    refused = [o for o in outcomes if o.status == "refused"]
    refusals = Counter(o.public_reason for o in refused)
    blocked = {reason: sorted({t for o in refused if o.public_reason == reason for t in o.tasks})
               for reason in refusals}
    return {"total": len(outcomes), "moved": len(moved), "refused": len(refused),
            "by_version": {str(v): n for v, n in sorted(Counter(o.from_version for o in outcomes).items())},
            "tasks": [{"element_id": t, "name": names.get(t, t), "cases": n, "changed": t in changed}
                      for t, n in sorted(tasks.items())],
            "refusals": [{"reason": r, "cases": n, "tasks": blocked[r]} for r, n in refusals.most_common()]}


def retry_case(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """Run a case's failed element again, typically after a fix was deployed and the case migrated."""
    policy.require(actor, "case.retry")
    with services.db.unit_of_work() as session:
        policy.check_case(session, actor, case_id)
        case = lock_case(session, case_id)
        if case.status != "incident":
            raise Conflict(f"case {case_id} has no incident (案件没有故障)")
        detail: dict[str, Any] = {}
        entry: Entry = (actor.username, "retry", (case.incident or {}).get("element_id"), detail)
        planned = case.retry_at
        try:
            run_step(services, session, case, portal.retry_call(services, session, case, detail), entry)
        except TaskNotReady as exc:
            raise Conflict(str(exc)) from exc
        if case.status == "incident" and planned is not None:
            case.retry_at = planned  # a person's failed try does not put off the automatic one already planned
        return views.case_view(services, session, case, actor)


def _target(session: Session, case: Case, to_version: int | None) -> ProcessVersion:
    query = select(ProcessVersion).where(ProcessVersion.process_key == case.process_key)
    if to_version is None:
        target = queries.newest_version(session, case.process_key)
    else:
        target = session.scalar(query.where(ProcessVersion.version == to_version))
    if target is None:
        raise NotFound(f"process {case.process_key} has no version {to_version} (版本不存在)")
    if target.id == case.process_version_id:
        raise Conflict(f"case {case.id} already runs on version {target.version} (案件已在该版本上)")
    return target


def _newest(session: Session, key: str) -> ProcessVersion:
    newest = queries.newest_version(session, key)
    if newest is None:
        raise NotFound(f"process {key} not found (流程不存在)")
    return newest


def _version(session: Session, key: str, version: int) -> ProcessVersion:
    row = session.scalar(select(ProcessVersion).where(ProcessVersion.process_key == key,
                                                      ProcessVersion.version == version))
    if row is None:
        raise NotFound(f"process {key} has no version {version} (版本不存在)")
    return row
