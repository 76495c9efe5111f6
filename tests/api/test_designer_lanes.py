"""A designer reads no case: drawing a lane named after the designer role does not change that. Deploy refuses
such a lane, and a version that has one (deployed before the refusal) gives designers neither its cases nor its
tasks."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, select, update

from service.config import PROJECT_ROOT
from service.db.models import Case, ProcessLane, Task
from tests.api.support import assert_error, start_admonishment

ADMONISHMENT = (Path(PROJECT_ROOT) / "bpmn" / "admonishment.bpmn").read_text(encoding="utf-8")
DESIGNER_LANE = '<bpmn:lane id="Lane_designer" name="designer"/>\n    </bpmn:laneSet>'


def test_deploy_refuses_a_lane_named_after_the_designer_role(api):
    with_lane = ADMONISHMENT.replace("</bpmn:laneSet>", DESIGNER_LANE, 1)
    assert with_lane != ADMONISHMENT
    response = api.post("/api/processes/admonishment/versions", as_="designer", data=with_lane.encode(),
                        content_type="application/xml")
    problems = assert_error(response, 422)["errors"]
    assert [p["element_id"] for p in problems] == ["Lane_designer"]
    assert "lane 'designer' is not a known role that may hold tasks" in problems[0]["message"]
    assert "designer" not in problems[0]["message"].split("the roles are: ")[1].split(", ")
    assert api.get("/api/processes/admonishment", as_="designer").get_json()["version"] == 1


def test_an_older_version_with_a_designer_lane_gives_designers_no_case_and_no_task(api, services, cadre):
    case = start_admonishment(api)
    task = case["open_tasks"][0]
    with services.db.unit_of_work() as session:  # as a version deployed before deploy refused the lane left it
        version_id = session.scalar(select(Case.process_version_id).where(Case.id == case["id"]))
        session.execute(insert(ProcessLane).values(process_version_id=version_id, role="designer"))
        session.execute(update(Task).where(Task.id == task["id"]).values(role="designer"))
    for url in (f"/api/cases/{case['id']}", f"/api/cases/{case['id']}/history", f"/api/cases/{case['id']}/comments",
                f"/api/tasks/{task['id']}"):
        assert api.get(url, as_="designer").status_code == 404, url
    assert api.get("/api/tasks", as_="designer").status_code == 403  # the inbox: "your roles read no case"
    refused = api.post(f"/api/tasks/{task['id']}/complete", as_="designer", json={"data": {}})
    assert refused.status_code == 404
    assert api.get(f"/api/cases/{case['id']}", as_="discipline").status_code == 200  # its lanes still read it
