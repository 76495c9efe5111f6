"""A timer step that opens a child case whose own start fails: the step is held as an incident whole or not at all,
never stored half (the caller's state moved on, its history written, and no child for it to wait for)."""

from __future__ import annotations

from service.usecases.check import check_cases
from tests.api.support import template  # noqa: F401 - the session fixture
from tests.conformance.bpmn import chain, definitions, end, timer, user
from tests.conformance.conftest import conformance_app, driver  # noqa: F401 - the fixtures
from tests.conformance.constructs import lane

FAILING_ASSIGNEE = ('<spiffworkflow:properties><spiffworkflow:property name="assignee" value="no_such_field.upper()"/>'
                    "</spiffworkflow:properties>")


def test_a_child_that_cannot_start_leaves_its_callers_timer_step_unstored(driver):  # noqa: F811
    """The caller waits at a timer, then calls a process whose first task's assignee expression fails: the timer
    step is held as an incident with the caller's state, tasks and history as they were before it, as after any
    other failed step; a person fixes the called process and retries."""
    driver.deployed("timed_child", definitions(
        "timed_child", '<bpmn:startEvent id="start"/>' + user("c", extensions=FAILING_ASSIGNEE) + end()
        + chain("start", "c", "end"), lane("c")))
    driver.deployed("timed_caller", definitions(
        "timed_caller", '<bpmn:startEvent id="start"/>' + f'<bpmn:intermediateCatchEvent id="wait">{timer()}'
        '</bpmn:intermediateCatchEvent><bpmn:callActivity id="call" calledElement="timed_child"/>' + user("a") + end()
        + chain("start", "wait", "call", "a", "end"), lane("a")))
    caller = driver.start("timed_caller")["id"]
    before = driver.api.history(caller)
    driver.fire_timers()
    held = driver.case(caller)
    assert (held["status"], held["child_case_ids"], held["open_tasks"]) == ("incident", [], [])
    assert held["next_timer_due"] is not None  # the saved state still waits at the timer
    assert [entry["action"] for entry in driver.api.history(caller)] == [e["action"] for e in before] + ["incident"]
    assert not any("differ" in fault for fault in check_cases(driver.services, 3600)[1])
