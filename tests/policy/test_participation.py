"""Reading a case by owning a lane of its process version, or by taking part in it."""

from __future__ import annotations

from service.usecases import users
from tests.api.support import VETTING, assert_error, start_vetting
from tests.conftest import actor
from tests.engine.bpmn_builder import HEADER, form_schema, script_process
from workflows.engine import lane_roles

KEY = "nested_lanes"


def _task(element_id: str) -> str:
    return (f'<bpmn:userTask id="{element_id}" name="任务"><bpmn:extensionElements>{form_schema()}'
            "</bpmn:extensionElements></bpmn:userTask>")


def nested_lanes_process() -> bytes:
    """prepare (lane org_dept) → embedded subprocess `sub` (in org_dept's child lane org_head) whose own lane set
    has a lane audit → end. The top lane set names org_dept and org_head; audit is drawn only inside `sub`."""
    lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="l_org" name="org_dept"><bpmn:flowNodeRef>prepare</bpmn:flowNodeRef>'
             '<bpmn:childLaneSet id="cls"><bpmn:lane id="l_head" name="org_head"><bpmn:flowNodeRef>sub'
             "</bpmn:flowNodeRef></bpmn:lane></bpmn:childLaneSet></bpmn:lane></bpmn:laneSet>")
    sub = ('<bpmn:subProcess id="sub" name="审计"><bpmn:laneSet id="sls"><bpmn:lane id="l_audit" name="audit">'
           "<bpmn:flowNodeRef>audit_step</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>"
           f'<bpmn:startEvent id="s_start"/>{_task("audit_step")}<bpmn:endEvent id="s_end"/>'
           '<bpmn:sequenceFlow id="sf1" sourceRef="s_start" targetRef="audit_step"/>'
           '<bpmn:sequenceFlow id="sf2" sourceRef="audit_step" targetRef="s_end"/></bpmn:subProcess>')
    flows = "".join(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
                    for i, (a, b) in enumerate([("start", "prepare"), ("prepare", "sub"), ("sub", "end_done")]))
    return (HEADER.format(key=KEY) + f'<bpmn:process id="{KEY}" name="嵌套泳道" isExecutable="true">{lanes}'
            f'<bpmn:startEvent id="start"/>{_task("prepare")}{sub}'
            f'<bpmn:endEvent id="end_done"><bpmn:terminateEventDefinition id="t"/></bpmn:endEvent>{flows}'
            "</bpmn:process></bpmn:definitions>").encode()


def deploy(api, key, bpmn):
    response = api.post(f"/api/processes/{key}/versions", as_="designer", data=bpmn, content_type="application/xml")
    assert response.status_code == 201, response.json


def test_lanes_are_read_from_nested_lane_sets_and_embedded_subprocesses():
    """lane_roles finds the top lanes, child lanes and a subprocess's own lanes of that process only."""
    assert lane_roles(nested_lanes_process(), KEY) == {"org_dept", "org_head", "audit"}
    assert lane_roles(nested_lanes_process(), "another_process") == frozenset()


def test_owning_a_lane_inside_an_embedded_subprocess_reads_the_case_before_it_gets_there(api, cadre):
    """audit owns a lane only inside the subprocess: it reads the case from its start; designer does not."""
    deploy(api, KEY, nested_lanes_process())
    case_id = api.start(KEY, "c1")["id"]
    assert api.get(f"/api/cases/{case_id}", as_="audit").status_code == 200
    assert [c["id"] for c in api.get("/api/cases", as_="audit").json["items"]] == [case_id]
    assert_error(api.get(f"/api/cases/{case_id}", as_="committee"), 404, "not_found")


def test_a_user_named_outside_its_lanes_gets_neither_the_task_nor_the_case(api, cadre):
    """The diagram assigns `review` (lane org_dept) to the start data's reviewer. Named there, committee (no role of
    that lane) is not given the task (API.md: completing needs the task's role; a form field could otherwise hand
    one role's decision to another): it waits in the org_dept pool, committee reads that case no more than org_head,
    with no lane and no part (404 like an unknown case), and an org_dept user completes it."""
    deploy(api, "sandbox_case", script_process(assignee="reviewer"))
    case_id = api.start("sandbox_case", "c1", reviewer="committee")["id"]
    task = api.open_task(case_id, "review")
    assert (task["role"], task["assignee"]) == ("org_dept", None)
    for reader in ("committee", "org_head"):
        assert_error(api.get(f"/api/cases/{case_id}", as_=reader), 404, "not_found")
        assert_error(api.get(f"/api/tasks/{task['id']}", as_=reader), 404, "not_found")
        assert api.get("/api/cases", as_=reader, query_string={"process": "sandbox_case"}).json["items"] == []
    done = api.post(f"/api/tasks/{task['id']}/complete", as_="org_dept", json={"data": {"ok": True}})
    assert done.status_code == 200 and done.json["status"] == "completed"
    assert_error(api.get(f"/api/cases/{case_id}/history", as_="committee"), 404, "not_found")


def test_claiming_makes_a_user_a_participant_who_keeps_reading_after_losing_the_lane_role(api, cadre, services):
    """org_dept2 claims a vetting task, then is moved to audit: it reads that case still, not another vetting."""
    claimed = start_vetting(api)["id"]
    untouched = start_vetting(api)["id"]
    task = api.open_task(claimed, "solicit_family_opinion")
    assert api.post(f"/api/tasks/{task['id']}/claim", as_="org_dept2").status_code == 200
    users.update_user(services, actor("admin"), "org_dept2", roles=["audit"])
    api.tokens.pop("org_dept2")  # a role change ends the user's tokens: log in again
    assert api.get(f"/api/cases/{claimed}", as_="org_dept2").status_code == 200
    assert_error(api.get(f"/api/cases/{untouched}", as_="org_dept2"), 404, "not_found")
    ids = {c["id"] for c in api.get("/api/cases", as_="org_dept2", query_string={"process": VETTING}).json["items"]}
    assert ids == {claimed}


def test_a_designer_a_diagram_names_as_assignee_reads_no_case(api, cadre):
    """docs/api.md: designers read no case. An assignee expression is designer code: a version whose task is
    assigned to a designer does not let it read the cases it opens (case, task, history, files: 404 like an
    unknown id), nor complete the task or be told of it."""
    deploy(api, "sandbox_case", script_process(assignee="reviewer"))
    case_id = api.start("sandbox_case", "c1", reviewer="designer")["id"]
    task = api.open_task(case_id, "review")
    assert task["assignee"] is None  # a designer holds no lane's role: the task waits in its lane's pool
    for url in (f"/api/cases/{case_id}", f"/api/cases/{case_id}/history", f"/api/cases/{case_id}/attachments",
                f"/api/tasks/{task['id']}"):
        assert_error(api.get(url, as_="designer"), 404, "not_found")
    assert_error(api.complete_raw(task["id"], "designer", {"ok": True}), 404, "not_found")
    notices = api.get("/api/notifications", as_="designer").json["items"]
    assert [n["task_id"] for n in notices] == []
