"""Consistency check of every case: the history's hash chain, the saved state, the task read model, timers,
the records the history vouches for (the case's cadre, starter and parent, who completed each task, who holds each
open task and when it is due, each attachment and its type, each comment), and each task's name, which its process
version's diagram gives.

Used by `cadreflow check` after a crash, a restore or a load test: it reads everything and
changes nothing, and reports each fault with the case it concerns. Cases are read in batches,
each batch's history in one query, so a large database costs a few queries per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from service.db.chain import GENESIS, entry_hash, stored_json
from service.db.models import Attachment, Case, Comment, HistoryEntry, Task
from service.errors import Conflict, NotFound
from workflows.engine import EngineError, Step

from .comments import text_digest
from .context import Services
from .readmodel import parse_time
from .steps import definition_of

BATCH = 200


def check_cases(services: Services, grace_seconds: float | None = None) -> tuple[int, list[str]]:
    """Check every case; returns how many were checked and the faults found."""
    grace = timedelta(seconds=grace_seconds if grace_seconds is not None
                      else float(services.settings["WORKER_POLL_SECONDS"]))
    checked, last_id = 0, 0
    faults: list[str] = []
    while True:
        with services.db.unit_of_work(write=False) as session:
            one_snapshot(session)
            batch = list(session.scalars(select(Case).where(Case.id > last_id).order_by(Case.id).limit(BATCH)))
            for case_id, found in batch_faults(services, session, batch, grace).items():
                faults.extend(f"case {case_id}: {fault}" for fault in found)
        if not batch:
            return checked, faults
        checked += len(batch)
        last_id = batch[-1].id


def batch_faults(services: Services, session: Session, batch: list[Case],
                 grace: timedelta | None) -> dict[int, list[str]]:
    """The faults of consecutive cases (by id) read in `session`, each kind of row read in one query for all of them.
    `grace` None leaves out a timer overdue (the worker's lag, no record changed): a migration's check of one case."""
    histories = _histories(session, batch)
    records, names = _records(session, batch), _task_names(services, session)
    found: dict[int, list[str]] = {}
    for case in batch:
        history = histories.get(case.id, [])
        found[case.id] = [*_case_faults(services, session, case, history, grace),
                       *_record_faults(history, {kind: rows.get(case.id, []) for kind, rows in records.items()}),
                       *_name_faults(records.get("tasks", {}).get(case.id, []), names)]
    return found


TAMPERED = "案件记录与历史不符，须先核查 (the case's records disagree with its history: check it first)"


def require_unaltered(services: Services, session: Session, case: Case) -> None:
    """Refuse (409) a write that would record a case's rows as it finds them, and so vouch for them, while `check`
    names the case: a version migration (its `migrate` entry), a return (the holders it reopens)."""
    if batch_faults(services, session, [case], None)[case.id]:
        raise Conflict(TAMPERED)


def one_snapshot(session: Session) -> None:
    """Read the whole batch as of one moment."""
    # On PostgreSQL each statement would otherwise see newer commits, and a step committed between
    # reading a case row and its history would look like a forged entry.
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    # SQLite: a read transaction in WAL mode keeps the snapshot of its first read.


def _case_faults(services: Services, session: Session, case: Case, history: list[Row[Any]],
                 grace: timedelta | None) -> Iterator[str]:
    yield from chain_faults(history, (case.history_seq, case.history_hash), entry_hash, HISTORY)
    yield from _history_faults(session, case, history)
    try:
        step = services.runner.inspect(definition_of(services, case), case.state)
    except EngineError as exc:
        yield f"saved state does not load: {exc}"
        return
    yield from _task_faults(session, case, step, history)
    yield from _result_faults(case, step)
    yield from _timer_faults(case, step, grace)


def _task_faults(session: Session, case: Case, step: Step, history: list[Row[Any]]) -> Iterator[str]:
    open_rows = {row.id: row for row in session.execute(select(
        Task.id, Task.role, Task.assignee, Task.due_at, Task.created_at).where(
        Task.case_id == case.id, Task.status == "open"))}
    lanes: dict[str, str | None] = {task_id: row.role for task_id, row in open_rows.items()}
    rows = set(lanes)
    ready = {task.id for task in step.open_tasks} if case.status == "open" else set()
    if case.status in ("completed", "cancelled") and rows:
        yield f"{case.status} but has open task rows {sorted(rows)}"
    if case.status == "open" and rows != ready:
        yield f"open task rows {sorted(rows)} differ from the engine's ready tasks {sorted(ready)}"
    yield from _lane_faults(lanes, step)
    yield from _holder_faults(open_rows, step, history, case.updated_at)
    if case.status in ("completed", "cancelled") and not step.completed:
        yield f"marked {case.status} but the engine has it running"
    if case.status == "open" and step.completed:
        yield "marked open but the engine has it finished"
    if case.status == "incident" and not step.failed_elements and not _held(case, history):
        yield "in incident but no element has failed"


def _held(case: Case, history: list[Row[Any]]) -> bool:
    """A case the service held as an incident with no element failed (its executor killed at its time limit, a
    timer loop: stepper.hold_as_incident), as its last incident entry, after any retry, says (an automatic retry that
    stopped too leaves the case as it was: incidents._count_stopped)."""
    last = next((entry for entry in reversed(history) if entry.action == "incident" or (
        entry.action == "retry" and not (isinstance(entry.detail, dict) and "stopped" in entry.detail))), None)
    return last is not None and last.action == "incident" and last.detail == case.incident


def _lane_faults(lanes: dict[str, str | None], step: Step) -> Iterator[str]:
    """Open task rows in another lane than the engine's (each step sets the row's role from it: readmodel.py): a
    task moved to another role with SQL, which its holders could then decide, is named."""
    for task in sorted(step.open_tasks, key=lambda task: task.id):
        if task.id in lanes and lanes[task.id] != task.role:
            yield (f"open task {task.id} is in the lane of {lanes[task.id]}, the engine's of {task.role} "
                   "(待办任务的角色与流程状态不符，可能被改动)")


def _holder_faults(rows: dict[str, Any], step: Step, history: list[Row[Any]],
                   stepped_at: datetime) -> Iterator[str]:
    """Open task rows held by someone, or due at a time, that neither the engine state nor the history says: a task
    taken with SQL (no `claim` entry: only its taker may complete it now), or its deadline moved (one pushed back or
    cleared hides an overdue task from the inspectors). Replays the history the check already read."""
    said = TaskStates.of(history)
    for task in sorted(step.open_tasks, key=lambda task: task.id):
        row = rows.get(task.id)
        if row is None:
            continue
        blind = said.blind_at is not None and row.created_at <= said.blind_at  # open across an older migration
        if task.id not in said.unknown and not (blind and task.id not in said.holders) \
                and row.assignee != (holder := said.holders.get(task.id, task.assignee)):
            yield (f"open task {task.id} is held by {row.assignee}, its history says by {holder or 'nobody'} "
                   "(待办任务的办理人与履历不符，可能被改动)")
        if not (blind and task.id not in said.extended_after) \
                and not _due_agrees(row.due_at, parse_time(task.due_at), said.until.get(task.id), stepped_at):
            due = max((d for d in (parse_time(task.due_at), said.until.get(task.id)) if d), default=None)
            yield (f"open task {task.id} is due {row.due_at.isoformat() if row.due_at else None}, the engine state "
                   f"and its history say {due.isoformat() if due else None} "
                   "(待办任务的期限与流程状态和履历不符，可能被改动)")
        elif row.due_at is None and (passed := said.escalated.get(task.element_id)) and passed > row.created_at:
            # its timers fired, so the engine has no deadline for it: the supervision they opened says it had one
            yield (f"open task {task.id} is due None, its history says the deadline it had passed (supervised from "
                   f"{passed.isoformat()}) (待办任务的期限已被清除，但履历显示其已逾期督办，可能被改动)")


@dataclass
class TaskStates:
    """Who holds each task and the deadline it was last extended to (or a migration kept), as the history's
    entries, replayed in order, leave them (readmodel.py, tasks.py, taskwork.py, versions.py,
    casehistory.hand_back write them); a task no entry names (opened before `designate` entries were written) is
    held by whom the engine's diagram names now. `unknown`: tasks reopened by a return recorded before returns
    named their holders. `blind_at`: the last migration recorded before migrations named each open task's holder
    and deadline; a task open since then is held to neither, unless a later entry names it (`extended_after`: its
    deadline). `escalated`: when each element's supervision (督办) last opened, which only its deadline passing
    opens."""

    holders: dict[str, str | None]
    until: dict[str, datetime | None]
    unknown: set[str]
    blind_at: datetime | None = None
    extended_after: set[str] = field(default_factory=set)
    escalated: dict[str, datetime] = field(default_factory=dict)  # element id -> when its supervision last opened

    @classmethod
    def of(cls, history: list[Row[Any]]) -> TaskStates:
        said = cls({}, {}, set())
        for entry in history:
            detail = entry.detail if isinstance(entry.detail, dict) else {}
            if entry.action == "migrate":
                said.migrated(getattr(entry, "at", None), detail)
            elif entry.action == "escalation" and isinstance(detail.get("overdue"), str) and entry.at is not None:
                said.escalated[detail["overdue"]] = entry.at  # a supervise_<x> task opened: x's deadline passed
            elif isinstance(detail.get("task_id"), str):  # an entry forged with another shape is named elsewhere
                said.apply(entry.action, entry.actor, detail, detail["task_id"])
        return said

    def migrated(self, at: datetime | None, detail: dict[str, Any]) -> None:
        """Each open task keeps its holder and the later of its deadline and the new version's, which the new
        diagram alone does not say: the entry names both (since 7 December 2026; an older one, nothing)."""
        holders, due = detail.get("holders"), detail.get("due")
        if not isinstance(holders, dict) or not isinstance(due, dict):
            self.blind_at = at
            self.extended_after.clear()
            return
        for task_id, holder in holders.items():
            self.holders[task_id] = holder
        for task_id, until in due.items():
            self.until[task_id] = _moment(until)

    def apply(self, action: str, actor: str, detail: dict[str, Any], task_id: str) -> None:
        if action == "claim":
            self.holders[task_id] = actor
        elif action in ("assign", "substitute", "designate"):
            self.holders[task_id] = detail.get("to")
        elif action == "unclaim":
            self.holders[task_id] = None
        elif action == "extend":
            self.until[task_id] = _moment(detail.get("until"))
            self.extended_after.add(task_id)
        elif action in ("complete", "return"):  # a completed task opens again only by a return, under its id
            self._closed(task_id, unknown=action == "complete")
            holders = detail.get("holders") if action == "return" else None
            for reopened, holder in (holders.items() if isinstance(holders, dict) else ()):
                self._closed(reopened, unknown=False)
                self.holders[reopened] = holder

    def _closed(self, task_id: Any, unknown: bool) -> None:
        self.holders.pop(task_id, None)
        self.until.pop(task_id, None)
        if unknown:
            self.unknown.add(task_id)
        else:
            self.unknown.discard(task_id)


def _moment(value: Any) -> datetime | None:
    """An entry's moment; None for one no service wrote (not a time, or without its zone)."""
    try:
        moment = parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _due_agrees(due: datetime | None, engine_due: datetime | None, until: datetime | None,
                stepped_at: datetime) -> bool:
    """Each step sets an open row's deadline to the later of the engine's and its last extension (readmodel.py);
    once its timers have fired the engine has none, and the row keeps the one that passed (before the last step)."""
    if engine_due is not None:
        return due == (max(engine_due, until) if until else engine_due)
    if until is not None:
        return due == until
    return due is None or due <= stepped_at


def _result_faults(case: Case, step: Step) -> Iterator[str]:
    """The row's outcome and data against the engine state they were stored from (steps.apply_step stores both from
    one step): a decision rewritten in the row that the case page, the documents and the ledgers read is named."""
    if case.outcome != step.outcome:
        yield (f"outcome {case.outcome!r} differs from the engine's {step.outcome!r} "
               "(案件结论与流程状态不符，可能被改动)")
    if case.data != stored_json(step.data):
        yield "data differs from the engine's (案件数据与流程状态不符，可能被改动)"


def _timer_faults(case: Case, step: Step, grace: timedelta | None) -> Iterator[str]:
    if case.status != "open":
        return
    due = parse_time(step.next_timer_due)
    if due != case.next_timer_due:
        yield (f"next_timer_due {case.next_timer_due} differs from the engine's {due} "
               "(`cadreflow resync-timers` sets it)")
    if due is not None and grace is not None and due < datetime.now(UTC) - grace:
        yield f"timer overdue since {due.isoformat()} (more than {grace.total_seconds():g} s)"


def _histories(session: Session, batch: list[Case]) -> dict[int, list[Row[Any]]]:
    """The history of a batch of consecutive cases in one query, each case's entries in id order."""
    if not batch:
        return {}
    rows = session.execute(select(*HISTORY_COLUMNS).where(HistoryEntry.case_id.between(batch[0].id, batch[-1].id))
                           .order_by(HistoryEntry.case_id, HistoryEntry.id))
    return {case_id: list(entries) for case_id, entries in groupby(rows, key=lambda row: row.case_id)}


HISTORY_COLUMNS = (HistoryEntry.id, HistoryEntry.case_id, HistoryEntry.seq, HistoryEntry.at, HistoryEntry.actor,
                   HistoryEntry.action, HistoryEntry.task, HistoryEntry.detail, HistoryEntry.hash)


@dataclass(frozen=True)
class ChainNames:
    """How a hash chain's faults name it: the log (Chinese, English) and the record keeping its head."""

    zh: str
    en: str
    holder_zh: str
    holder_en: str


HISTORY = ChainNames("履历", "history", "案件", "case")


def chain_faults(entries: list[Row[Any]], head: tuple[int | None, str | None], hash_of: Callable[[Any, str], str],
                 names: ChainNames) -> Iterator[str]:
    """Recompute a hash chain in id order: the first broken link, then a head (sequence, hash) that does not
    match its last entry. Walks a case's history and a cadre's personal-report log alike."""
    previous, seq = GENESIS, 0
    for entry in entries:
        seq += 1
        if entry.seq != seq:
            yield (f"{names.zh}第 {seq} 条缺失、被插入或调换了顺序 ({names.en} entry {seq} was deleted, inserted or "
                   f"reordered: entry id {entry.id} has sequence {entry.seq})")
            return
        if entry.hash != hash_of(entry, previous):
            yield (f"{names.zh}第 {seq} 条（id {entry.id}）与其内容或前一条的哈希不符，{names.zh}被改动 "
                   f"({names.en} entry {seq} (id {entry.id}) does not match its content and the entry before it: "
                   f"the {names.en} was altered)")
            return
        previous = entry.hash
    head_seq, head_hash = head
    if (head_seq, head_hash or GENESIS) != (seq, previous):
        yield (f"{names.holder_zh}记录的最新{names.zh}（第 {head_seq} 条）与{names.zh}末条（第 {seq} 条）不符，"
               f"末尾条目被删除或伪造 (the {names.holder_en}'s latest {names.en} hash, of entry {head_seq}, does not "
               f"match its last entry, {seq}: entries were deleted from or forged onto its end)")


def _history_faults(session: Session, case: Case, history: list[Row[Any]]) -> Iterator[str]:
    if not history or history[0].action != "start":
        yield "history does not begin with its start"
        return
    if case.status == "cancelled" and not any(entry.action == "cancel" for entry in history):
        yield "取消的案件无取消履历，可能被改动 (marked cancelled, but no entry of its history cancels it)"
    yield from _identity_faults(case, history)


def _identity_faults(case: Case, history: list[Row[Any]]) -> Iterator[str]:
    """The case row held to its history: its start entry names the cadre, the starter and the parent case, and each
    `link_cadre` entry a later cadre (steps.py). A case moved to another cadre's record (an admonishment taken off
    one cadre and put on another), re-attributed or re-parented with SQL is named."""
    start: dict[str, Any] = history[0].detail if isinstance(history[0].detail, dict) else {}
    data = start.get("data")
    cadre = data.get("cadre_id") if isinstance(data, dict) else None
    for entry in history:
        if entry.action == "link_cadre" and isinstance(entry.detail, dict):
            cadre = entry.detail.get("cadre_id")
    if case.cadre_id != cadre:
        yield (f"案件所属干部与履历不符，可能被改动 (the case is on the record of cadre {case.cadre_id}, its history "
               f"says cadre {cadre})")
    if case.created_by != history[0].actor:
        yield (f"案件发起人与履历不符，可能被改动 (the case says it was started by {case.created_by}, its history "
               f"by {history[0].actor})")
    if case.parent_case_id != start.get("parent_case_id"):
        yield (f"案件的上级案件与履历不符，可能被改动 (the case is a child of case {case.parent_case_id}, its "
               f"history says of case {start.get('parent_case_id')})")


# The rows the history vouches for, each read for a whole batch of cases in one query.
RECORDS: dict[str, tuple[Any, ...]] = {"tasks": (Task.case_id, Task.id, Task.status, Task.completed_by,
                                                  Task.process_version_id, Task.element_id, Task.name),
           "attachments": (Attachment.case_id, Attachment.id, Attachment.filename, Attachment.size, Attachment.sha256,
                           Attachment.uploaded_by, Attachment.content_type),
           "comments": (Comment.case_id, Comment.id, Comment.author, Comment.text)}


def _records(session: Session, batch: list[Case]) -> dict[str, dict[int, list[Row[Any]]]]:
    if not batch:
        return {}
    found: dict[str, dict[int, list[Row[Any]]]] = {}
    for kind, columns in RECORDS.items():
        query = select(*columns).where(columns[0].between(batch[0].id, batch[-1].id))
        found[kind] = {}
        for row in session.execute(query):
            found[kind].setdefault(row[0], []).append(row)
    return found


def _record_faults(history: list[Row[Any]], records: dict[str, list[Row[Any]]]) -> Iterator[str]:
    """Rows that say what no entry of the chained history says: a completed task, an attachment or a comment
    added, removed or rewritten behind the service's back (the chain vouches for the entries, these for the rows)."""
    entries = {action: {e.detail.get(key): e for e in history if e.action == action and isinstance(e.detail, dict)}
               for action, key in (("complete", "task_id"), ("attach", "attachment_id"), ("comment", "comment_id"))}
    # A returned task opens again under its id, its `complete` entry staying: only completed rows need one, and
    # only a missing row is gone.
    yield from vouched("task", [row for row in records["tasks"] if row.status == "completed"], entries["complete"],
                       lambda row, e: row.completed_by == e.actor, {row.id for row in records["tasks"]})
    yield from vouched("attachment", records["attachments"], entries["attach"],
                       lambda row, e: (row.filename, row.size, row.sha256, row.uploaded_by) == (
                           e.detail.get("filename"), e.detail.get("size"), e.detail.get("sha256"), e.actor)
                       and e.detail.get("content_type", row.content_type) == row.content_type)
    # attachments from before the entry named their type: the rest only (a download serves an unknown type opaque)
    yield from vouched("comment", records["comments"], entries["comment"],
                       lambda row, e: row.author == e.actor and e.detail.get("text_sha256") in (
                           None, text_digest(row.text)))  # comments from before the digest was kept: author only


def vouched(kind: str, rows: Sequence[Any], entries: dict[Any, Row[Any]],
            agrees: Callable[[Any, Row[Any]], bool], present: set[Any] | None = None) -> Iterator[str]:
    """Faults of `rows` against the `entries` vouching for them, by id (`present`: the ids that exist at all,
    when more exist than `rows`)."""
    by_id = {row.id: row for row in rows}
    for row_id in sorted(set(by_id) - set(entries), key=str):
        yield f"{kind} {row_id} has no history entry (记录无对应履历，可能被伪造)"
    for row_id in sorted(set(entries) - (set(by_id) if present is None else present), key=str):
        yield f"the history records {kind} {row_id}, which is gone (履历所载记录已不存在，可能被删除)"
    for row_id in sorted(set(by_id) & set(entries), key=str):
        if not agrees(by_id[row_id], entries[row_id]):
            yield f"{kind} {row_id} differs from its history entry (记录与履历不符，可能被改动)"


def _task_names(services: Services, session: Session) -> Callable[[int], dict[str, str] | None]:
    """A process version's person tasks by element id → the name the engine gives their rows (None: the version
    does not load, which the state check names), each version parsed at most once."""
    known: dict[int, dict[str, str] | None] = {}

    def names(version_id: int) -> dict[str, str] | None:
        if version_id not in known:
            try:
                known[version_id] = services.definitions.by_id(session, version_id).task_names
            except (EngineError, NotFound):
                known[version_id] = None
        return known[version_id]
    return names


def _name_faults(rows: list[Row[Any]], names: Callable[[int], dict[str, str] | None]) -> Iterator[str]:
    """Task rows whose name is not what their process version's diagram calls their step. The name is derived
    (the engine writes the element's name, or its id when it has none), so it needs no hash and rows of any age
    are checked; a name changed with SQL (an approval shown as another step) is named."""
    for row in sorted(rows, key=lambda row: str(row.id)):
        expected = names(row.process_version_id)
        if expected is None:
            continue
        if row.element_id not in expected:
            yield (f"任务 {row.id} 的步骤 {row.element_id} 不在其流程版本中，记录被改动 (task {row.id}'s step "
                   f"{row.element_id} is not in its process version {row.process_version_id}: the row was altered)")
        elif row.name != expected[row.element_id]:
            yield (f"任务 {row.id} 的名称与其流程版本中的步骤名称不符，可能被改动 (task {row.id} is named "
                   f"{row.name!r}, but its process version calls step {row.element_id} {expected[row.element_id]!r})")
