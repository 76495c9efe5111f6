"""`cadreflow check` names no fault after legitimate flows that move a task's holder or deadline away from what the
engine's diagram says now: a migration to a version with another timer or assignee on an open task, and an
assignee expression reading a field a parallel branch changed while the task is open. A tamper check that cries
wolf is soon ignored; the forgeries it must still name are in test_check_records.py."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from service.db.models import Case, Task, utcnow
from service.usecases import incidents
from service.usecases.casehistory import lock_case, record
from service.usecases.check import TaskStates, check_cases
from service.usecases.timers import fire_due_timers
from tests.api.support import TIMER_WAIT, hold_in_incident, start_admonishment
from tests.api.test_designer_versions import migrate
from tests.conformance.bpmn import chain, definitions, end, flow, message, message_ref, start, user

NEXT_FORM = {"type": "object", "title": "提名", "properties": {"next": {"type": "string", "title": "下一步办理人"}},
             "required": ["next"]}


def _assignee(expression: str) -> str:
    return (f'<spiffworkflow:properties><spiffworkflow:property name="assignee" value="{expression}"/>'
            "</spiffworkflow:properties>")


def _deploy(api, key: str, body: str, lanes: dict[str, list[str]], top: str = "") -> None:
    response = api.post(f"/api/processes/{key}/versions", as_="designer", content_type="application/xml",
                        data=definitions(key, body, lanes, top))
    assert response.status_code == 201, response.json


def _row(services, task_id: str) -> tuple:
    with services.db.unit_of_work(write=False) as session:
        return tuple(session.execute(select(Task.assignee, Task.due_at).where(Task.id == task_id)).one())


def test_an_assignee_field_a_parallel_branch_changes_is_no_fault(api, services, cadre):
    """`decide` goes to whom `propose` named; a parallel branch names someone else while `decide` is open. The
    task stays with its first holder (the diagram's expression is read when it opens): no fault; one given to
    someone else with SQL still is."""
    key = "renamed_holder"
    body = (start() + user("propose", NEXT_FORM) + '<bpmn:parallelGateway id="split"/>'
            + user("decide", extensions=_assignee("next")) + user("rename", NEXT_FORM)
            + '<bpmn:parallelGateway id="join"/>' + end()
            + chain("start", "propose", "split") + flow("split", "decide") + flow("split", "rename")
            + flow("decide", "join") + flow("rename", "join") + chain("join", "end"))
    _deploy(api, key, body, {"org_dept": ["propose", "rename"], "committee": ["decide"]})
    case_id = api.start(key, "c1")["id"]
    api.complete(case_id, "propose", as_="org_dept", next="committee")
    task_id = api.open_task(case_id, "decide")["id"]
    api.complete(case_id, "rename", as_="org_dept", next="org_dept")
    assert _row(services, task_id)[0] == "committee"
    assert check_cases(services, 3600) == (1, [])
    with services.db.unit_of_work() as session:
        session.execute(update(Task).where(Task.id == task_id).values(assignee="org_dept"))
    assert check_cases(services, 3600)[1] == [
        f"case {case_id}: open task {task_id} is held by org_dept, its history says by committee "
        "(待办任务的办理人与履历不符，可能被改动)"]


def test_an_assignee_expression_reading_the_day_is_no_fault(api, services, cadre):
    """`decide` goes to the committee until a day passes, to org_dept after it (today() is the service's day). The
    task opened on the first day stays with the committee; the engine's expression, read at check time, names
    org_dept: no fault, since the history says who the diagram gave it to."""
    key = "dated_holder"
    day = services.today()
    expression = f"'committee' if today() &lt;= '{day.isoformat()}' else 'org_dept'"
    body = (start() + user("propose") + user("decide", extensions=_assignee(expression)) + end()
            + chain("start", "propose", "decide", "end"))
    _deploy(api, key, body, {"org_dept": ["propose"], "committee": ["decide"]})
    case_id = api.start(key, "c1")["id"]
    api.complete(case_id, "propose", as_="org_dept", ok=True)
    task_id = api.open_task(case_id, "decide")["id"]
    assert _row(services, task_id)[0] == "committee"
    services.today = lambda: day + timedelta(days=1)
    assert check_cases(services, 3600) == (1, [])
    with services.db.unit_of_work() as session:
        session.execute(update(Task).where(Task.id == task_id).values(assignee="org_dept"))
    assert check_cases(services, 3600)[1] == [
        f"case {case_id}: open task {task_id} is held by org_dept, its history says by committee "
        "(待办任务的办理人与履历不符，可能被改动)"]


def _timed(event: str, assignee: str | None) -> str:
    """`a` (held by the diagram's `assignee`, with the boundary `event` definition), then `b`."""
    boundary = (f'<bpmn:boundaryEvent id="late" attachedToRef="a" cancelActivity="true">{event}</bpmn:boundaryEvent>'
                + end("late_end") + flow("late", "late_end"))
    return (start() + user("a", extensions=_assignee(assignee) if assignee else "") + user("b") + end()
            + boundary + chain("start", "a", "b", "end"))


def _timer(definition: str) -> str:
    return f'<bpmn:timerEventDefinition id="t_late">{definition}</bpmn:timerEventDefinition>'


THIRTY_DAYS = _timer('<bpmn:timeDuration>"P30D"</bpmn:timeDuration>')
# v2's event on the task: a timer of another kind (counted afresh, due earlier), or a message (no deadline)
OTHER_KINDS = {"an earlier date": lambda: _timer(f'<bpmn:timeDate>"{(utcnow() + timedelta(days=1)).isoformat()}"'
                                                 "</bpmn:timeDate>"),
               "a message (no deadline)": lambda: message_ref("recall")}


@pytest.mark.parametrize("kind", sorted(OTHER_KINDS))
def test_a_case_migrated_to_a_version_with_another_timer_or_assignee_is_no_fault(api, services, cadre, kind):
    """v1 gives `a` to org_dept and a 30-day deadline; v2 gives it to nobody, and a timer of another kind (counted
    afresh: due earlier) or a message event (no deadline). The migrated task keeps its holder and the later deadline
    (readmodel._keep_open): no fault; one moved with SQL afterwards still is."""
    key = "migrated_none" if "no deadline" in kind else "migrated_earlier"
    lanes = {"org_dept": ["a", "b"]}
    _deploy(api, key, _timed(THIRTY_DAYS, "'org_dept'"), lanes)
    case_id = api.start(key, "c1")["id"]
    task_id = api.open_task(case_id, "a")["id"]
    holder, due = _row(services, task_id)
    assert holder == "org_dept" and due is not None
    _deploy(api, key, _timed(OTHER_KINDS[kind](), None), lanes, message("recall"))
    response = migrate(api, case_id, to_version=2)
    assert response.status_code == 200, response.json
    assert _row(services, task_id) == (holder, due)
    assert check_cases(services, 3600) == (1, [])
    with services.db.unit_of_work() as session:
        session.execute(update(Task).where(Task.id == task_id).values(due_at=due + timedelta(days=90)))
    faults = check_cases(services, 3600)[1]
    assert len(faults) == 1 and f"open task {task_id} is due" in faults[0], faults


def test_a_migration_recorded_before_it_named_holders_and_deadlines_leaves_its_open_tasks_unchecked():
    """An older `migrate` entry says nothing of the open tasks: those open across it are held to neither their
    holder (unless an entry names one) nor their deadline (unless extended since); a newer one names both."""
    at = utcnow()
    older = [SimpleNamespace(action="claim", actor="discipline", at=at, detail={"task_id": "t1"}),
             SimpleNamespace(action="extend", actor="x", at=at, detail={"task_id": "t1", "until": at.isoformat()}),
             SimpleNamespace(action="migrate", actor="admin", at=at, detail={"case_id": 1, "to_version": 2}),
             SimpleNamespace(action="extend", actor="x", at=at, detail={"task_id": "t2", "until": at.isoformat()})]
    said = TaskStates.of(older)
    assert (said.blind_at, said.extended_after, said.holders) == (at, {"t2"}, {"t1": "discipline"})
    newer = [*older, SimpleNamespace(action="migrate", actor="admin", at=at, detail={
        "holders": {"t1": None, "t3": "org_dept"}, "due": {"t1": None, "t3": at.isoformat()}})]
    said = TaskStates.of(newer)
    assert (said.blind_at, said.holders, said.until["t3"]) == (at, {"t1": None, "t3": "org_dept"}, at)



def test_a_case_held_as_an_incident_by_the_service_is_no_fault_and_one_set_with_sql_is(api, services, cadre):
    """A step whose executor was killed at its time limit (or a timer loop) is held as an incident with no element
    failed (stepper.hold_as_incident records it), as is an automatic retry of it that stopped too: no fault. A case
    put in incident with SQL, or one whose incident was rewritten, still is."""
    held, forged = (start_admonishment(api)["id"] for _ in range(2))
    hold_in_incident(services, held)
    assert check_cases(services, 3600) == (2, [])
    with services.db.unit_of_work() as session:  # an automatic retry stopped too (incidents._count_stopped)
        case = lock_case(session, held)
        record(session, case, *incidents._entry(case, {"stopped": "step executor stopped (执行器已停止)"}))
    assert check_cases(services, 3600) == (2, [])
    with services.db.unit_of_work() as session:
        session.execute(update(Case).where(Case.id == forged).values(status="incident", incident={"message": "x"}))
    assert check_cases(services, 3600)[1] == [f"case {forged}: in incident but no element has failed"]
    with services.db.unit_of_work() as session:
        session.execute(update(Case).where(Case.id == held).values(incident={"message": "改过"}))
    assert check_cases(services, 3600)[1] == [f"case {held}: in incident but no element has failed",
                                              f"case {forged}: in incident but no element has failed"]


def test_a_supervised_deadline_that_passed_and_was_cleared_with_sql_is_named(api, services, cadre):
    """`a`'s non-interrupting deadline fires and opens its supervision (督办, an `escalation` entry): the engine has
    no deadline for `a` any more, its row keeps the one that passed, marked overdue. Clearing both with SQL drops
    it out of the overdue lists; the escalation says it had one: named. Left as the service left it: no fault."""
    key = "supervised"
    body = (start() + user("a") + user("supervise_a") + end() + end("end_supervised")
            + '<bpmn:boundaryEvent id="late" attachedToRef="a" cancelActivity="false">'
            + _timer('<bpmn:timeDuration>"PT1S"</bpmn:timeDuration>') + "</bpmn:boundaryEvent>"
            + chain("start", "a", "end") + chain("late", "supervise_a", "end_supervised"))
    _deploy(api, key, body, {"org_dept": ["a", "supervise_a"]})
    case_id = api.start(key, "c1")["id"]
    task_id = api.open_task(case_id, "a")["id"]
    time.sleep(TIMER_WAIT)
    assert fire_due_timers(services) == 1
    api.open_task(case_id, "supervise_a")
    due = _row(services, task_id)[1]
    assert due is not None and check_cases(services, 3600) == (1, [])
    with services.db.unit_of_work() as session:
        session.execute(update(Task).where(Task.id == task_id).values(due_at=None, overdue=False))
    faults = check_cases(services, 3600)[1]
    assert len(faults) == 1 and faults[0].startswith(f"case {case_id}: open task {task_id} is due None"), faults
