"""A case's chained history and the lock that guards it: `lock_case` takes the case for writing, `record`
appends one entry hashed onto the one before (the only way an entry is added; service/db/chain.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from service.db.chain import GENESIS, entry_hash, stored_json
from service.db.models import Case, HistoryEntry, ProcessVersion, Task, utcnow
from service.db.uow import existing
from service.errors import NotFound

SYSTEM_NAME = "system"
HELD_CASES = "cadreflow.held_cases"


def lock_case(session: Session, case_id: int) -> Case:
    """Load a case for writing (row-locked on PostgreSQL, serialised by BEGIN IMMEDIATE on SQLite)."""
    query = select(Case).where(Case.id == case_id).with_for_update(of=Case)
    # populate_existing: a case read earlier in this session must not keep its pre-lock history head.
    case = session.scalar(query.execution_options(populate_existing=True))
    if case is None:
        raise NotFound(f"case {case_id} not found (案件不存在)")
    return held(session, current_version(session, case))


def current_version(session: Session, case: Case) -> Case:
    """The case with the process version it now runs on. On PostgreSQL a lock that waited for a migration gives the
    case row as the migration left it, but drops the version row joined to the old one (it no longer matches):
    looked up then."""
    version = case.process_version
    if version is None or version.id != case.process_version_id:
        set_committed_value(case, "process_version", existing(session, ProcessVersion, case.process_version_id))
    return case


def held(session: Session, case: Case) -> Case:
    """Mark a case this transaction may append history to: locked by it, or created by it."""
    session.info.setdefault(HELD_CASES, set()).add(case.id)
    return case


CHILDLESS = "cadreflow.childless"  # ids of held cases known to have no linked child case


def childless(session: Session, case_id: int) -> None:
    """Remember that a held case has no child case (read under its lock)."""
    session.info.setdefault(CHILDLESS, set()).add(case_id)


def child_opened(session: Session, parent_id: int) -> None:
    """Forget that a case had no child case: this transaction just opened one for it."""
    session.info.get(CHILDLESS, set()).discard(parent_id)


def known_childless(session: Session, case_id: int) -> bool:
    """True when the case is known to have no child case (False: it has, or nobody asked)."""
    return case_id in session.info.get(CHILDLESS, ())


def record(session: Session, case: Case, actor: str, action: str, task: str | None = None,
           detail: dict[str, Any] | None = None) -> None:
    """Append one entry to the case's history, chained to the one before (the only way to add one)."""
    if case.id not in session.info.get(HELD_CASES, ()):
        # Two transactions appending to one case at once would fork its chain.
        raise RuntimeError(f"case {case.id} is recorded without holding its lock (lock_case or held)")
    entry = HistoryEntry(case_id=case.id, seq=(case.history_seq or 0) + 1, at=utcnow(), actor=actor,
                         action=action, task=task, detail=stored_json(detail or {}))
    entry.hash = entry_hash(entry, case.history_hash or GENESIS)
    case.history_seq, case.history_hash = entry.seq, entry.hash
    if actor != SYSTEM_NAME and case.timer_firings:  # a person acted: the timer loop guard counts from 0 again
        case.timer_firings = 0
    session.add(entry)


def hand_back(session: Session, case: Case, task: Task, by: str, **why: Any) -> None:
    """Give a held task back to its role's pool, recorded as an unclaim by `by` saying whose it was (and why, when
    someone other than its holder gave it back)."""
    record(session, case, by, "unclaim", task.element_id, {"task_id": task.id, "from": task.assignee, **why})
    task.assignee = None
