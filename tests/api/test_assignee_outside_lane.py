"""An assignee expression gives a task to the user it names only if that user holds the task's lane role (or admin),
as a substitute, a reassignment and a migration already require: the case data it reads is often a form field a
person filled, and a holder may read the case and complete its task whatever their roles."""

from __future__ import annotations

from tests.conformance.bpmn import chain, definitions, end, start, user

KEY = "assigned_decision"
NEXT_FORM = {"type": "object", "title": "提名", "properties": {"next": {"type": "string", "title": "下一步办理人"}},
             "required": ["next"]}
ASSIGNEE = ('<spiffworkflow:properties><spiffworkflow:property name="assignee" value="next"/>'
            "</spiffworkflow:properties>")


def deployed(api) -> None:
    body = (start() + user("propose", NEXT_FORM) + user("decide", extensions=ASSIGNEE) + end()
            + chain("start", "propose", "decide", "end"))
    response = api.post(f"/api/processes/{KEY}/versions", as_="designer", content_type="application/xml",
                        data=definitions(KEY, body, {"org_dept": ["propose"], "committee": ["decide"]}))
    assert response.status_code == 201, response.json


def test_a_user_named_outside_the_lane_gets_no_task_and_it_waits_for_the_lane(api, cadre):
    deployed(api)
    case_id = api.start(KEY, "c1")["id"]
    api.complete(case_id, "propose", as_="org_dept", next="org_dept")  # org_dept names themself for the committee
    task = api.open_task(case_id, "decide")
    assert (task["role"], task["assignee"]) == ("committee", None)
    refused = api.post(f"/api/tasks/{task['id']}/complete", as_="org_dept", json={"data": {"ok": True}})
    assert refused.status_code in (403, 404), refused.json
    unclaimed = [e for e in api.get(f"/api/cases/{case_id}/history").json if e["action"] == "unclaim"]
    assert unclaimed and unclaimed[-1]["detail"]["from"] == "org_dept"
    assert "does not hold this step's role" in unclaimed[-1]["detail"]["reason"]
    api.complete(case_id, "decide", as_="committee", ok=True)


def test_a_user_named_in_the_lane_holds_the_task(api, cadre):
    deployed(api)
    case_id = api.start(KEY, "c1")["id"]
    api.complete(case_id, "propose", as_="org_dept", next="committee")
    assert api.open_task(case_id, "decide")["assignee"] == "committee"
