"""Call activities a designer draws: however they call each other, one step opens a bounded number of cases."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from service.db.models import Case
from service.usecases.stepper import MAX_CALL_DEPTH, MAX_CALLED_CASES
from service.usecases.timers import fire_due_timers
from tests.api.support import app_from_template, make_api
from tests.conformance.bpmn import definitions, end, flow, script, start, user

FAN_OUT = 3


@pytest.fixture
def calls_app(template, tmp_path):
    app = app_from_template(template, tmp_path / "calls")
    yield app
    app.extensions["cadreflow"].db.dispose()


def calling_itself(key: str, times: int) -> bytes:
    """start → a parallel split into `times` call activities, each calling this very process → join → end."""
    calls = "".join(f'<bpmn:callActivity id="call{i}" calledElement="{key}"/>' for i in range(times))
    branches = "".join(flow("split", f"call{i}") + flow(f"call{i}", "join") for i in range(times))
    return definitions(key, start() + '<bpmn:parallelGateway id="split"/>' + calls + '<bpmn:parallelGateway id="join"/>'
                       + end() + flow("start", "split") + branches + flow("join", "end"))


def test_a_process_calling_itself_at_once_opens_a_bounded_tree(calls_app, template):
    """Before: one start opened 1 + 3 + 9 + 27 + 81 + 243 cases in one transaction (depth 5 was the only bound);
    with ten calls at once it would have been 111,111. Past the bound a call is an incident at its element."""
    api = make_api(calls_app, template)
    api.create_cadre("c1")
    key = "calls_itself"
    deployed = api.post(f"/api/processes/{key}/versions", as_="designer", data=calling_itself(key, FAN_OUT),
                        content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    assert api.post("/api/cases", as_="admin", json={"process": key, "cadre_id": "c1", "data": {}}).status_code == 201
    services = calls_app.extensions["cadreflow"]
    with services.db.unit_of_work(write=False) as session:
        cases = session.scalar(select(func.count()).select_from(Case).where(Case.process_key == key))
        refused = [case.incident["message"] for case in session.scalars(select(Case).where(
            Case.process_key == key, Case.status == "incident"))]
    assert cases <= 1 + FAN_OUT + MAX_CALLED_CASES, cases
    assert any(f"more than {MAX_CALLED_CASES} cases" in message for message in refused), refused[:3]


def test_a_chain_of_calls_stops_at_the_depth_bound_on_start_and_on_retry(calls_app, template):
    """A process calling itself once opens one case below another until MAX_CALL_DEPTH callers wait: the deepest
    case's call is its incident at the call activity. A retry of that case (a step of a called case, which counts
    its callers anew) is refused at the same bound, and opens nothing."""
    api = make_api(calls_app, template)
    api.create_cadre("c1")
    key = "calls_itself_once"
    deployed = api.post(f"/api/processes/{key}/versions", as_="designer", data=calling_itself(key, 1),
                        content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    assert api.post("/api/cases", as_="admin", json={"process": key, "cadre_id": "c1", "data": {}}).status_code == 201
    chain = called_chain(calls_app, key)
    assert len(chain) == 1 + MAX_CALL_DEPTH and [status for _, status, _ in chain[:-1]] == ["open"] * MAX_CALL_DEPTH
    deepest, status, message = chain[-1]
    assert status == "incident" and f"nested deeper than {MAX_CALL_DEPTH}" in message
    retried = api.post(f"/api/cases/{deepest}/retry", as_="admin")
    assert retried.status_code == 200 and retried.json["status"] == "incident", retried.json
    assert called_chain(calls_app, key) == chain


def called_chain(app, key: str) -> list[tuple[int, str, str]]:
    """Each case of the process, its status and its incident's message, from the top of the chain down."""
    with app.extensions["cadreflow"].db.unit_of_work(write=False) as session:
        return [(case.id, case.status, (case.incident or {}).get("message", ""))
                for case in session.scalars(select(Case).where(Case.process_key == key).order_by(Case.id))]



def _service(operation: str, params: dict[str, str], instances: int | None = None, element_id: str = "open") -> str:
    """A service task calling `operation` with literal text `params`, `instances` times at once when given."""
    given = "".join(f'<spiffworkflow:parameter id="{name}" type="str" value="&quot;{value}&quot;"/>'
                    for name, value in params.items())
    many = (f"<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>{instances}</bpmn:loopCardinality>"
            "</bpmn:multiInstanceLoopCharacteristics>") if instances else ""
    return (f'<bpmn:serviceTask id="{element_id}"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator '
            f'id="{operation}" resultVariable="started"><spiffworkflow:parameters>{given}</spiffworkflow:parameters>'
            f"</spiffworkflow:serviceTaskOperator></bpmn:extensionElements>{many}</bpmn:serviceTask>")


def _version(api, key: str, *tasks: str) -> None:
    """A new version of `key`: start → `tasks` one after the other → a user task → end."""
    ids = [f"open{i}" for i in range(len(tasks))]
    body = (start() + "".join(task.replace('id="open"', f'id="{i}"', 1) for task, i in zip(tasks, ids, strict=True))
            + user("a") + end() + "".join(flow(a, b) for a, b in pairwise(["start", *ids, "a", "end"])))
    deployed = api.post(f"/api/processes/{key}/versions", as_="designer", content_type="application/xml",
                        data=definitions(key, body, {"discipline": ["a"]}))
    assert deployed.status_code == 201, deployed.json


ACCOUNTABILITY = ("start_accountability", {"source": "report", "allegation": "again"})
ADMONISHMENT = ("start_admonishment", {"trigger": "again", "summary": "again"})
DEPARTURE = ("start_departure_audit", {"departure_reason": "again"})


def _refused_opening_nothing(api, app, bound: str) -> None:
    refused = api.post("/api/cases", as_="admin", json={"process": "accountability", "cadre_id": "c1", "data": {}})
    assert refused.status_code == 422 and bound in refused.json["error"]["message"], refused.json
    with app.extensions["cadreflow"].db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0


def test_a_process_opening_itself_through_a_service_task_is_refused_at_the_depth_bound(calls_app, template):
    """Before: a start recursed, each level a case and an executor step, until Python's recursion limit (a 500)."""
    api = make_api(calls_app, template)
    api.create_cadre("c1")
    _version(api, "accountability", _service(*ACCOUNTABILITY))
    _refused_opening_nothing(api, calls_app, f"deeper than {MAX_CALL_DEPTH}")


def test_service_tasks_opening_cases_that_open_cases_are_refused_at_the_count_bound(calls_app, template):
    """Twenty linked cases each opening twenty more: 420 cases in one start, past MAX_CALLED_CASES."""
    api = make_api(calls_app, template)
    api.create_cadre("c1")
    _version(api, "accountability", _service(*ADMONISHMENT, instances=20))
    _version(api, "admonishment", _service(*DEPARTURE, instances=20))
    _version(api, "departure_audit")
    _refused_opening_nothing(api, calls_app, f"more than {MAX_CALLED_CASES}")


SLOW_CHILD = "x = len(sorted([[0] * 2000] * 100000))"  # one builtin call, some tenths of a second: in the step limit
CHILDREN = 8
MANY_SLOW_CHILDREN = (f'<bpmn:callActivity id="call" calledElement="slow_child"><bpmn:multiInstanceLoopCharacteristics>'
                      f"<bpmn:loopCardinality>{CHILDREN}</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>"
                      "</bpmn:callActivity>")


def _deploy_slow_children(api, key: str, caller) -> None:
    """The slow child process, then `caller` (which calls it CHILDREN times) as `key`."""
    child = definitions("slow_child", start() + script("s", SLOW_CHILD) + user("c") + end()
                        + flow("start", "s") + flow("s", "c") + flow("c", "end"), {"discipline": ["c"]})
    for process, document in (("slow_child", child), (key, caller)):
        deployed = api.post(f"/api/processes/{process}/versions", as_="designer", data=document,
                            content_type="application/xml")
        assert deployed.status_code == 201, deployed.json


def _slow_children(app) -> int:
    with app.extensions["cadreflow"].db.unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(Case).where(Case.process_key == "slow_child"))


def test_one_steps_child_starts_share_one_time_budget(template, tmp_path):
    """Each child case's first step may take the whole step limit (STEP_TIMEOUT_SECONDS), and a step may open up to
    MAX_CALLED_CASES of them: before, one request was held for their sum (200 x the step limit). Past
    CHILD_STARTS_SECONDS for all of one step's children the step is refused whole: no child, the caller as it was."""
    app = app_from_template(template, tmp_path / "budget", STEP_TIMEOUT_SECONDS=5.0, CHILD_STARTS_SECONDS=0.2)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        caller = definitions("fan_out", start() + user("a") + MANY_SLOW_CHILDREN + end() + flow("start", "a")
                             + flow("a", "call") + flow("call", "end"), {"discipline": ["a"]})
        _deploy_slow_children(api, "fan_out", caller)
        alone = api.post("/api/cases", as_="admin", json={"process": "slow_child", "cadre_id": "c1", "data": {}})
        assert alone.json["status"] == "open", alone.json  # an honest child: its script runs inside the step limit
        case = api.post("/api/cases", as_="admin", json={"process": "fan_out", "cadre_id": "c1", "data": {}}).json
        task = case["open_tasks"][0]
        refused = api.post(f"/api/tasks/{task['id']}/complete", as_="admin", json={"data": {"ok": True}})
        assert refused.status_code == 422, refused.json
        assert "CHILD_STARTS_SECONDS" in refused.json["error"]["message"], refused.json
        after = api.get(f"/api/cases/{case['id']}", as_="admin").json
        assert after["status"] == "open" and [t["id"] for t in after["open_tasks"]] == [task["id"]], after
        assert _slow_children(app) == 1
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_a_timer_step_past_the_child_budget_holds_its_case_as_an_incident(template, tmp_path):
    """The worker's timer step opening the children: past CHILD_STARTS_SECONDS the case is held as an incident with
    its state as before the step (still at the timer), no child stored."""
    app = app_from_template(template, tmp_path / "budget", STEP_TIMEOUT_SECONDS=5.0, CHILD_STARTS_SECONDS=0.2)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        wait = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="t1">'
                '<bpmn:timeDuration>"PT1S"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
        caller = definitions("timed_fan_out", start() + wait + MANY_SLOW_CHILDREN + end() + flow("start", "wait")
                             + flow("wait", "call") + flow("call", "end"))
        _deploy_slow_children(api, "timed_fan_out", caller)
        case = api.post("/api/cases", as_="admin", json={"process": "timed_fan_out", "cadre_id": "c1", "data": {}}).json
        time.sleep(1.2)
        fire_due_timers(app.extensions["cadreflow"])
        after = api.get(f"/api/cases/{case['id']}", as_="admin").json
        assert after["status"] == "incident" and after["next_timer_due"] == case["next_timer_due"], after
        assert _slow_children(app) == 0
    finally:
        app.extensions["cadreflow"].db.dispose()
