"""A diagram naming a deactivated user as a task's assignee: the task waits in its role's pool, not with them."""

from __future__ import annotations

from service.usecases import notifications, users
from tests.api.support import template  # noqa: F401 - the session fixture
from tests.conformance.bpmn import chain, definitions, end, user
from tests.conformance.conftest import conformance_app, driver  # noqa: F401 - the fixtures
from tests.conformance.constructs import lane
from tests.conftest import actor

ASSIGNEE = ('<spiffworkflow:properties><spiffworkflow:property name="assignee" value="\'org_dept2\'"/>'
            "</spiffworkflow:properties>")


def test_a_task_the_diagram_gives_a_deactivated_user_goes_to_its_role(driver):  # noqa: F811
    """org_dept2 is named by the diagram but deactivated: the task opens unheld, the history says why, and the
    role's holders are told of it and may complete it."""
    driver.deployed("named_holder", definitions(
        "named_holder", '<bpmn:startEvent id="start"/>' + user("a", extensions=ASSIGNEE) + end()
        + chain("start", "a", "end"), lane("a")))
    assert driver.api.patch("/api/users/org_dept2", json={"active": False}).status_code == 200
    case_id = driver.start("named_holder")["id"]
    task = driver.api.open_task(case_id, "a")
    assert task["assignee"] is None
    entry = driver.api.history(case_id)[-1]
    assert (entry["action"], entry["actor"], entry["detail"]) == (
        "unclaim", "system", {"task_id": task["id"], "from": "org_dept2", "reason": users.NO_ACTIVE_ACCOUNT})
    told = notifications.list_notifications(driver.services, actor("org_dept"))["items"]
    assert task["id"] in [n["task_id"] for n in told]
    response = driver.api.post(f"/api/tasks/{task['id']}/complete", as_="org_dept", json={"data": {"ok": True}})
    assert response.status_code == 200, response.json


def test_a_task_the_diagram_gives_a_name_nobody_has_goes_to_its_role(driver):  # noqa: F811
    """The diagram names `ghost`, no account at all: the task opens unheld with the same history entry, so it
    never waits for someone who cannot log in."""
    driver.deployed("ghost_holder", definitions(
        "ghost_holder", '<bpmn:startEvent id="start"/>' + user("a", extensions=ASSIGNEE.replace("org_dept2", "ghost"))
        + end() + chain("start", "a", "end"), lane("a")))
    case_id = driver.start("ghost_holder")["id"]
    task = driver.api.open_task(case_id, "a")
    assert task["assignee"] is None
    entry = driver.api.history(case_id)[-1]
    assert (entry["action"], entry["detail"]) == (
        "unclaim", {"task_id": task["id"], "from": "ghost", "reason": users.NO_ACTIVE_ACCOUNT})
