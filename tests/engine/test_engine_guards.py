"""Engine guards: task readiness, the loop-depth limit, cancel, diagram, spec-free state, incidents."""

from __future__ import annotations

import json
from datetime import date

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.util.task import TaskState

from tests.conformance.bpmn import definitions, end, flow, script, start
from tests.engine.helpers import BPMN_DIR, ROLES, Driver, FakeServices, deadlines, incident_of
from workflows.engine import (
    CaseRunner,
    EngineError,
    Incident,
    LoopLimitExceeded,
    NotWaiting,
    ProcessDefinition,
    TaskNotReady,
    compile_process,
    serialization,
)
from workflows.engine.bounds import DeployLimits
from workflows.engine.specs import spec_config

VETTING = "pre_appointment_vetting"
VETTING_START = {"cadre_id": "c1", "proposed_post": "县发改局局长", "selection_method": "competitive"}
ADMONISHMENT_START = {"cadre_id": "c1", "trigger": "complaint", "summary": "反映问题"}


def element_ids(key: str) -> set[str]:
    root = etree.parse(str(BPMN_DIR / f"{key}.bpmn")).getroot()
    process = root.find("{http://www.omg.org/spec/BPMN/20100524/MODEL}process")
    return {el.get("id") for el in process.iter() if el.get("id")}


def to_public_notice(driver: Driver) -> None:
    driver.start(**VETTING_START)
    for element_id in ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion"):
        driver.complete(element_id, opinion="positive")
    driver.complete("democratic_evaluation", votes_approve=3, votes_basic=0, votes_disapprove=0)
    driver.complete("org_head_review", decision="approve")


# Task readiness --------------------------------------------------------------------------------


def test_completing_a_task_twice_raises(drive):
    """A task completes once: completing the same id again from the new state raises TaskNotReady."""
    driver = drive("admonishment")
    old = driver.start(**ADMONISHMENT_START)
    task_id = driver.task("intake_review").id
    new = driver.complete_id(task_id, form="talk", reason="r")
    assert driver.open_ids() == ["conduct_talk"]
    with pytest.raises(TaskNotReady):
        driver.complete_id(task_id, form="written", reason="again")
    assert driver.step is new
    assert driver.runner.inspect(driver.definition, old.state).open_tasks[0].id == task_id  # old state untouched


@pytest.mark.parametrize("task_id", ["not-a-uuid", "7a6e426b-0f7f-4912-be0c-9ae7aab006aa", ""])
def test_unknown_task_id_raises(drive, task_id):
    """A task id that is not in the case raises TaskNotReady."""
    driver = drive("admonishment")
    driver.start(**ADMONISHMENT_START)
    with pytest.raises(TaskNotReady):
        driver.complete_id(task_id, form="talk", reason="r")


def test_future_task_cannot_be_completed(drive):
    """A user task that exists in the tree but is not READY yet (FUTURE) raises TaskNotReady."""
    driver = drive(VETTING)
    step = driver.start(**VETTING_START)
    workflow = serialization.load(step.state, driver.definition.spec, driver.definition.subprocess_specs)
    future = [t for t in workflow.get_tasks() if t.task_spec.bpmn_id == "org_head_review"]
    assert future and all(t.state != TaskState.READY for t in future)
    for task in future:
        with pytest.raises(TaskNotReady):
            driver.complete_id(str(task.id), decision="approve")
    assert driver.open_ids() == sorted(["democratic_evaluation", "solicit_colleague_opinion",
                                        "solicit_family_opinion", "solicit_public_opinion"])


def test_automatic_or_waiting_task_cannot_be_completed(drive):
    """The id of a waiting boundary timer (not a user task) raises TaskNotReady."""
    driver = drive("admonishment")
    driver.start(**ADMONISHMENT_START)
    driver.complete("intake_review", form="inquiry", reason="r")
    workflow = serialization.load(driver.state, driver.definition.spec, driver.definition.subprocess_specs)
    timer = next(t for t in workflow.get_tasks() if t.task_spec.bpmn_id == "timer_record_inquiry_reply")
    assert timer.state == TaskState.WAITING
    with pytest.raises(TaskNotReady):
        driver.complete_id(str(timer.id))


def test_task_of_finished_case_cannot_be_completed(drive):
    """After the case ended, a task id that was open before raises TaskNotReady."""
    driver = drive("admonishment")
    driver.start(**ADMONISHMENT_START)
    task_id = driver.task("intake_review").id
    driver.complete_id(task_id, form="dismiss", reason="r")
    assert driver.step.completed
    with pytest.raises(TaskNotReady):
        driver.complete_id(task_id, form="dismiss", reason="r")


# Loop depth ------------------------------------------------------------------------------------


def test_a_loop_through_a_person_stays_flat_however_long(review_loop):
    """500 passes around a user-task loop: the saved state does not grow, no guard trips, the case ends well."""
    driver = Driver(review_loop, max_depth=60)
    driver.start(cadre_id="c1")
    sizes = []
    for _ in range(500):
        step = driver.complete("review", again=True)
        assert not step.completed and driver.open_ids() == ["review"]
        sizes.append(len(step.state))
    assert max(sizes[-50:]) <= sizes[1] * 1.2  # flat: the history lives in the service's table, not the state
    assert driver.step.data["passes"] == 501
    done = driver.complete("review", again=False)
    assert done.completed and done.outcome == "done" and "review" in done.diagram.completed


def test_an_automatic_loop_within_one_step_is_refused_and_the_case_kept(review_loop):
    """A script loop that spins inside one step runs past max_depth: the step is refused, nothing saved."""
    body = (start() + script("count", "n = n + 1") + '<bpmn:exclusiveGateway id="again" default="f_again_end"/>'
            + end() + flow("start", "count") + flow("count", "again") + flow("again", "count", "n < 100000")
            + flow("again", "end"))
    definition = compile_process("spin", definitions("spin", body), {}, ROLES)
    with pytest.raises(LoopLimitExceeded):
        CaseRunner({}, max_depth=60).start(definition, {"n": 0}, None)


def test_loop_limit_is_an_engine_error():
    """LoopLimitExceeded is an EngineError, so the service maps it with the others."""
    assert issubclass(LoopLimitExceeded, EngineError)


def test_loop_below_limit_runs_normally(review_loop):
    """A few passes around the loop under the default limit end normally with the pass count kept."""
    driver = Driver(review_loop)
    driver.start(cadre_id="c1")
    for _ in range(5):
        driver.complete("review", again=True)
    step = driver.complete("review", again=False)
    assert step.outcome == "done"
    assert step.data["passes"] == 6


# Cancel ----------------------------------------------------------------------------------------


def test_cancel_completes_with_no_open_tasks(drive):
    """cancel: completed, no outcome, no open task, no timer; the state still loads."""
    driver = drive("admonishment")
    driver.start(**ADMONISHMENT_START)
    driver.complete("intake_review", form="inquiry", reason="r")
    assert driver.step.next_timer_due is not None
    step = driver.cancel()
    assert step.completed
    assert step.outcome is None
    assert step.open_tasks == ()
    assert step.next_timer_due is None
    assert driver.runner.inspect(driver.definition, step.state).completed


def test_cancelled_case_accepts_nothing(drive):
    """After cancel, old task ids raise TaskNotReady and messages raise NotWaiting; timers do nothing."""
    driver = drive(VETTING, fast=("public_notice",))
    step = driver.start(**VETTING_START)
    task_id = step.open_tasks[0].id
    driver.cancel()
    with pytest.raises(TaskNotReady):
        driver.complete_id(task_id, opinion="positive")
    with pytest.raises(NotWaiting):
        driver.message("vetting_objection", summary="举报")
    step = driver.wait_and_fire()
    assert step.open_tasks == () and step.completed


def test_cancel_during_public_notice(drive):
    """Cancelling a case that waits on a timer/message gateway leaves nothing waiting."""
    driver = drive(VETTING)
    to_public_notice(driver)
    step = driver.cancel()
    assert step.completed and step.open_tasks == () and step.next_timer_due is None
    with pytest.raises(NotWaiting):
        driver.message("vetting_objection", summary="举报")


# Diagram ---------------------------------------------------------------------------------------


def test_diagram_lists_completed_and_active_elements(drive):
    """diagram: automatic steps done are completed, the open tasks are active, and both move on."""
    driver = drive(VETTING)
    driver.start(**VETTING_START)
    diagram = driver.runner.diagram(driver.definition, driver.state)
    assert {"start", "load_cadre_facts", "check_eligibility", "gw_eligible"} <= set(diagram.completed)
    assert set(diagram.active) == {"solicit_family_opinion", "solicit_colleague_opinion",
                                   "solicit_public_opinion", "democratic_evaluation"}
    driver.complete("solicit_family_opinion", opinion="positive")
    diagram = driver.runner.diagram(driver.definition, driver.state)
    assert "solicit_family_opinion" in diagram.completed
    assert "solicit_family_opinion" not in diagram.active
    assert "org_head_review" not in diagram.completed + diagram.active


def test_diagram_ids_are_bpmn_element_ids(drive):
    """diagram reports only ids of the BPMN file (no engine-internal task names)."""
    driver = drive(VETTING)
    to_public_notice(driver)
    diagram = driver.runner.diagram(driver.definition, driver.state)
    assert set(diagram.completed) | set(diagram.active) <= element_ids(VETTING)
    assert "public_notice" in diagram.active
    assert "org_head_review" in diagram.completed


def test_diagram_of_finished_case(drive):
    """A finished case has its end event completed and nothing active."""
    driver = drive(VETTING, facts={"open_accountability": True})
    driver.start(**VETTING_START)
    diagram = driver.runner.diagram(driver.definition, driver.state)
    assert "end_ineligible" in diagram.completed
    assert diagram.active == ()
    assert "solicit_family_opinion" not in diagram.completed


# Saved state -----------------------------------------------------------------------------------


def test_saved_state_has_no_spec_and_is_much_smaller(drive):
    """The saved state carries no spec: no `spec` key, far smaller than Spiff's default, and it loads."""
    driver = drive(VETTING)
    step = driver.start(**VETTING_START)
    saved = json.loads(step.state)
    assert "spec" not in saved
    workflow = serialization.load(step.state, driver.definition.spec, driver.definition.subprocess_specs)
    default = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(spec_config())).serialize_json(workflow)
    assert "spec" in json.loads(default)
    assert len(step.state) < 0.6 * len(default)
    assert "x-enumNames" in default and "x-enumNames" not in step.state  # forms live in the spec only
    assert driver.runner.inspect(driver.definition, step.state).open_tasks


@pytest.mark.parametrize("state", ["", "not json", "{}", '{"format": "other"}', "[]"])
def test_unloadable_state_raises_engine_error(drive, state):
    """A state that is not a saved case raises EngineError (not a raw library exception)."""
    driver = drive(VETTING)
    with pytest.raises(EngineError):
        driver.runner.inspect(driver.definition, state)


def test_non_json_form_data_is_refused(drive):
    """Form data that is not JSON (a date object) raises Incident; the old state stays usable."""
    driver = drive("admonishment")
    step = driver.start(**ADMONISHMENT_START)
    with pytest.raises(Incident):
        driver.runner.complete(driver.definition, step.state, step.open_tasks[0].id,
                               {"form": "talk", "reason": date(2026, 11, 29)}, driver.services)
    driver.complete("intake_review", form="talk", reason="文本")
    assert driver.open_ids() == ["conduct_talk"]


def test_typename_in_message_payload_does_not_corrupt_case(drive):
    """A message payload with a `typename` key is refused or stored so that the case still loads."""
    driver = drive(VETTING)
    to_public_notice(driver)
    payload = {"typename": "BpmnEvent", "summary": "举报"}
    try:
        step = driver.runner.deliver_message(driver.definition, driver.state, "vetting_objection", payload,
                                             driver.services)
    except EngineError:
        assert driver.runner.inspect(driver.definition, driver.state).open_tasks == ()
        return
    loaded = driver.runner.inspect(driver.definition, step.state)
    assert loaded.data["objection"] == payload


def test_typename_in_form_data_does_not_corrupt_case(drive):
    """Form data with a `typename` key is refused or stored so that the case still loads."""
    driver = drive("admonishment")
    step = driver.start(**ADMONISHMENT_START)
    try:
        step = driver.runner.complete(driver.definition, step.state, step.open_tasks[0].id,
                                      {"form": "talk", "reason": "r", "typename": "x"}, driver.services)
    except EngineError:
        return
    loaded = driver.runner.inspect(driver.definition, step.state)
    assert [t.element_id for t in loaded.open_tasks] == ["conduct_talk"]


def test_typename_in_service_result_does_not_corrupt_case(drive):
    """A service result with a `typename` key is refused (incident) or stored so that the case still loads."""
    driver = drive(VETTING)

    def odd(operation, params, data):
        return {**FakeServices()(operation, params, data), "typename": "BpmnWorkflow"}
    try:
        step = driver.runner.start(driver.definition, VETTING_START, odd)
    except EngineError:
        return
    loaded = driver.runner.inspect(driver.definition, step.state)
    assert loaded.data == step.data


# Incidents in automatic steps ------------------------------------------------------------------


def test_failing_service_is_an_incident_at_its_element(drive):
    """A service handler that raises gives an incident naming the service task; the case does not move on."""
    driver = drive(VETTING)

    def broken(operation, params, data):
        raise RuntimeError("glue is down")
    incident, step = incident_of(lambda: driver.runner.start(driver.definition, VETTING_START, broken))
    assert incident.element_id == "load_cadre_facts"
    assert "glue is down" in incident.message
    if step is not None:
        assert step.open_tasks == () and not step.completed
        assert "load_cadre_facts" in step.failed_elements


def test_missing_service_handler_is_an_incident(drive):
    """Starting a case whose first step is a service task without a handler gives an incident there."""
    driver = drive(VETTING)
    incident, step = incident_of(lambda: driver.runner.start(driver.definition, VETTING_START, None))
    assert incident.element_id == "load_cadre_facts"
    if step is not None:
        assert not step.completed and step.open_tasks == ()


def test_missing_deadline_is_an_incident(definitions):
    """A timer whose deadline key is not configured gives an incident, not a crash or a silent wait."""
    runner = CaseRunner({k: v for k, v in deadlines().items() if k != "inquiry_reply"})
    definition = definitions["admonishment"]
    services = FakeServices()
    step = runner.start(definition, ADMONISHMENT_START, services)
    incident, failed = incident_of(lambda: runner.complete(definition, step.state, step.open_tasks[0].id,
                                                           {"form": "inquiry", "reason": "r"}, services))
    assert "inquiry_reply" in incident.message
    if failed is not None:
        assert not failed.completed


def _voting(cardinality: str) -> ProcessDefinition:
    from tests.conformance.bpmn import chain, user

    mi = ('<bpmn:multiInstanceLoopCharacteristics isSequential="false"><bpmn:loopCardinality>'
          f"{cardinality}</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>")
    body = start() + user("vote", inner=mi) + end() + chain("start", "vote", "end")
    return compile_process("votes", definitions("votes", body, {"org_dept": ["vote"]}), {}, ROLES,
                           limits=DeployLimits())


def test_a_parallel_multi_instance_counted_at_run_time_opens_no_more_tasks_than_a_literal_may():
    """Deploy bounds a literal cardinality (max_instances); one computed from case data was unbounded: 5,000 person
    tasks opened in one step (under the state limit), each announced to every user of the lane's role."""
    runner = CaseRunner(deadlines())
    incident, _step = incident_of(lambda: runner.start(_voting("int('5000')"), {}, None))
    assert incident.element_id == "vote" and "200" in incident.message
    assert len(runner.start(_voting("int('200')"), {}, None).open_tasks) == 200
