"""The one way a use case runs an engine operation on a case and stores what it did.

Every write (start, complete, timers, messages, cancel, migrate, retry, child cases) goes through
`run_step` or `start_in_session`: build the case's effects, run the operation in a step executor
with service tasks wired to the glue, map engine failures to service errors, record the caller's
history entry, and store the step whole (case row, task read model, history, effects, children).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, HistoryEntry, ProcessVersion, Task, utcnow
from service.db.uow import existing
from service.errors import CaseIncident, Invalid, ServiceError
from workflows.engine import EngineError, ProcessDefinition, Step
from workflows.engine.sandbox import ServiceHandler

from . import between, policy, queries, start_rules
from .casehistory import child_opened, held, lock_case, record
from .context import SYSTEM, Actor, Services
from .effects import CallOpener, Effects, service_handler
from .forms import fit_text, form_seconds, validate_form
from .notifications import tasks_opened
from .readmodel import NEW_CASES
from .steps import CADRE_FROM_TASK, apply_step, definition_of, held_since, run_engine
from .users import user_has_role_in

# An engine operation: (the case's definition, its saved state, the service-task handler) -> step.
EngineCall = Callable[[ProcessDefinition, str, ServiceHandler], Step]
Entry = tuple[str, str, str | None, dict[str, Any]]  # actor, action, task, detail
Result = TypeVar("Result")
MAX_CALL_DEPTH = 5  # call activities calling call activities: enough for any real process, bounded
# Cases call activities may open below one case in one transaction. The depth alone bounds nothing: a process
# calling itself three times at once opened 363 cases in one start, ten times 111,110. A multi-instance call's
# largest literal cardinality (DEPLOY_LIMITS.max_instances) fits.
MAX_CALLED_CASES = 200
_CALLED = "cadreflow.called_cases"  # session.info: id of the case a call tree hangs from -> cases opened below it
# session.info: id of the case a call tree hangs from -> when its children may no longer start (time.monotonic()):
# each child's first step may take the whole step limit, so MAX_CALLED_CASES of them held one request 200 times it.
_CHILDREN_BY = "cadreflow.child_starts_by"
_LINKING = "cadreflow.linking"  # session.info, while linked cases open linked cases: (the case it began at, depth)


def run_step(services: Services, session: Session, case: Case, call: EngineCall, entry: Entry | None = None,
             definition: ProcessDefinition | None = None) -> Step:
    """Run `call` on a locked case and store the step; `entry` is the caller's own history entry."""
    effects = Effects(session, services.today(), case.id)
    depth, root = call_chain(session, case)
    handler = service_handler(case.process_key, effects,
                              call_opener(services, session, effects, case.cadre_id, depth + 1, root),
                              own_cadre(case.process_key, case.cadre_id))
    step = run_engine(lambda: call(definition or definition_of(services, case), case.state, handler))
    store_step(services, session, case, step, entry, effects)
    return step


def own_cadre(process_key: str, cadre_id: Any) -> str | None:
    """The one cadre a case's service tasks may act on: the case's, except where a task names it (a public report's
    triage, steps.CADRE_FROM_TASK) or none is known yet."""
    return cadre_id if isinstance(cadre_id, str) and process_key not in CADRE_FROM_TASK else None


def store_step(services: Services, session: Session, case: Case, step: Step, entry: Entry | None = None,
               effects: Effects | None = None) -> None:
    """Store a step computed elsewhere (a migration), after the caller's own history entry."""
    if entry is not None:
        record(session, case, *entry)
    apply_step(session, case, step, effects or Effects(session, services.today(), case.id),
               child_starter(services, session))
    withdraw_left_calls(services, session, case, step)
    between.after_step(services, session, case, step)
    plan_retry(services, case, step)


def cancel_in_session(services: Services, session: Session, case: Case, entry: Entry) -> None:
    """Cancel a locked open case (or one in incident) and its open tasks; `entry` says who and why."""
    case.status = "cancelled"
    run_step(services, session, case, lambda definition, state, _: services.runner.cancel(definition, state), entry)


WITHDRAWN_CHILD = ("调用本案的上级案件 #{0} 已离开调用环节，不再等待本案结果，本案随之撤销 "
                   "(calling case #{0} left the call activity and no longer waits for this case: withdrawn with it)")
WITHDRAWN_BY_CALLER = ("本案已离开调用环节，被调用的关联案件随之撤销 "
                       "(this case left the call activity: the called case is withdrawn)")


def withdraw_left_calls(services: Services, session: Session, case: Case, step: Step) -> None:
    """Cancel the called cases `case` no longer waits for: the step left their call activity (a return, a cancel,
    an interrupting event or a terminate end). Each ends through a step of its own in this transaction, so the
    cases it calls follow it; its end is sent to nobody (between.after_step), since nobody waits for it."""
    if not step.left_calls:
        return
    left = list(session.scalars(select(Case.id).where(
        Case.parent_case_id == case.id, Case.parent_task_id.in_(step.left_calls), Case.status.in_(queries.UNFINISHED))
        .order_by(Case.id)))
    for child in (lock_case(session, child_id) for child_id in left):
        if child.status not in queries.UNFINISHED:  # ended meanwhile, before its lock was taken
            continue
        session.info.setdefault(between.WITHDRAWN, set()).add(child.id)
        cancel_in_session(services, session, child, (SYSTEM.username, "cancel", None, {
            "reason": WITHDRAWN_CHILD.format(case.id), "parent_case_id": case.id}))
        record(session, case, SYSTEM.username, "child_cancelled", None,
               {"child_case_id": child.id, "process": child.process_key, "reason": WITHDRAWN_BY_CALLER})


def start_in_session(services: Services, session: Session, actor: Actor, process: str, cadre_id: Any,
                     data: Any, parent: Case | None, parent_task_id: str | None = None, on: date | None = None) -> Case:
    """Start a case inside an open transaction (also used for linked child cases; `parent_task_id` is
    the caller's call activity when the child is a called process the caller waits for). `on` is the day
    the process's start rule takes the cadre's facts on: today, unless a scan runs for another day."""
    version = newest_version(session, process)
    definition = services.definitions.get(version)
    if parent is not None:  # the parent's step derived these texts: shortened to fit the child's form
        data = fit_text(definition.start_form, data)
    start_data = _start_data(session, actor, definition, cadre_id, data, form_seconds(services.settings))
    # A linked case's refusal fails its caller's step, becoming its incident: told so its readers may all read it.
    (start_data,) = [_raise_if_error(checked) for checked in start_rules.check(
        session, actor, process, [start_data], on or services.today(), names_cases=parent is None)]
    effects = Effects(session, services.today())
    # A called case sits one below its caller, and its calls count against the caller's tree; a case nobody
    # waits for is a tree of its own, whose first step is bounded by its diagram.
    depth, root = 0, None
    if parent is not None and parent_task_id:
        above, root = call_chain(session, parent)
        depth = above + 1
    handler = service_handler(process, effects, call_opener(services, session, effects, cadre_id, depth + 1, root),
                              own_cadre(process, start_data.get("cadre_id")))
    step = run_engine(lambda: services.runner.start(definition, start_data, handler))
    return _store_new_case(services, session, actor, version, start_data, step, effects, parent, parent_task_id)


def start_batch(services: Services, session: Session, actor: Actor, process: str,
                items: list[tuple[Any, dict[str, Any]]]) -> list[Case | ServiceError]:
    """Start one case per (cadre id, data) in one engine round trip (bulk starts); for each, the case or
    the error that refused it (the others go on). The batch costs a fixed number of statements: one
    lookup of its cadres, its process's start rule over all of them, its case ids reserved at once, and
    the rows of every case written together."""
    version = newest_version(session, process)
    definition = services.definitions.get(version)
    results: list[Case | ServiceError | None] = [None] * len(items)
    named = {cadre_id for cadre_id, _ in items if isinstance(cadre_id, str)}
    choosable = policy.cadre_filter(actor, "cadre.pick")
    readable = set(session.scalars(select(Cadre.id).where(Cadre.id.in_(named), choosable)))
    formed: list[tuple[int, dict[str, Any]]] = []
    seconds = form_seconds(services.settings)
    for index, (cadre_id, data) in enumerate(items):
        try:
            formed.append((index, _start_data(session, actor, definition, cadre_id, data, seconds, readable)))
        except ServiceError as error:
            results[index] = error
    checked: list[tuple[int, dict[str, Any], Effects]] = []
    ruled = start_rules.check(session, actor, process, [start_data for _, start_data in formed],
                              services.today())
    for (index, _), start_data in zip(formed, ruled, strict=True):
        if isinstance(start_data, ServiceError):
            results[index] = start_data
        else:
            checked.append((index, start_data, Effects(session, services.today())))
    handlers = [service_handler(process, effects, call_opener(services, session, effects, data["cadre_id"], 1),
                                own_cadre(process, data["cadre_id"])) for _, data, effects in checked]
    steps = run_engine(lambda: services.runner.start_many(definition, [data for _, data, _ in checked], handlers))
    started: list[tuple[int, dict[str, Any], Step, Effects]] = []
    for (index, start_data, effects), step in zip(checked, steps, strict=True):
        try:
            started.append((index, start_data, run_engine(partial(_raise_if_error, step)), effects))
        except ServiceError as error:
            results[index] = error
    cases = _store_new_cases(services, session, actor, version, [item[1:] for item in started])
    for (index, *_), case in zip(started, cases, strict=True):
        results[index] = case
    return [result for result in results if result is not None]


def _store_new_cases(services: Services, session: Session, actor: Actor, version: ProcessVersion,
                     started: list[tuple[dict[str, Any], Step, Effects]]) -> list[Case]:
    """Store many new cases as `_store_new_case` stores one: their ids reserved first, so each row is built
    whole (history chain included) before one INSERT of every case, then one of each kind of row that
    hangs on them. A case whose first step has effects of its own (a cadre record, a child case, a task
    the diagram assigns) is stored the one-at-a-time way, which flushes as it goes."""
    fast = [not effects.deferred and not effects.children and not any(t.assignee for t in step.open_tasks)
            for _, step, effects in started]
    ids = iter(_reserve_case_ids(session, sum(fast)))
    opened: list[Task] = []
    cases: list[Case | None] = []  # None: a case that takes the one-at-a-time path below
    with session.no_autoflush:
        for is_fast, (start_data, step, effects) in zip(fast, started, strict=True):
            if not is_fast:
                cases.append(None)  # stored below, once the batch's rows are written
                continue
            case = Case(id=next(ids), process_key=version.process_key, process_version_id=version.id,
                        process_version=version, cadre_id=start_data["cadre_id"], status="open", data={},
                        state="", created_by=actor.username, has_waits=False, retry_attempts=0,
                        timer_firings=0)
            session.add(held(session, case))
            session.info.setdefault(NEW_CASES, set()).add(case.id)
            record(session, case, actor.username, "start", None, {"data": start_data, "parent_case_id": None})
            apply_step(session, case, step, effects, child_starter(services, session), opened)
            between.after_step(services, session, case, step)
            plan_retry(services, case, step)
            cases.append(case)
        stored = [case for case in cases if case is not None]
        # The cases first (one INSERT): every other new row refers to them, and the unit of work knows no
        # order between models that have no relationship, so those rows wait outside the session meanwhile.
        waiting = [row for row in session.new if not isinstance(row, Case)]
        for row in waiting:
            session.expunge(row)
        session.flush()
        _insert_rows(session, waiting)
    if stored:
        tasks_opened(session, stored[0], opened)  # one process version: one name, and one lookup of people
    return [case if case is not None else _store_new_case(services, session, actor, version, start_data, step, effects)
            for case, (start_data, step, effects) in zip(cases, started, strict=True)]


BULK_ROWS = (HistoryEntry, Task)  # in foreign-key order; nothing reads their objects again


def _insert_rows(session: Session, rows: list[Any]) -> None:
    """Write the rows of a batch of new cases: one executemany per table for history and tasks
    (the unit of work would insert each history entry alone, to learn its id), the rest through the session."""
    by_model: dict[type, list[dict[str, Any]]] = {model: [] for model in BULK_ROWS}
    for row in rows:
        if type(row) in by_model:
            by_model[type(row)].append({column.key: getattr(row, column.key)
                                        for column in inspect(type(row)).column_attrs if column.key in row.__dict__})
        else:
            session.add(row)
    for model, values in by_model.items():
        if values:
            session.execute(insert(model), values)


def _reserve_case_ids(session: Session, count: int) -> list[int]:
    """Ids for `count` new cases: from the table's sequence on PostgreSQL; on SQLite, past the largest id
    (the writing transaction holds the database's write lock from BEGIN IMMEDIATE, so nobody else inserts)."""
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(text("SELECT nextval(pg_get_serial_sequence('cases', 'id')) "
                                         "FROM generate_series(1, :count)"), {"count": count}))
    largest = session.scalar(select(func.max(Case.id))) or 0
    return list(range(largest + 1, largest + 1 + count))


def _raise_if_error(result: Result | EngineError | ServiceError) -> Result:
    if isinstance(result, EngineError | ServiceError):
        raise result
    return result


def _start_data(session: Session, actor: Actor, definition: ProcessDefinition, cadre_id: Any,
                data: Any, seconds: float, readable: set[str] | None = None) -> dict[str, Any]:
    """The start data of a new case, checked against the start form, its cadre one the actor may read
    (`readable`: the ids of a batch's cadres the actor may read, looked up once for the batch)."""
    if not isinstance(data, dict | None):
        raise Invalid("data must be a JSON object (数据必须是对象)", {"data": "必须是对象 (must be an object)"})
    if cadre_id == "" and "cadre_id" not in definition.start_form.get("required", ["cadre_id"]):
        cadre_id = None  # a form's empty choice: no cadre yet
    start_data = {**(data or {}), "cadre_id": cadre_id}
    validate_form(definition.start_form, start_data, user_has_role_in(session), cadre_exists=cadre_exists_in(session),
                  seconds=seconds)
    if cadre_id is None and "cadre_id" not in definition.start_form.get("required", ["cadre_id"]):
        return start_data  # a public report: about a cadre only once its triage links one
    if not isinstance(cadre_id, str) or (cadre_id not in readable if readable is not None else session.scalar(
            select(Cadre.id).where(Cadre.id == cadre_id, policy.cadre_filter(actor, "cadre.pick"))) is None):
        raise Invalid("unknown cadre (干部不存在)", {"cadre_id": "干部不存在 (no such cadre)"})
    return start_data


def cadre_exists_in(session: Session) -> Callable[[str], bool]:
    """A check 'is there a cadre with this id' bound to an open session (the forms' `x-cadre`)."""
    return lambda cadre_id: session.get(Cadre, cadre_id) is not None


def _store_new_case(services: Services, session: Session, actor: Actor, version: ProcessVersion,
                    start_data: dict[str, Any], step: Step, effects: Effects, parent: Case | None = None,
                    parent_task_id: str | None = None) -> Case:
    case = Case(process_key=version.process_key, process_version_id=version.id, process_version=version,
                cadre_id=start_data["cadre_id"], status="open", parent_case_id=parent.id if parent else None,
                parent_task_id=parent_task_id, data={}, state="", created_by=actor.username)
    session.add(case)
    session.flush()
    held(session, case)  # new and not yet committed: nobody else can append to it
    if parent is not None:
        child_opened(session, parent.id)
    session.info.setdefault(NEW_CASES, set()).add(case.id)
    record(session, case, actor.username, "start", None, {"data": start_data, "parent_case_id": case.parent_case_id})
    apply_step(session, case, step, effects, child_starter(services, session))
    between.after_step(services, session, case, step)
    plan_retry(services, case, step)
    return case


def plan_retry(services: Services, case: Case, step: Step) -> None:
    """Plan the next automatic retry of a retryable incident (a failed service task), if any is left."""
    if case.status != "incident":
        if case.retry_attempts or case.retry_at:  # unchanged values are not set: each costs the commit a flush
            case.retry_attempts, case.retry_at = 0, None
        return
    plan_next_retry(services, case, step.incident is not None and step.incident.retryable)


def plan_next_retry(services: Services, case: Case, retryable: bool = True) -> None:
    """Set when an incident is retried next automatically: after a delay doubling with each attempt, never once
    INCIDENT_RETRIES attempts are spent (or the failure is not one to retry)."""
    if not retryable or case.retry_attempts >= int(services.settings["INCIDENT_RETRIES"]):
        case.retry_at = None
        return
    delay = float(services.settings["INCIDENT_RETRY_SECONDS"]) * 2 ** case.retry_attempts
    case.retry_at = utcnow() + timedelta(seconds=delay)


def child_starter(services: Services, session: Session) -> Callable[[Case, str, dict[str, Any], str | None], None]:
    """Open the linked child cases a step asked for, in the same transaction. A child's first step may open children
    of its own: a linked case nobody waits for (a service task's) is bounded as a called one is, in depth and in
    cases below the case the nest began at, or a process opening itself recursed until Python gave up."""
    def start_child(parent: Case, process: str, data: dict[str, Any], parent_task_id: str | None) -> None:
        root, depth = session.info.get(_LINKING, (parent, 0))
        if depth >= MAX_CALL_DEPTH:
            raise Invalid(f"linked cases opening linked cases deeper than {MAX_CALL_DEPTH} in one step "
                          f"(关联案件在一个步骤中逐级发起超过 {MAX_CALL_DEPTH} 层)")
        if parent_task_id is None:  # a call activity's case was counted when the call opened it (call_opener)
            _count_call(session, root)
        _check_child_budget(services, session, root)
        session.info[_LINKING] = (root, depth + 1)
        try:
            child = start_in_session(services, session, SYSTEM, process, data.pop("cadre_id"), data, parent,
                                     parent_task_id)
        finally:
            session.info[_LINKING] = (root, depth)
            if depth == 0:
                del session.info[_LINKING]
        record(session, parent, SYSTEM.username, "child_started", None, {"child_case_id": child.id, "process": process})
    return start_child


def call_opener(services: Services, session: Session, effects: Effects, cadre_id: Any, depth: int,
                root: Case | None = None) -> CallOpener:
    """What a call activity does: check the called process's start form and start rule now (a refusal is the
    caller's incident, at the call activity, which a person can see and retry), and open the child once the
    caller's step is stored."""
    def open_call(process: str, task_id: str, data: dict[str, Any]) -> None:
        if depth > MAX_CALL_DEPTH:
            raise Invalid(f"call activities nested deeper than {MAX_CALL_DEPTH} (调用层级过深)")
        _count_call(session, root)
        definition = services.definitions.get(newest_version(session, process))
        wanted = definition.start_form.get("properties", {})
        start_data = fit_text(definition.start_form,
                              {name: value for name, value in data.items() if name in wanted and name != "cadre_id"})
        start_data["cadre_id"] = cadre_id
        validate_form(definition.start_form, start_data, user_has_role_in(session),
                      seconds=form_seconds(services.settings))
        # Else the rule would refuse the child only after the step, failing the caller's whole completion. The
        # refusal is the caller's incident, read by whoever reads the caller: its reason, never the other case's
        # id (one who needs that case finds it with their own rights).
        _raise_if_error(start_rules.check(session, SYSTEM, process, [start_data], services.today(),
                                          names_cases=False)[0])
        effects.start_child_case(process, start_data, task_id)
    return open_call


def _count_call(session: Session, root: Case | None) -> None:
    """Count a case a call activity (or a service task) opens below `root` in this transaction; refused past
    MAX_CALLED_CASES."""
    if root is None:
        return
    counts = session.info.setdefault(_CALLED, {})
    counts[root.id] = counts.get(root.id, 0) + 1
    if counts[root.id] > MAX_CALLED_CASES:
        raise Invalid(f"call activities and service tasks below case {root.id} opened more than {MAX_CALLED_CASES} "
                      f"cases in one step (一个步骤中调用或关联发起的子案件超过 {MAX_CALLED_CASES} 个)")


def _check_child_budget(services: Services, session: Session, root: Case) -> None:
    """Refuse (422, the step rolled back) a child start past CHILD_STARTS_SECONDS since the first child below
    `root` started in this transaction: the children of one step share one budget, not one step limit each."""
    deadlines = session.info.setdefault(_CHILDREN_BY, {})
    seconds = float(services.settings["CHILD_STARTS_SECONDS"])
    by = deadlines.setdefault(root.id, time.monotonic() + seconds)
    if time.monotonic() > by:
        raise Invalid(f"一个步骤中发起的子案件合计用时超过 {seconds:g} 秒 (CHILD_STARTS_SECONDS)，本步骤未保存 "
                      f"(the cases opened below case {root.id} in one step took longer than {seconds:g} s together: "
                      "nothing was stored)")


def call_chain(session: Session, case: Case) -> tuple[int, Case]:
    """How many callers above this case wait for it, and the one at the top (0 and the case itself when nobody
    called it), in one walk up the chain: a step of a called case needs both, its depth against MAX_CALL_DEPTH
    and its tree against MAX_CALLED_CASES. The walk stops one caller past the depth bound, which it then refuses."""
    depth, top = 0, case
    while top.parent_task_id and top.parent_case_id and depth <= MAX_CALL_DEPTH:
        top = existing(session, Case, top.parent_case_id)
        depth += 1
    return depth, top


def newest_version(session: Session, process: str) -> ProcessVersion:
    """The newest deployed version of a process (422 when there is none)."""
    version = queries.newest_version(session, process)
    if version is None:
        raise Invalid(f"unknown process {process} (流程不存在)", {"process": "流程不存在 (no such process)"})
    return version


def hold_as_incident(session: Session, case: Case, failure: CaseIncident) -> None:
    """Stop a case whose step failed with nothing coherent to save (e.g. an executor killed at its
    time limit): its state stays as it was, it leaves the timer scan, and a person can retry it."""
    since = held_since(case)
    case.status = "incident"
    case.incident = {"message": failure.message, "element_id": failure.element_id, "line": failure.line,
                     "held_since": since}
    record(session, case, SYSTEM.username, "incident", failure.element_id, case.incident)


def hold_if(services: Services, case_id: int, failure: CaseIncident, still: Callable[[Case], bool]) -> None:
    """Hold a case as an incident in a transaction of its own, after its failed step was rolled back, if `still`
    says so once it is locked again: a person may have moved it on between the rollback and this lock."""
    with services.db.unit_of_work() as session:
        case = lock_case(session, case_id)
        if still(case):
            hold_as_incident(session, case, failure)
